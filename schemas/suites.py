"""Building blocks of the expectation suites, so each table's suite reads as a list of rules.

Great Expectations is imported when a suite is built, not when a schema module is: Python
workers import the schemas for their row types and never build a suite.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pyspark.sql.types import StructType

HEX_16 = r"^[0-9a-f]{16}$"
HEX_32 = r"^[0-9a-f]{32}$"
HEX_64 = r"^[0-9a-f]{64}$"


def _gxe():
    import great_expectations.expectations as gxe

    return gxe


def required_columns(schema: StructType) -> list[Any]:
    """Types and nullability: the exact column list, and no nulls where the schema says NOT NULL."""
    gxe = _gxe()
    return [
        gxe.ExpectTableColumnsToMatchSet(column_set=schema.fieldNames(), exact_match=False),
        *[gxe.ExpectColumnValuesToNotBeNull(column=f.name) for f in schema.fields if not f.nullable],
    ]


def unique_keys(keys: tuple[str, ...]) -> Any:
    if len(keys) == 1:
        return _gxe().ExpectColumnValuesToBeUnique(column=keys[0])
    return _gxe().ExpectCompoundColumnsToBeUnique(column_list=list(keys))


def standard(schema: StructType, keys: tuple[str, ...]) -> list[Any]:
    """What every gated table's suite starts with: its columns, nullability and unique keys."""
    return [*required_columns(schema), unique_keys(keys)]


def in_set(column: str, values: Iterable[Any]) -> Any:
    return _gxe().ExpectColumnValuesToBeInSet(column=column, value_set=[str(v) if isinstance(v, str) else v for v in values])


def between(column: str, low: float | None = None, high: float | None = None) -> Any:
    return _gxe().ExpectColumnValuesToBeBetween(column=column, min_value=low, max_value=high)


def matches(column: str, regex: str) -> Any:
    return _gxe().ExpectColumnValuesToMatchRegex(column=column, regex=regex)


def at_least(column_a: str, column_b: str) -> Any:
    """column_a >= column_b on every row."""
    return _gxe().ExpectColumnPairValuesAToBeGreaterThanB(column_A=column_a, column_B=column_b, or_equal=True)


def equal(column_a: str, column_b: str) -> Any:
    return _gxe().ExpectColumnPairValuesToBeEqual(column_A=column_a, column_B=column_b)


def all_true(*columns: str) -> list[Any]:
    """The derived check columns hold for every row."""
    return [in_set(c, [True]) for c in columns]
