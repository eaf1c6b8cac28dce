"""Delta tables by contract: names per environment, creation, snapshot reads, commits, scratch space.

A table is `[catalog.]<prefix><layer>.<name>`. Only the gate (jobs/runtime/gate.py) commits to
it, and only batches that passed their suite: every version of a table is one readers may
see. A job reads each input at one version (the first it saw), which is recorded in MLflow.
Commits carry their batch id as Delta `userMetadata`, so the version a batch became is found
in the table's history even when other writers commit at the same time.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from delta import exceptions as delta_errors
from delta.tables import DeltaTable
from pyspark.errors import PySparkNotImplementedError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.runtime.config import Config
from schemas import ALL_TABLES
from schemas.contract import TableContract
from schemas.views import VIEWS

log = logging.getLogger("finelake")
SCHEMA_VERSION_PROPERTY = "finelake.schema_version"
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"
COMMIT_RETRIES = 3
# A commit that lost a race to another writer: its batch is staged, so it is simply tried again.
LOST_RACE = (delta_errors.ConcurrentAppendException, delta_errors.ConcurrentDeleteReadException,
             delta_errors.ConcurrentDeleteDeleteException, delta_errors.ConcurrentTransactionException,
             delta_errors.ConcurrentWriteException, delta_errors.MetadataChangedException,
             delta_errors.ProtocolChangedException, delta_errors.DeltaConcurrentModificationException)
_CREATING = threading.Lock()  # two stages of one process may create a shared table (silver.rejects) at once
_ENSURED: set[tuple[int, str]] = set()  # (session catalog, table) checked in this process: one look per table, not per job
NEW_KEY = "_new_key"  # Lake.changes marks the rows whose key the table does not hold yet
REMOVE = "_remove"  # Lake.merge marks the source rows that are keys to delete


class TableContractError(RuntimeError):
    pass


@dataclass(frozen=True)
class WriteResult:
    table: str  # logical name
    version: int | None  # the version the batch became; None: nothing was committed
    inserted: int
    updated: int
    deleted: int = 0
    rows: DataFrame | None = field(default=None, compare=False, repr=False)  # the batch as staged, for reports

    @property
    def changed(self) -> bool:
        return self.version is not None and self.inserted + self.updated + self.deleted > 0


class Lake:
    """The tables of one environment."""

    def __init__(self, spark: SparkSession, config: Config):
        self.spark = spark
        self.config = config
        self.reads: dict[str, int] = {}  # logical name -> version this job reads: its inputs

    # ------------------------------------------------------------ names

    def schema_name(self, layer: str) -> str:
        schema = f"{self.config.catalog.schema_prefix}{layer}"
        return f"{self.config.catalog.name}.{schema}" if self.config.catalog.name else schema

    def name(self, contract: TableContract) -> str:
        return f"{self.schema_name(contract.layer)}.{contract.name}"

    def exists(self, contract: TableContract) -> bool:
        return self.spark.catalog.tableExists(self.name(contract))

    # ------------------------------------------------------------ creation

    def ensure(self, contract: TableContract) -> None:
        """Create schema and table when absent; refuse a table written under another contract version."""
        seen = (id(self.spark.sparkContext), self.name(contract))
        if seen in _ENSURED:
            return
        with _CREATING:
            if self.exists(contract):
                self._check_version(contract)
            else:
                self._create(contract)
        _ENSURED.add(seen)

    def _check_version(self, contract: TableContract) -> None:
        name = self.name(contract)
        if self.spark.catalog.getTable(name).tableType == "VIEW":
            raise TableContractError(
                f"{name} is a view: this lake was written by an older finelake (tables behind published views); "
                "rebuild it (remove the lake folder) or point catalog.schema_prefix at a new one"
            )
        detail = self.spark.sql(f"DESCRIBE DETAIL {name}").select("properties").first()
        found = dict(detail["properties"] or {}).get(SCHEMA_VERSION_PROPERTY)
        if found != str(contract.version):
            raise TableContractError(
                f"{name} has {SCHEMA_VERSION_PROPERTY}={found}, this code writes version {contract.version}: "
                "migrate the table or point catalog.schema_prefix at a new one"
            )

    def _create(self, contract: TableContract) -> None:
        name = self.name(contract)
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {name.rsplit('.', 1)[0]}")
        builder = (
            DeltaTable.createIfNotExists(self.spark)
            .tableName(name)
            .addColumns(contract.schema)
            .comment(contract.description)
            .property(SCHEMA_VERSION_PROPERTY, str(contract.version))
        )
        if contract.partition_by:
            builder = builder.partitionedBy(*contract.partition_by)
        builder.execute()
        log.info("created table %s", name)

    # ------------------------------------------------------------ reads

    def latest_version(self, contract: TableContract) -> int:
        self.ensure(contract)
        return DeltaTable.forName(self.spark, self.name(contract)).history(1).select("version").first()["version"]

    def read(self, contract: TableContract) -> DataFrame:
        """The table as this job reads it: the version of its first read, so one job sees one snapshot."""
        version = self.reads.setdefault(contract.logical_name, self.latest_version(contract))
        return self.read_version(contract, version)

    def read_current(self, contract: TableContract) -> DataFrame:
        """The table now, this job's own commits included."""
        return self.read_version(contract, self.latest_version(contract))

    def read_version(self, contract: TableContract, version: int) -> DataFrame:
        self.ensure(contract)
        return self.spark.sql(f"SELECT * FROM {self.name(contract)} VERSION AS OF {int(version)}")

    # ------------------------------------------------------------ commits

    def append(self, contract: TableContract, rows: DataFrame, batch: str, find: bool = True) -> WriteResult | None:
        """Blind append (never conflicts): for rows whose keys are new to the table. A stage that
        stops after the commit finds these keys done next time, so nothing is appended twice.
        With `find`, the commit is looked up in the table's history for its version."""
        self.ensure(contract)
        (rows.select(*contract.schema.fieldNames()).write.format("delta").mode("append")
         .option("userMetadata", batch).saveAsTable(self.name(contract)))
        return self._committed(contract, batch, "numOutputRows", None) if find else None

    def changes(self, contract: TableContract, rows: DataFrame, owned: dict[str, str],
                update_when: str | None = None) -> DataFrame:
        """The rows a MERGE of `rows` would change: new keys (NEW_KEY true), and matched keys where
        `update_when` holds.

        Delta commits a version for a MERGE with an update clause even when nothing changes, and
        a batch should be what its commit changes. The target is read once, only where the batch's
        keys are (the keys are a semi-join filter, broadcast when small; partition columns prune).
        """
        target = self._owned_rows(contract, owned)
        keys = contract.match_columns
        matched = target.join(rows.select(*keys).distinct(), keys, "left_semi")
        joined = rows.alias("s").join(matched.alias("t"), [F.col(f"s.`{c}`") == F.col(f"t.`{c}`") for c in keys], "left")
        found = F.col(f"t.`{keys[0]}`").isNotNull()
        keep = ~found if update_when is None else (~found | F.expr(update_when))
        return joined.where(keep).select("s.*", (~found).alias(NEW_KEY))

    def present_keys(self, contract: TableContract, keys: DataFrame, owned: dict[str, str]) -> DataFrame:
        """The keys (partition columns first) of `keys` that the table holds, in the writer's partition."""
        columns = contract.match_columns
        return self._owned_rows(contract, owned).select(*columns).join(keys.select(*columns).distinct(), columns,
                                                                      "left_semi")

    def _owned_rows(self, contract: TableContract, owned: dict[str, str]) -> DataFrame:
        """The table now, only the partition a writer owns (all of it when it owns the whole table)."""
        self.ensure(contract)
        target = self.spark.table(self.name(contract))
        for column, value in owned.items():
            target = target.where(F.col(column) == value)
        return target

    def merge(self, contract: TableContract, rows: DataFrame, batch: str, owned: dict[str, str],
              update_when: str | None = None, update_set: dict | None = None,
              remove: DataFrame | None = None) -> WriteResult:
        """MERGE on the contract's keys: insert new keys; update matched rows where `update_when` holds;
        delete the rows whose keys `remove` holds (one commit: readers never see half of it).

        `owned` (partition column -> value) narrows the target to the writer's own partition, so
        Delta sees no conflict with writers of other partitions. Without `update_when` a matched
        row is left as it is: re-running a stage commits nothing.
        """
        self.ensure(contract)
        name = self.name(contract)
        columns = contract.schema.fieldNames()
        on = " AND ".join([*(f"t.`{c}` = '{v}'" for c, v in owned.items()),
                           *(f"t.`{c}` = s.`{c}`" for c in contract.match_columns)])
        source, kept = rows.select(*columns), None
        if remove is not None:  # one source: the rows, then the keys to delete marked REMOVE
            source = source.withColumn(REMOVE, F.lit(False)).unionByName(
                remove.withColumn(REMOVE, F.lit(True)), allowMissingColumns=True)
            kept = f"NOT s.{REMOVE}"
        for attempt in range(COMMIT_RETRIES):
            merge = DeltaTable.forName(self.spark, name).alias("t").merge(source.alias("s"), on)
            if remove is not None:
                merge = merge.whenMatchedDelete(condition=f"s.{REMOVE}")
            if update_when is not None:
                merge = merge.whenMatchedUpdate(condition=f"{kept} AND ({update_when})" if kept else update_when,
                                                set=update_set)
            self.spark.conf.set(USER_METADATA, batch)
            try:
                merge.whenNotMatchedInsert(condition=kept, values={c: f"s.`{c}`" for c in columns}).execute()
                break
            except LOST_RACE as err:
                if attempt == COMMIT_RETRIES - 1:
                    raise
                log.warning("%s: commit of %s lost a race (%s); retrying", name, batch, type(err).__name__)
            finally:
                self.spark.conf.unset(USER_METADATA)
        return self._committed(contract, batch, "numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted")

    def _committed(self, contract: TableContract, batch: str, inserted: str, updated: str | None,
                   deleted: str | None = None) -> WriteResult:
        """The commit of `batch` in the table's recent history; a MERGE that changed nothing commits nothing."""
        history = DeltaTable.forName(self.spark, self.name(contract)).history(64)
        row = history.where(F.col("userMetadata") == batch).select("version", "operationMetrics").first()
        if row is None:
            return WriteResult(contract.logical_name, None, 0, 0)
        metrics = row["operationMetrics"] or {}
        result = WriteResult(contract.logical_name, row["version"], int(metrics.get(inserted, 0)),
                             int(metrics.get(updated, 0)) if updated else 0, int(metrics.get(deleted, 0)) if deleted else 0)
        log.info("%s: committed %s as v%d (+%d rows, %d updated, %d deleted)", self.name(contract), batch, result.version,
                 result.inserted, result.updated, result.deleted)
        return result

    # ------------------------------------------------------------ scratch

    def scratch(self, *parts: str) -> str:
        """A folder under paths.scratch for a running job's staged batches and checkpoints."""
        return "/".join([self.config.paths.scratch.rstrip("/"), *parts])

    def checkpoint(self, frame: DataFrame, *parts: str) -> DataFrame:
        """Write `frame` to scratch and read it back: later actions start from storage, not lineage,
        so an executor lost later never makes Spark recompute (and call a model) again."""
        path = self.scratch(*parts)
        frame.write.mode("overwrite").parquet(path)
        return self.spark.read.parquet(path)

    def remove_scratch(self, *parts: str) -> None:
        import pyarrow.fs as pafs

        path = self.scratch(*parts)
        try:
            filesystem, inner = pafs.FileSystem.from_uri(path if "://" in path else f"file://{path}")
            filesystem.delete_dir(inner)
        except (OSError, ValueError) as err:  # leftovers cost space, not correctness
            log.warning("could not remove scratch %s: %s", path, err)


def describe_tables(lake: Lake) -> str:
    """Every contract's table: its latest version, rows and description; then the analysts' views."""
    lines = [f"{'table':<32}{'version':>8}{'rows':>9}  description"]
    for contract in ALL_TABLES:
        name = lake.name(contract)
        if not lake.exists(contract):
            lines.append(f"{name:<32}{'-':>8}{'-':>9}  (not created yet) {contract.description}")
            continue
        rows = lake.read_current(contract).count()
        lines.append(f"{name:<32}{lake.latest_version(contract):>8}{rows:>9}  {contract.description}")
    for view in VIEWS:
        name = f"{lake.schema_name(view.layer)}.{view.name}"
        state = "view" if lake.spark.catalog.tableExists(name) else "-"
        lines.append(f"{name:<32}{state:>8}{'-':>9}  {'' if state == 'view' else '(made by publish) '}{view.description}")
    return "\n".join(lines)


def job_session(spark: SparkSession) -> SparkSession:
    """A session of its own for one job (same cluster and catalog, its own SQL settings), so jobs
    running side by side in one process never see each other's commit metadata."""
    try:
        return spark.newSession()
    except PySparkNotImplementedError:  # Spark Connect sessions cannot fork: one job per session there
        return spark

