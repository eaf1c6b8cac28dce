"""gold.duplicate_groups: every sample's duplicate group under the configured rule, and who is kept."""

from enum import StrEnum

from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, BooleanType, LongType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import TableContract


class Rule(StrEnum):
    """What makes two samples duplicates (HoneyPipe's default: both their images and their instruction)."""

    IMAGE = "image"
    TEXT = "text"
    IMAGE_AND_TEXT = "image_and_text"


KEYS = ("sample_id",)

SCHEMA = StructType(
    [
        StructField("sample_id", StringType(), False),
        StructField("source", StringType(), False),
        StructField("text_hash", StringType(), False),  # the instruction's hash (a member of gold.duplicate_components)
        StructField("text_chars", LongType(), False),  # characters in all turns: the keep policy prefers more
        StructField("image_group", StringType(), True),  # the sample's images, by near-duplicate group
        StructField("text_group", StringType(), False),  # its instruction, by near-duplicate group
        StructField("group_id", StringType(), False),
        StructField("group_size", LongType(), False),
        StructField("representative", StringType(), False),  # the sample_id the keep policy keeps
        StructField("is_representative", BooleanType(), False),
        StructField("rule", StringType(), False),
        StructField("source_priority", ArrayType(StringType(), True), False),  # the keep policy's source order
        StructField("grouped_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)

CHECKS = {
    "check_representative_flag": lambda settings: F.col("is_representative") == (F.col("representative") == F.col("sample_id")),
}


def expectations(settings: None) -> list:
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.between("group_size", low=1),
        suites.in_set("rule", list(Rule)),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold",
    name="duplicate_groups",
    schema=SCHEMA,
    keys=KEYS,
    partition_by=("source",),
    version=2,  # 2: text_hash, text_chars, source_priority (incremental grouping)
    description="Each sample's duplicate group (flags, not deletions) and the representative kept.",
    expectations=expectations,
    checks=CHECKS,
)
