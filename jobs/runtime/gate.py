"""The quality gate: every write is validated by its table's suite before readers see it.

A MERGE commits version v; the table's Great Expectations suite runs on version v (read by
time travel) through a GX Spark datasource. Pass: v becomes the published version. Fail: the
table is restored to the last published version (v stays reachable by time travel), the
validation is recorded, and the stage stops with the failed expectations and offending keys.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from pyspark.sql import Window

from jobs.runtime.tables import Lake, WriteResult
from schemas import ALL_TABLES, silver_rejects, validations
from schemas.contract import SuiteInputs, TableContract

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no usage reports from jobs

log = logging.getLogger("finelake")
SAMPLE_KEYS = 5


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
    version: int
    suite: str
    success: bool
    evaluated: int
    failures: list[Failure] = field(default_factory=list)
    result: dict = field(default_factory=dict)  # GX's own JSON of the validation result


class GateFailure(RuntimeError):
    def __init__(self, validation: Validation, published: int):
        self.validation = validation
        lines = [
            f"{validation.table} v{validation.version} failed {len(validation.failures)} of {validation.evaluated} "
            f"expectations of suite {validation.suite}; restored to published v{published} "
            f"(the failed version stays readable: VERSION AS OF {validation.version})"
        ]
        lines += [f"  - {failure.describe()}" for failure in validation.failures]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Conservation:
    """A stage's rows in per source, to be matched by its kept rows (in the gated table) plus rejects.

    `column` is the gated table's column that rejects call `source` (the model for embeddings).
    """

    stage: str
    rows_in: dict[str, int]
    column: str = "source"


class QualityGate:
    def __init__(self, lake: Lake, stage: str, run_id: str, inputs: SuiteInputs, tracker: Any = None):
        self.lake = lake
        self.stage = stage
        self.run_id = run_id
        self.inputs = inputs
        self.tracker = tracker
        self.validations: list[Validation] = []
        self._context = None

    def write(self, contract: TableContract, rows: DataFrame, conservation: Conservation | None = None,
              **merge_options: Any) -> WriteResult:
        """MERGE, then validate the new version; publish it or restore and raise GateFailure."""
        result = self.lake.merge(contract, rows, **merge_options)
        if result.changed:
            self.check(contract, result.version, conservation)
        return result

    def check(self, contract: TableContract, version: int, conservation: Conservation | None = None) -> None:
        published = self.lake.published_version(contract)
        table = self.lake.read_version(contract, version)
        # Every expectation is a Spark job over the same version: read it once (-30% on small tables).
        frame = contract.validation_frame(table, self.inputs).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            found = [self._validate(contract.logical_name, f"{contract.logical_name}.suite", frame,
                                    contract.expectations(self.inputs), list(contract.keys), version)]
        finally:
            frame.unpersist()
        if conservation is not None:
            found.append(self._validate(contract.logical_name, f"{contract.logical_name}.conservation.{conservation.stage}",
                                        self._conservation_frame(table, conservation), _conservation_expectations(),
                                        ["source"], version))
        passed = all(v.success for v in found)
        if passed:
            self.lake.publish(contract, version)
            published = version
        else:
            self.lake.restore(contract, published)
        for validation in found:
            self._record(validation, published)
        if not passed:
            failed = next(v for v in found if not v.success)
            failed.failures = [f for v in found for f in v.failures]
            raise GateFailure(failed, published)
        log.info("%s v%d passed %s; published", contract.logical_name, version, ", ".join(v.suite for v in found))

    # ------------------------------------------------------------ Great Expectations

    def _gx(self):
        if self._context is None:
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            self._context = gx.get_context(mode="ephemeral")
            self._context.variables.progress_bars = ProgressBarsConfig(globally=False)
            self._context.data_sources.add_spark(name="finelake")
        return self._context

    def _validate(self, table: str, suite_name: str, frame: DataFrame, expectations: list, keys: list[str],
                  version: int) -> Validation:
        import great_expectations as gx

        context = self._gx()
        asset_name = f"{suite_name}.v{version}.{len(self.validations)}"
        asset = context.data_sources.get("finelake").add_dataframe_asset(name=asset_name)
        suite = context.suites.add(gx.ExpectationSuite(name=asset_name, expectations=expectations))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=asset_name, data=asset.add_batch_definition_whole_dataframe("v"), suite=suite)
        )
        outcome = definition.run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "SUMMARY", "unexpected_index_column_names": keys,
                           "partial_unexpected_count": SAMPLE_KEYS},
        )
        failures = [
            Failure(
                expectation=_label(item.expectation_config),
                unexpected=item.result.get("unexpected_count"),
                observed=item.result.get("observed_value"),
                keys=[{k: row.get(k) for k in keys} for row in (item.result.get("partial_unexpected_index_list") or [])][:SAMPLE_KEYS],
            )
            for item in outcome.results
            if not item.success
        ]
        validation = Validation(table, version, suite_name, bool(outcome.success), len(outcome.results), failures,
                                outcome.to_json_dict())
        self.validations.append(validation)
        return validation

    def _conservation_frame(self, table: DataFrame, conservation: Conservation) -> DataFrame:
        spark = self.lake.spark
        rows_in = spark.createDataFrame(list(conservation.rows_in.items()), "source string, rows_in long")
        kept = (
            table.where(F.col("run_id") == self.run_id)
            .groupBy(F.col(conservation.column).alias("source"))
            .agg(F.count(F.lit(1)).alias("kept"))
        )
        rejects = self.lake.read_version(silver_rejects.CONTRACT, self.lake.published_version(silver_rejects.CONTRACT))
        rejected = (
            rejects.where((F.col("run_id") == self.run_id) & (F.col("stage") == conservation.stage))
            .groupBy("source").agg(F.count(F.lit(1)).alias("rejected"))
        )
        counts = rows_in.join(kept, "source", "full").join(rejected, "source", "full").fillna(0)
        return counts.withColumn("kept_plus_rejected", F.col("kept") + F.col("rejected"))

    def _record(self, validation: Validation, published: int) -> None:
        tracker_run = self.tracker.mlflow_run_id if self.tracker else None
        row = {
            "table_name": validation.table,
            "version": validation.version,
            "suite": validation.suite,
            "success": validation.success,
            "evaluated": validation.evaluated,
            "failed_expectations": [f.expectation for f in validation.failures],
            "offending_keys": json.dumps({f.expectation: f.keys for f in validation.failures}, default=str) if validation.failures else None,
            "published_version": published,
            "stage": self.stage,
            "run_id": self.run_id,
            "mlflow_run_id": tracker_run,
        }
        recorded = StructType([f for f in validations.SCHEMA.fields if f.name != "validated_at"])
        frame = self.lake.spark.createDataFrame([row], recorded).withColumn("validated_at", F.current_timestamp())
        self.lake.merge(validations.CONTRACT, frame)
        if self.tracker:
            self.tracker.log_validation(validation)


def _conservation_expectations() -> list:
    import great_expectations.expectations as gxe

    return [gxe.ExpectColumnPairValuesToBeEqual(column_A="rows_in", column_B="kept_plus_rejected")]


def _label(config: Any) -> str:
    kwargs = config.kwargs
    target = kwargs.get("column") or ",".join(kwargs.get("column_list") or []) or (
        f"{kwargs['column_A']}={kwargs['column_B']}" if "column_A" in kwargs else ""
    )
    return f"{config.type}({target})" if target else config.type


def quality_report(lake: Lake) -> str:
    """Per table: published and latest version, rows readers see, the last validation and its MLflow run."""
    recorded = lake.read(validations.CONTRACT)
    newest = Window.partitionBy("table_name").orderBy(F.col("validated_at").desc(), F.col("version").desc())
    last = {
        row["table_name"]: row
        for row in recorded.withColumn("n", F.row_number().over(newest)).where("n = 1").drop("n").collect()
    }
    lines = [f"{'table':<24}{'published':>10}{'latest':>8}{'rows':>9}  {'last validation':<44}{'stage':<11}mlflow run"]
    for contract in ALL_TABLES:
        if not contract.gated:
            continue
        if not lake.spark.catalog.tableExists(lake.name(contract)):
            lines.append(f"{contract.logical_name:<24}{'-':>10}{'-':>8}{'-':>9}  (not created yet)")
            continue
        row = last.get(contract.logical_name)
        verdict, stage, run = "none yet", "-", "-"
        if row is not None:
            state = "passed" if row["success"] else f"FAILED ({', '.join(row['failed_expectations'])})"
            verdict = f"v{row['version']} {state} {row['validated_at']:%Y-%m-%d %H:%M}"
            stage, run = row["stage"], row["mlflow_run_id"] or "-"
        lines.append(
            f"{contract.logical_name:<24}{lake.published_version(contract):>10}{lake.latest_version(contract):>8}"
            f"{lake.read(contract).count():>9}  {verdict:<44}{stage:<11}{run}"
        )
    return "\n".join(lines)
