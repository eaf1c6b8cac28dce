"""Delta tables by contract: names per environment, creation, reads, key-based MERGE writes."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from jobs.runtime.config import Config
from schemas import ALL_TABLES
from schemas.contract import TableContract

log = logging.getLogger("finelake")
SCHEMA_VERSION_PROPERTY = "finelake.schema_version"


class TableContractError(RuntimeError):
    pass


@dataclass(frozen=True)
class WriteResult:
    table: str
    version: int
    inserted: int
    updated: int


class Lake:
    """The tables of one environment: `[catalog.]<prefix><layer>.<name>`."""

    def __init__(self, spark: SparkSession, config: Config):
        self.spark = spark
        self.config = config

    def schema_name(self, layer: str) -> str:
        schema = f"{self.config.catalog.schema_prefix}{layer}"
        return f"{self.config.catalog.name}.{schema}" if self.config.catalog.name else schema

    def name(self, contract: TableContract) -> str:
        return f"{self.schema_name(contract.layer)}.{contract.name}"

    def ensure(self, contract: TableContract) -> None:
        """Create the schema and table when absent; refuse a table written under another contract version."""
        name = self.name(contract)
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {self.schema_name(contract.layer)}")
        if not self.spark.catalog.tableExists(name):
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
            return
        found = self.table_properties(name).get(SCHEMA_VERSION_PROPERTY)
        if found != str(contract.version):
            raise TableContractError(
                f"{name} has {SCHEMA_VERSION_PROPERTY}={found}, this code writes version {contract.version}: "
                "migrate the table or point catalog.schema_prefix at a new one"
            )

    def table_properties(self, name: str) -> dict[str, str]:
        detail = self.spark.sql(f"DESCRIBE DETAIL {name}").select("properties").first()
        return dict(detail["properties"] or {})

    def read(self, contract: TableContract) -> DataFrame:
        self.ensure(contract)
        return self.spark.table(self.name(contract))

    def version(self, contract: TableContract) -> int:
        return DeltaTable.forName(self.spark, self.name(contract)).history(1).select("version").first()["version"]

    def merge(self, contract: TableContract, rows: DataFrame, update_when: str | None = None,
              update_set: dict | None = None) -> WriteResult:
        """MERGE `rows` on the contract's keys: insert new keys; optionally update matched rows.

        `rows` must already be unique on the keys. Without `update_when` a matched row is left as
        it is, which is what makes re-running a stage a no-op.
        """
        self.ensure(contract)
        name = self.name(contract)
        rows = rows.select(*contract.schema.fieldNames())
        if rows.isEmpty():
            return WriteResult(table=name, version=self.version(contract), inserted=0, updated=0)
        # Partition columns first so Delta prunes the files a MERGE has to read.
        match_columns = dict.fromkeys((*contract.partition_by, *contract.keys))
        on = " AND ".join(f"t.`{c}` = s.`{c}`" for c in match_columns)
        merge = DeltaTable.forName(self.spark, name).alias("t").merge(rows.alias("s"), on)
        if update_when is not None:
            merge = merge.whenMatchedUpdate(condition=update_when, set=update_set)
        merge.whenNotMatchedInsertAll().execute()
        history = DeltaTable.forName(self.spark, name).history(1).select("version", "operationMetrics").first()
        metrics = history["operationMetrics"] or {}
        result = WriteResult(
            table=name,
            version=history["version"],
            inserted=int(metrics.get("numTargetRowsInserted", 0)),
            updated=int(metrics.get("numTargetRowsUpdated", 0)),
        )
        log.info("%s: MERGE v%d inserted %d, updated %d", name, result.version, result.inserted, result.updated)
        return result



def describe_tables(lake: Lake) -> str:
    """Every contract's table: Delta version and row count (Delta answers counts from its log stats)."""
    lines = [f"{'table':<34}{'version':>8}{'rows':>10}  description"]
    for contract in ALL_TABLES:
        name = lake.name(contract)
        if not lake.spark.catalog.tableExists(name):
            lines.append(f"{name:<34}{'-':>8}{'-':>10}  (not created yet) {contract.description}")
            continue
        rows = lake.spark.table(name).count()
        lines.append(f"{name:<34}{lake.version(contract):>8}{rows:>10}  {contract.description}")
    return "\n".join(lines)
