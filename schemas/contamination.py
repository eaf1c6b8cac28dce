"""gold.contamination: training samples that overlap a benchmark item. Flags, never deletions."""

import great_expectations.expectations as gxe
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import SuiteInputs, TableContract

KEYS = ("sample_id", "benchmark", "item_id", "kind")
KINDS = ("image", "text")

SCHEMA = StructType(
    [
        StructField("sample_id", StringType(), False),
        StructField("source", StringType(), False),
        StructField("benchmark", StringType(), False),
        StructField("item_id", StringType(), False),
        StructField("kind", StringType(), False),
        StructField("similarity", DoubleType(), False),  # image: best SSCD cosine; text: share of n-grams
        StructField("evidence", StringType(), False),
        StructField("found_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)

CHECKS = {
    "check_within_threshold": lambda inputs: (F.col("kind") == "image") | (F.col("similarity") + 1e-6 >= inputs.text_overlap),
}


def expectations(inputs: SuiteInputs) -> list:
    return [
        *suites.required_columns(SCHEMA),
        suites.unique_keys(KEYS),
        gxe.ExpectColumnValuesToBeInSet(column="kind", value_set=list(KINDS)),
        gxe.ExpectColumnValuesToBeBetween(column="similarity", min_value=0.0, max_value=1.0 + 1e-6),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold",
    name="contamination",
    schema=SCHEMA,
    keys=KEYS,
    partition_by=("benchmark",),
    description="Training samples whose image or question overlaps a benchmark item (flags, not deletions).",
    expectations=expectations,
    checks=CHECKS,
)
