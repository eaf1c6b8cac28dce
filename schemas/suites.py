"""Building blocks of the expectation suites, so each table's suite reads as a list of rules."""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe
from pyspark.sql.types import StructType

HEX_32 = r"^[0-9a-f]{32}$"
HEX_64 = r"^[0-9a-f]{64}$"


def required_columns(schema: StructType) -> list[Any]:
    """Types and nullability: the exact column list, and no nulls where the schema says NOT NULL."""
    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=schema.fieldNames(), exact_match=False),
        *[gxe.ExpectColumnValuesToNotBeNull(column=f.name) for f in schema.fields if not f.nullable],
    ]


def unique_keys(keys: tuple[str, ...]) -> Any:
    if len(keys) == 1:
        return gxe.ExpectColumnValuesToBeUnique(column=keys[0])
    return gxe.ExpectCompoundColumnsToBeUnique(column_list=list(keys))


def all_true(*columns: str) -> list[Any]:
    """The derived check columns hold for every row."""
    return [gxe.ExpectColumnValuesToBeInSet(column=c, value_set=[True]) for c in columns]
