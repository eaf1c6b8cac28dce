from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql.types import StructType


@dataclass(frozen=True)
class SuiteInputs:
    """What a suite may depend on besides the table: the config's policies and the run writing it."""

    run_id: str
    max_side: int
    max_chars: int
    phash_radius: int = 0  # dedup thresholds: every pair found must be at least this close
    sscd_tau: float = 1.0
    text_jaccard: float = 1.0
    text_overlap: float = 1.0  # decontamination: share of a benchmark question's n-grams


@dataclass(frozen=True)
class TableContract:
    """What a table promises its readers. `layer.name` is its logical name in every environment.

    `checks` are boolean columns derived from a row (nested fields, hashes, cross-field rules)
    that the suite expects to be true; `expectations` builds the Great Expectations suite over
    the table plus those columns. Ops tables, written by the gate itself, are not gated.
    """

    layer: str
    name: str
    schema: StructType
    keys: tuple[str, ...]
    description: str
    partition_by: tuple[str, ...] = ()
    version: int = 1
    expectations: Callable[[SuiteInputs], list[Any]] | None = None
    checks: dict[str, Callable[[SuiteInputs], Column]] = field(default_factory=dict)

    @property
    def logical_name(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def gated(self) -> bool:
        return self.expectations is not None

    def validation_frame(self, table: DataFrame, inputs: SuiteInputs) -> DataFrame:
        derived = [build(inputs).alias(name) for name, build in self.checks.items()]
        return table.select(*table.columns, *derived)

    def __post_init__(self) -> None:
        columns = set(self.schema.fieldNames())
        missing = [c for c in (*self.keys, *self.partition_by) if c not in columns]
        if missing:
            raise ValueError(f"{self.logical_name}: keys/partitions not in the schema: {missing}")
