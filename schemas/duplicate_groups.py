"""gold.duplicate_groups: every sample's duplicate group under the configured rule, and who is kept."""

import great_expectations.expectations as gxe
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import SuiteInputs, TableContract

KEYS = ("sample_id",)
RULES = ("image", "text", "image_and_text")

SCHEMA = StructType(
    [
        StructField("sample_id", StringType(), False),
        StructField("source", StringType(), False),
        StructField("image_group", StringType(), True),  # the sample's images, by near-duplicate group
        StructField("text_group", StringType(), False),  # its instruction, by near-duplicate group
        StructField("group_id", StringType(), False),
        StructField("group_size", LongType(), False),
        StructField("representative", StringType(), False),  # the sample_id the keep policy keeps
        StructField("is_representative", BooleanType(), False),
        StructField("rule", StringType(), False),
        StructField("grouped_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)

CHECKS = {
    "check_representative_flag": lambda inputs: F.col("is_representative") == (F.col("representative") == F.col("sample_id")),
}


def expectations(inputs: SuiteInputs) -> list:
    return [
        *suites.required_columns(SCHEMA),
        suites.unique_keys(KEYS),
        gxe.ExpectColumnValuesToBeBetween(column="group_size", min_value=1),
        gxe.ExpectColumnValuesToBeInSet(column="rule", value_set=list(RULES)),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold",
    name="duplicate_groups",
    schema=SCHEMA,
    keys=KEYS,
    partition_by=("source",),
    description="Each sample's duplicate group (flags, not deletions) and the representative kept.",
    expectations=expectations,
    checks=CHECKS,
)
