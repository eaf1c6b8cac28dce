"""gold.duplicate_pairs: the evidence of dedup, one row per near-duplicate pair found."""

import great_expectations.expectations as gxe
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import SuiteInputs, TableContract

KEYS = ("kind", "left_id", "right_id")
KINDS = ("phash", "sscd", "text")  # image ids for phash and sscd, text hashes for text

SCHEMA = StructType(
    [
        StructField("kind", StringType(), False),
        StructField("left_id", StringType(), False),  # left_id < right_id
        StructField("right_id", StringType(), False),
        StructField("similarity", DoubleType(), False),  # 1 - hamming/64, cosine, or Jaccard
        StructField("evidence", StringType(), False),
        StructField("found_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)

CHECKS = {
    "check_ordered_pair": lambda inputs: F.col("left_id") < F.col("right_id"),
    "check_within_threshold": lambda inputs: F.col("similarity") + 1e-6 >= (
        F.when(F.col("kind") == "phash", 1 - inputs.phash_radius / 64)
        .when(F.col("kind") == "sscd", inputs.sscd_tau)
        .otherwise(inputs.text_jaccard)
    ),
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
    name="duplicate_pairs",
    schema=SCHEMA,
    keys=KEYS,
    partition_by=("kind",),
    description="Near-duplicate pairs with their similarity: pHash and SSCD between images, MinHash between texts.",
    expectations=expectations,
    checks=CHECKS,
)
