"""Write-audit-publish: a stage's batches are staged, audited by their tables' suites, then committed.

- stage: each batch is written to scratch once, so the audit and the commit read the same rows
  and nothing upstream (a model call included) runs twice. A MERGE batch holds only the rows it
  changes (new keys, or matched rows its update condition selects);
- audit: the table's Great Expectations suite runs on the batch's rows, plus the partition the
  stage owns (jobs/registry.py); a stage's conservation (rows in = kept + rejected, per source)
  runs on the batches' counts. The cost is the batch's, never the table's;
- commit: only when every audit of the write passed is each batch committed: appended when all
  its keys are new, else MERGEd on the keys. A refused write commits nothing, so readers never
  see it and nothing is restored over another writer's commit; the refused batches stay in
  scratch, readable, for forensics;
- record: every validation, passed or failed, is appended to ops.validations and logged to the
  job's MLflow run.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from jobs.registry import Stage, Write
from jobs.runtime.config import Config
from jobs.runtime.tables import NEW_KEY, Lake, TableContractError, WriteResult
from schemas import ALL_TABLES, silver_rejects, suites, validations
from schemas.contract import TableContract

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no usage reports from jobs

log = logging.getLogger("finelake")
SAMPLE_KEYS = 5
# Batches up to this many rows are validated from pandas on the driver (bounded, ~10x faster
# than GX's Spark engine on small data: every expectation is a round of Spark jobs there).
PANDAS_MAX_ROWS = 20_000
_GX = threading.local()  # one Great Expectations context per thread: jobs in threads validate side by side
_NAMES = itertools.count()


@dataclass
class Failure:
    expectation: str
    unexpected: int | None
    observed: Any
    keys: list[dict]

    def describe(self) -> str:
        count = f"{self.unexpected} rows" if self.unexpected is not None else f"observed {self.observed!r}"
        keys = "; ".join(", ".join(f"{k}={v}" for k, v in key.items()) for key in self.keys)
        return f"{self.expectation}: {count}" + (f"; e.g. {keys}" if keys else "")


@dataclass
class Validation:
    table: str
    batch: str
    rows: int
    suite: str
    success: bool
    evaluated: int
    failures: list[Failure] = field(default_factory=list)
    result: dict = field(default_factory=dict)  # GX's own JSON of the validation result
    version: int | None = None  # set when the batch is committed


class GateFailure(RuntimeError):
    def __init__(self, refused: list[Validation], where: dict[str, str]):
        self.validations = refused
        lines = []
        for validation in refused:
            lines.append(f"{validation.table} batch {validation.batch} ({validation.rows} rows) failed "
                         f"{len(validation.failures)} of {validation.evaluated} expectations of suite {validation.suite}; "
                         f"nothing of this write was committed (the batch stays readable: "
                         f"SELECT * FROM parquet.`{where.get(validation.batch, '-')}`)")
            lines += [f"  - {failure.describe()}" for failure in validation.failures]
        super().__init__("\n".join(lines))


@dataclass
class Batch:
    """Rows for one table. `append`: the keys are new by construction (pending work this run found),
    so no MERGE is needed; otherwise rows MERGE on the keys, updating matched rows where `update_when`.
    `remove`: keys (with the partition columns) whose rows the same commit deletes; the suite audits
    the rows the table gains or changes, deletions leave nothing to audit."""

    contract: TableContract
    rows: DataFrame
    append: bool = False
    update_when: str | None = None
    update_set: dict[str, str] | None = None
    remove: DataFrame | None = None


@dataclass(frozen=True)
class Conservation:
    """A stage's rows in per source, matched by the kept rows of the `kept` batch plus the rejects batch.

    `column` is the kept table's column that rejects call `source` (the model for embeddings).
    """

    rows_in: dict[str, int]
    kept: TableContract
    column: str = "source"


@dataclass
class _Staged:
    batch: Batch
    write: Write
    id: str
    path: str  # where the batch is staged (and stays when it is refused)
    frame: DataFrame  # the staged rows
    data: Any  # what the audit reads: the rows with their derived checks, in pandas when small
    rows: int
    only_new: bool  # every key is new to the table: an append does what a MERGE would
    removed: DataFrame | None = None  # staged keys of the rows the commit deletes
    removals: int = 0


class Gate:
    def __init__(self, lake: Lake, stage: Stage, run_id: str, config: Config, tracker: Any = None):
        self.lake = lake
        self.stage = stage
        self.run_id = run_id
        self.config = config
        self.tracker = tracker
        self.validations: list[Validation] = []
        self._batches = itertools.count(1)
        self._staged: list[str] = []  # committed batches, readable (WriteResult.rows) until cleanup()

    def commit(self, *batches: Batch, conservation: Conservation | None = None) -> list[WriteResult]:
        """Stage, audit and (when every audit passes) commit `batches`, in order; one result per batch."""
        staged = [self._stage(batch) for batch in batches]
        found = [self._audit(s) for s in staged if s.rows]
        if conservation is not None and (any(s.rows for s in staged) or any(conservation.rows_in.values())):
            found.append(self._conserved(staged, conservation))
        refused = [v for v in found if not v.success]
        if refused:
            kept = {s.id: s.path for s in staged if s.rows}
            self._record(found, kept)
            raise GateFailure(refused, kept)
        results = [dataclasses.replace(self._committed(s), rows=s.frame) for s in staged]
        self._staged += [s.id for s in staged]
        versions = {s.id: r.version for s, r in zip(staged, results)}
        for validation in found:
            validation.version = versions.get(validation.batch)
        self._record(found, {})
        for validation in found:
            log.info("%s batch %s (%d rows) passed %s", validation.table, validation.batch, validation.rows, validation.suite)
        return results

    def cleanup(self) -> None:
        """Remove the staged batches that were committed; refused ones stay for forensics."""
        for batch_id in self._staged:
            self.lake.remove_scratch("batches", self.run_id, batch_id)
        self._staged.clear()

    # ------------------------------------------------------------ steps

    def _stage(self, batch: Batch) -> _Staged:
        contract = batch.contract
        write = self.stage.write_of(contract)
        if write is None:
            raise TableContractError(f"stage {self.stage.name} writes {contract.logical_name}, which "
                                     "jobs/registry.py does not give it: every table has one writer (or one per partition)")
        batch_id = f"{self.run_id}-{next(self._batches)}"
        rows = batch.rows.select(*contract.schema.fieldNames())
        if batch.append:
            rows = rows.withColumn(NEW_KEY, F.lit(True))
        else:
            rows = self.lake.changes(contract, rows, write.owned, batch.update_when)
        path = self.lake.scratch("batches", self.run_id, batch_id)
        rows.write.mode("overwrite").parquet(path)
        frame = self.lake.spark.read.schema(rows.schema).parquet(path)
        removed, removals = None, 0
        if batch.remove is not None:
            present = self.lake.present_keys(contract, batch.remove, write.owned)
            present.write.mode("overwrite").parquet(f"{path}-remove")
            removed = self.lake.spark.read.schema(present.schema).parquet(f"{path}-remove")
            removals = removed.count()
        checked = contract.validation_frame(frame, self._settings(contract))
        # One pass both counts a small batch and brings it to the driver for the audit.
        small = checked.limit(PANDAS_MAX_ROWS + 1).toPandas()  # no bytes: validation_frame keeps their lengths
        if len(small) <= PANDAS_MAX_ROWS:
            count, matched, data = len(small), int((~small[NEW_KEY]).sum()), small.drop(columns=[NEW_KEY])
        else:
            counted = frame.agg(F.count(F.lit(1)).alias("rows"), F.count_if(~F.col(NEW_KEY)).alias("matched")).first()
            count, matched, data = counted["rows"], counted["matched"], checked.drop(NEW_KEY)
        return _Staged(batch, write, batch_id, path, frame.drop(NEW_KEY), data, count, matched == 0 and not removals,
                       removed, removals)

    def _settings(self, contract: TableContract) -> Any:
        return getattr(self.config, contract.settings) if contract.settings else None

    def _audit(self, staged: _Staged) -> Validation:
        contract = staged.batch.contract

        def suite() -> list:
            owned = [suites.in_set(column, [value]) for column, value in staged.write.owns]
            return [*contract.suite(self._settings(contract)), *owned]

        return self._validate(contract.logical_name, f"{contract.logical_name}.suite", staged, staged.data, suite,
                              list(contract.keys))

    def _conserved(self, staged: list[_Staged], conservation: Conservation) -> Validation:
        kept = next(s for s in staged if s.batch.contract is conservation.kept)
        rejects = next((s for s in staged if s.batch.contract is silver_rejects.CONTRACT), None)
        counts = {source: [n, 0, 0] for source, n in conservation.rows_in.items()}
        for batch, column, slot in ((kept, conservation.column, 1), (rejects, "source", 2)):
            for source, n in (_counts(batch, column) if batch else {}).items():
                counts.setdefault(source, [0, 0, 0])[slot] = n
        frame = pd.DataFrame([(s, a, b, c, b + c) for s, (a, b, c) in sorted(counts.items())],
                             columns=["source", "rows_in", "kept", "rejected", "kept_plus_rejected"])
        name = f"{conservation.kept.logical_name}.conservation.{self.stage.name}"
        return self._validate(conservation.kept.logical_name, name, kept, frame,
                              lambda: [suites.equal("rows_in", "kept_plus_rejected")], ["source"])

    def _committed(self, staged: _Staged) -> WriteResult:
        batch, contract = staged.batch, staged.batch.contract
        if not staged.rows and not staged.removals:
            return WriteResult(contract.logical_name, None, 0, 0)
        if staged.only_new:  # one writer per table (or partition): no one else adds these keys meanwhile
            return self.lake.append(contract, staged.frame, staged.id)
        return self.lake.merge(contract, staged.frame, staged.id, staged.write.owned, batch.update_when, batch.update_set,
                               staged.removed)

    # ------------------------------------------------------------ Great Expectations

    def _validate(self, table: str, suite_name: str, staged: _Staged, data: Any,
                  build: Callable[[], list], keys: list[str]) -> Validation:
        """Run the suite on `data` with boolean results; only when it fails, run the failed
        expectations again for counts and sample keys."""
        outcome, expectations = _run(data, build(), {"result_format": "BOOLEAN_ONLY"})
        result = outcome
        failures: list[Failure] = []
        if not outcome.success:
            failed = {r.expectation_config.id for r in outcome.results if not r.success}
            again = [e for e, original in zip(build(), expectations) if original.id in failed]
            result, _ = _run(data, again, {"result_format": "SUMMARY", "unexpected_index_column_names": keys,
                                           "partial_unexpected_count": SAMPLE_KEYS})
            failures = [
                Failure(_label(item.expectation_config), item.result.get("unexpected_count"),
                        item.result.get("observed_value"),
                        [{k: row.get(k) for k in keys} for row in (item.result.get("partial_unexpected_index_list") or [])][:SAMPLE_KEYS])
                for item in result.results if not item.success
            ]
        validation = Validation(table, staged.id, staged.rows, suite_name, bool(outcome.success), len(outcome.results),
                                failures, result.to_json_dict())
        self.validations.append(validation)
        return validation

    def _record(self, found: list[Validation], refused_at: dict[str, str]) -> None:
        if not found:
            return
        mlflow_run = self.tracker.mlflow_run_id if self.tracker else None
        rows = [{
            "table_name": v.table, "batch": v.batch, "rows": v.rows, "suite": v.suite, "success": v.success,
            "evaluated": v.evaluated, "failed_expectations": [f.expectation for f in v.failures],
            "offending_keys": json.dumps({f.expectation: f.keys for f in v.failures}, default=str) if v.failures else None,
            "version": v.version, "refused_batch": refused_at.get(v.batch), "stage": self.stage.name,
            "run_id": self.run_id, "mlflow_run_id": mlflow_run,
        } for v in found]
        recorded = StructType([f for f in validations.SCHEMA.fields if f.name != "validated_at"])
        frame = self.lake.spark.createDataFrame(rows, recorded).withColumn("validated_at", F.current_timestamp())
        self.lake.append(validations.CONTRACT, frame, f"{self.run_id}-validations-{next(self._batches)}", find=False)
        if self.tracker:
            for validation in found:
                self.tracker.log_validation(validation)


def _context():
    if getattr(_GX, "context", None) is None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.data_sources.add_spark(name="spark")
        context.data_sources.add_pandas(name="pandas")
        _GX.context = context
    return _GX.context


def _counts(staged: _Staged, column: str) -> dict[str, int]:
    """Rows per value of `column` in a staged batch (from its pandas copy when it has one)."""
    if isinstance(staged.data, pd.DataFrame):
        return {str(k): int(v) for k, v in staged.data[column].value_counts().items()}
    return {r[column]: r["count"] for r in staged.frame.groupBy(column).count().collect()}


def _run(data: Any, expectations: list, result_format: dict):
    """One GX validation of `data` (a Spark or pandas DataFrame); returns the result and the
    expectations as the suite holds them (with their ids)."""
    import great_expectations as gx

    context = _context()
    name = f"finelake-{next(_NAMES)}"
    source = context.data_sources.get("spark" if isinstance(data, DataFrame) else "pandas")
    asset = source.add_dataframe_asset(name=name)
    suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=expectations))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=asset.add_batch_definition_whole_dataframe("batch"), suite=suite))
    try:
        return definition.run(batch_parameters={"dataframe": data}, result_format=result_format), list(suite.expectations)
    finally:  # a long-lived process (the demo, a service) must not grow a suite per write
        context.validation_definitions.delete(name)
        context.suites.delete(name)
        source.delete_asset(name)


def _label(config: Any) -> str:
    kwargs = config.kwargs
    target = kwargs.get("column") or ",".join(kwargs.get("column_list") or []) or (
        f"{kwargs['column_A']}={kwargs['column_B']}" if "column_A" in kwargs else ""
    )
    return f"{config.type}({target})" if target else config.type


def quality_report(lake: Lake) -> str:
    """Per gated table: its version, rows, the last validation and its MLflow run."""
    recorded = lake.read_current(validations.CONTRACT)
    newest = Window.partitionBy("table_name").orderBy(F.col("validated_at").desc(), F.col("batch").desc())
    last = {
        row["table_name"]: row
        for row in recorded.withColumn("n", F.row_number().over(newest)).where("n = 1").drop("n").collect()
    }
    lines = [f"{'table':<26}{'version':>8}{'rows':>9}  {'last validation':<58}{'stage':<14}mlflow run"]
    for contract in ALL_TABLES:
        if not contract.gated:
            continue
        if not lake.exists(contract):
            lines.append(f"{contract.logical_name:<26}{'-':>8}{'-':>9}  (not created yet)")
            continue
        row = last.get(contract.logical_name)
        verdict, stage, run = "none yet", "-", "-"
        if row is not None:
            state = "passed" if row["success"] else f"REFUSED ({', '.join(row['failed_expectations'])})"
            verdict = f"{row['batch']} {state} {row['validated_at']:%Y-%m-%d %H:%M}"
            stage, run = row["stage"], row["mlflow_run_id"] or "-"
        lines.append(f"{contract.logical_name:<26}{lake.latest_version(contract):>8}{lake.read_current(contract).count():>9}"
                     f"  {verdict:<58}{stage:<14}{run}")
    return "\n".join(lines)
