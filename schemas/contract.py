from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql.types import StructType


@dataclass(frozen=True)
class TableContract:
    """What a table promises its readers. `layer.name` is its logical name in every environment."""

    layer: str
    name: str
    schema: StructType
    keys: tuple[str, ...]
    description: str
    partition_by: tuple[str, ...] = ()
    version: int = 1

    @property
    def logical_name(self) -> str:
        return f"{self.layer}.{self.name}"

    def __post_init__(self) -> None:
        columns = set(self.schema.fieldNames())
        missing = [c for c in (*self.keys, *self.partition_by) if c not in columns]
        if missing:
            raise ValueError(f"{self.logical_name}: keys/partitions not in the schema: {missing}")
