"""What every table contract is made of, and the row types derived from a contract's schema."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, BinaryType, DataType, StringType, StructField, StructType

# Why a row of a stage's intermediate output is not kept: a reason code and a human detail.
OUTCOME_FIELDS = (StructField("reason", StringType(), True), StructField("detail", StringType(), True))


@dataclass(frozen=True)
class TableContract:
    """What a table promises its readers. `layer.name` is its logical name in every environment.

    `settings` names the config section of the stage that writes the table; the suite is built
    from that section (`expectations(section)`), so a threshold reaches the suite from the
    stage's own config. `checks` are boolean columns derived from a row (nested fields, hashes,
    cross-field rules) that the suite expects to be true. Ops tables (written by the gate
    itself) have no suite.
    """

    layer: str
    name: str
    schema: StructType
    keys: tuple[str, ...]
    description: str
    partition_by: tuple[str, ...] = ()
    version: int = 1
    settings: str | None = None
    expectations: Callable[[Any], list[Any]] | None = None
    checks: dict[str, Callable[[Any], Column]] = field(default_factory=dict)

    @property
    def logical_name(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def match_columns(self) -> list[str]:
        """Partition columns, then keys: what a MERGE matches on (partition columns first, so it prunes)."""
        return list(dict.fromkeys((*self.partition_by, *self.keys)))

    @property
    def gated(self) -> bool:
        return self.expectations is not None

    def suite(self, settings: Any) -> list[Any]:
        return self.expectations(settings) if self.expectations else []

    def validation_frame(self, rows: DataFrame, settings: Any) -> DataFrame:
        """The rows with their derived checks, every bytes value replaced by its length: the checks
        read the bytes, the suite never needs them, so an audit never carries images around."""
        derived = [build(settings).alias(name) for name, build in self.checks.items()]
        return rows.select(*[_without_bytes(F.col(f.name), f.dataType).alias(f.name) for f in rows.schema.fields],
                           *derived)

    def __post_init__(self) -> None:
        columns = set(self.schema.fieldNames())
        missing = [c for c in (*self.keys, *self.partition_by) if c not in columns]
        if missing:
            raise ValueError(f"{self.logical_name}: keys/partitions not in the schema: {missing}")


def _without_bytes(column: Column, kind: DataType) -> Column:
    if isinstance(kind, BinaryType):
        return F.length(column)
    if isinstance(kind, StructType) and _holds_bytes(kind):
        return F.when(column.isNotNull(), F.struct(*[_without_bytes(column[f.name], f.dataType).alias(f.name)
                                                    for f in kind.fields]))
    if isinstance(kind, ArrayType) and _holds_bytes(kind.elementType):
        return F.transform(column, lambda item: _without_bytes(item, kind.elementType))
    return column


def _holds_bytes(kind: DataType) -> bool:
    if isinstance(kind, StructType):
        return any(_holds_bytes(f.dataType) for f in kind.fields)
    return isinstance(kind, BinaryType) or (isinstance(kind, ArrayType) and _holds_bytes(kind.elementType))


def outcome_row(schema: StructType, columns: Sequence[str], *extra: StructField) -> StructType:
    """The row a UDF emits on its way to a table: the table's `columns` (nullable: a rejected row
    may lack them), `extra` working fields, then `reason` and `detail` (null reason = kept)."""
    fields = [StructField(schema[c].name, schema[c].dataType, True) for c in columns]
    return StructType([*fields, *extra, *OUTCOME_FIELDS])


def arrow_schema(struct: StructType):
    """The Arrow schema of a Spark row type, for UDFs that build Arrow batches themselves."""
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(struct, timezone="UTC")
