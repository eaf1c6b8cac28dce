"""Delta tables by contract: names per environment, creation, published reads, key-based MERGE writes.

A gated table has two names. Jobs write the Delta table `<prefix><layer>_store.<name>`, which
keeps every version (failed ones too, for time travel); readers use the view
`<prefix><layer>.<name>`, which points at the last version that passed its suite. The
published version is also a table property, so it survives the view being dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.runtime.config import Config
from schemas import ALL_TABLES
from schemas.contract import TableContract

log = logging.getLogger("finelake")
SCHEMA_VERSION_PROPERTY = "finelake.schema_version"
PUBLISHED_PROPERTY = "finelake.published_version"
STORE_SUFFIX = "_store"


class TableContractError(RuntimeError):
    pass


@dataclass(frozen=True)
class WriteResult:
    table: str  # logical name
    version: int
    inserted: int
    updated: int
    changed: bool


class Lake:
    """The tables of one environment: `[catalog.]<prefix><layer>[_store].<name>`."""

    def __init__(self, spark: SparkSession, config: Config):
        self.spark = spark
        self.config = config
        self.reads: dict[str, int] = {}  # logical name -> version first read: the job's inputs

    def schema_name(self, layer: str) -> str:
        schema = f"{self.config.catalog.schema_prefix}{layer}"
        return f"{self.config.catalog.name}.{schema}" if self.config.catalog.name else schema

    def view_name(self, contract: TableContract) -> str:
        """What readers query: the published version of a gated table (ops tables have no view)."""
        return f"{self.schema_name(contract.layer)}.{contract.name}"

    def name(self, contract: TableContract) -> str:
        """The Delta table jobs write."""
        layer = f"{contract.layer}{STORE_SUFFIX}" if contract.gated else contract.layer
        return f"{self.schema_name(layer)}.{contract.name}"

    def ensure(self, contract: TableContract) -> None:
        """Create schema, table (published at its empty version 0) and view when absent.

        A table written under another contract version is refused rather than mixed.
        """
        name = self.name(contract)
        if self.spark.catalog.tableExists(name):
            found = self.table_properties(name).get(SCHEMA_VERSION_PROPERTY)
            if found != str(contract.version):
                raise TableContractError(
                    f"{name} has {SCHEMA_VERSION_PROPERTY}={found}, this code writes version {contract.version}: "
                    "migrate the table or point catalog.schema_prefix at a new one"
                )
            return
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {name.rsplit('.', 1)[0]}")
        builder = (
            DeltaTable.createIfNotExists(self.spark)
            .tableName(name)
            .addColumns(contract.schema)
            .comment(contract.description)
            .property(SCHEMA_VERSION_PROPERTY, str(contract.version))
        )
        if contract.gated:
            builder = builder.property(PUBLISHED_PROPERTY, "0")
        if contract.partition_by:
            builder = builder.partitionedBy(*contract.partition_by)
        builder.execute()
        if contract.gated:
            self._point_view(contract, 0)
        log.info("created table %s", name)

    def table_properties(self, name: str) -> dict[str, str]:
        detail = self.spark.sql(f"DESCRIBE DETAIL {name}").select("properties").first()
        return dict(detail["properties"] or {})

    def published_version(self, contract: TableContract) -> int:
        self.ensure(contract)
        return int(self.table_properties(self.name(contract)).get(PUBLISHED_PROPERTY, "0"))

    def latest_version(self, contract: TableContract) -> int:
        return DeltaTable.forName(self.spark, self.name(contract)).history(1).select("version").first()["version"]

    def read(self, contract: TableContract) -> DataFrame:
        """The table as readers see it: its last published version (ops tables: the latest)."""
        self.ensure(contract)
        version = self.published_version(contract) if contract.gated else self.latest_version(contract)
        self.reads.setdefault(contract.logical_name, version)
        return self.read_version(contract, version)

    def latest_data_version(self, contract: TableContract) -> int:
        """The newest version that changed data (publishing only sets a table property)."""
        history = DeltaTable.forName(self.spark, self.name(contract)).history(20)
        changed = history.where(F.col("operation") != "SET TBLPROPERTIES").agg(F.max("version")).first()[0]
        return self.latest_version(contract) if changed is None else changed

    def read_latest(self, contract: TableContract) -> DataFrame:
        """Every committed row, published or not: what a resumed stage must not generate again."""
        self.ensure(contract)
        return self.read_version(contract, self.latest_version(contract))

    def read_version(self, contract: TableContract, version: int) -> DataFrame:
        return self.spark.sql(f"SELECT * FROM {self.name(contract)} VERSION AS OF {int(version)}")

    def publish(self, contract: TableContract, version: int) -> None:
        self.spark.sql(f"ALTER TABLE {self.name(contract)} SET TBLPROPERTIES ('{PUBLISHED_PROPERTY}' = '{int(version)}')")
        self._point_view(contract, version)

    def restore(self, contract: TableContract, version: int) -> None:
        """Make the latest version hold the published data again; the failed one stays in history.

        RESTORE brings back the table properties of `version` too, which predate its publication,
        so the published version is set again afterwards.
        """
        self.spark.sql(f"RESTORE TABLE {self.name(contract)} TO VERSION AS OF {int(version)}")
        self.publish(contract, version)

    def _point_view(self, contract: TableContract, version: int) -> None:
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {self.schema_name(contract.layer)}")
        self.spark.sql(
            f"CREATE OR REPLACE VIEW {self.view_name(contract)} COMMENT '{contract.description.replace(chr(39), '')}' "
            f"AS SELECT * FROM {self.name(contract)} VERSION AS OF {int(version)}"
        )

    def merge(self, contract: TableContract, rows: DataFrame, update_when: str | None = None,
              update_set: dict | None = None) -> WriteResult:
        """MERGE `rows` on the contract's keys: insert new keys; optionally update matched rows.

        `rows` must already be unique on the keys. Without `update_when` a matched row is left as
        it is, which is what makes re-running a stage a no-op. Nothing to write, no commit.
        """
        self.ensure(contract)
        name = self.name(contract)
        rows = rows.select(*contract.schema.fieldNames())
        # Partition columns first so Delta prunes the files a MERGE has to read.
        match_columns = dict.fromkeys((*contract.partition_by, *contract.keys))
        on = " AND ".join(f"t.`{c}` = s.`{c}`" for c in match_columns)
        # Delta commits a version even when a MERGE changes nothing: keep only new or changed rows.
        unchanged = on if update_when is None else f"{on} AND NOT ({update_when})"
        rows = rows.alias("s").join(self.spark.table(name).alias("t"), F.expr(unchanged), "left_anti")
        if rows.isEmpty():
            return WriteResult(contract.logical_name, self.latest_version(contract), inserted=0, updated=0, changed=False)
        merge = DeltaTable.forName(self.spark, name).alias("t").merge(rows.alias("s"), on)
        if update_when is not None:
            merge = merge.whenMatchedUpdate(condition=update_when, set=update_set)
        merge.whenNotMatchedInsertAll().execute()
        history = DeltaTable.forName(self.spark, name).history(1).select("version", "operationMetrics").first()
        metrics = history["operationMetrics"] or {}
        inserted = int(metrics.get("numTargetRowsInserted", 0))
        updated = int(metrics.get("numTargetRowsUpdated", 0))
        result = WriteResult(contract.logical_name, history["version"], inserted, updated, changed=inserted + updated > 0)
        log.info("%s: MERGE v%d inserted %d, updated %d", name, result.version, inserted, updated)
        return result


def describe_tables(lake: Lake) -> str:
    """Every contract's table: what readers see (published version and its rows) and the latest version."""
    lines = [f"{'table (readers)':<30}{'published':>10}{'latest':>8}{'rows':>9}  description"]
    for contract in ALL_TABLES:
        shown = lake.view_name(contract) if contract.gated else lake.name(contract)
        if not lake.spark.catalog.tableExists(lake.name(contract)):
            lines.append(f"{shown:<30}{'-':>10}{'-':>8}{'-':>9}  (not created yet) {contract.description}")
            continue
        published = lake.published_version(contract) if contract.gated else lake.latest_version(contract)
        rows = lake.read(contract).count()
        lines.append(f"{shown:<30}{published:>10}{lake.latest_version(contract):>8}{rows:>9}  {contract.description}")
    return "\n".join(lines)
