"""gold.contamination: training samples that overlap a benchmark item. Flags, never deletions."""

from enum import StrEnum

from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import TableContract


class Kind(StrEnum):
    IMAGE = "image"  # similarity: the best SSCD cosine or 1 - Hamming/64 of the pairs that fired
    TEXT = "text"  # similarity: the share of the question's n-grams the sample holds


KEYS = ("sample_id", "benchmark", "item_id", "kind")

SCHEMA = StructType(
    [
        StructField("sample_id", StringType(), False),
        StructField("source", StringType(), False),
        StructField("benchmark", StringType(), False),
        StructField("item_id", StringType(), False),
        StructField("kind", StringType(), False),
        StructField("similarity", DoubleType(), False),
        StructField("evidence", StringType(), False),
        StructField("found_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)

CHECKS = {
    "check_within_threshold": lambda settings: (F.col("kind") == Kind.IMAGE)
    | (F.col("similarity") + 1e-6 >= settings.text_min_overlap),
}


def expectations(settings) -> list:
    """`settings`: the decontaminate section of the config."""
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.in_set("kind", list(Kind)),
        suites.between("similarity", 0.0, 1.0 + 1e-6),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold",
    name="contamination",
    schema=SCHEMA,
    keys=KEYS,
    partition_by=("benchmark",),
    description="Training samples whose image or question overlaps a benchmark item (flags, not deletions).",
    settings="decontaminate",
    expectations=expectations,
    checks=CHECKS,
)
