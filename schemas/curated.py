"""gold.curated: the published corpus. One row per kept sample: the turns the policy keeps, with
their ratings and (when verified) the teacher's reasoning, the images by id, the difficulty subsets,
and the policy and input versions that produced the row."""

from pyspark.sql import functions as F
from pyspark.sql.types import (ArrayType, IntegerType, LongType, MapType, StringType, StructField, StructType,
                               TimestampType)

from schemas import silver_samples, suites
from schemas.contract import TableContract
from schemas.turn_ratings import AXES

# turn_index first: array_sort orders a sample's turns as silver.samples holds them
TURN = StructType([
    StructField("turn_index", IntegerType(), True),  # the turn's position in silver.samples
    StructField("user", StringType(), True),
    StructField("assistant", StringType(), True),  # `<think>...</think>` + the answer when reasoning is used
    StructField("reasoning_teacher", StringType(), True),  # whose verified reasoning the answer carries; null: none
    *[StructField(axis, IntegerType(), True) for axis in AXES],  # the turn's 1-5 ratings; null: not rated
])

KEYS = ("sample_id",)

SAMPLE_COLUMNS = ("sample_id", "source", "subset", "source_key", "category", "license", "language", "image_ids")

SCHEMA = StructType([
    *[silver_samples.SCHEMA[c] for c in SAMPLE_COLUMNS],  # as silver.samples holds them
    StructField("turns", ArrayType(TURN, True), False),
    StructField("subsets", ArrayType(StringType(), True), False),  # the difficulty subsets its turns are in
    StructField("policy_hash", StringType(), False),  # publish.policy's hash
    StructField("inputs", MapType(StringType(), LongType(), True), False),  # table -> version the deciding run read
    StructField("published_at", TimestampType(), False),
    StructField("run_id", StringType(), False),
])

def _rated_within_scale(turn):
    within = F.lit(True)
    for axis in AXES:
        within = within & (turn[axis].isNull() | turn[axis].between(1, 5))
    return within


CHECKS = {
    "check_turns_non_empty": lambda settings: (F.size("turns") > 0)
    & F.forall("turns", lambda t: (F.length(F.trim(t["user"])) > 0) & (F.length(F.trim(t["assistant"])) > 0)),
    "check_turn_ratings_in_range": lambda settings: F.forall("turns", _rated_within_scale),
    "check_turns_in_order": lambda settings: F.col("turns") == F.array_sort("turns"),
}


def expectations(settings: None) -> list:
    return [*suites.standard(SCHEMA, KEYS), suites.matches("policy_hash", suites.HEX_16), *suites.all_true(*CHECKS)]


CONTRACT = TableContract(
    layer="gold", name="curated", schema=SCHEMA, keys=KEYS, partition_by=("source",),
    description="The published corpus: kept samples in the chat schema, by publish.policy (see gold.curation_decisions).",
    expectations=expectations, checks=CHECKS,
)
