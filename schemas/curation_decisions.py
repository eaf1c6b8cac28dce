"""gold.curation_decisions: why publish left a sample or a turn out of gold.curated, with the evidence.

Per source, the samples of silver.samples = the samples of gold.curated + the samples with a
`sample` decision. A decision that no longer holds (new inputs, another policy) is removed.
"""

from enum import StrEnum

from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import TableContract


class Rule(StrEnum):
    """In the order publish applies them: a sample left out is counted under its first rule."""

    CONTAMINATED = "contaminated"  # sample: flagged in gold.contamination for a benchmark the policy names
    DUPLICATE_COPY = "duplicate_copy"  # sample: its near-duplicate group keeps another sample
    FAILED_BOTH = "failed_both"  # turn or sample: neither teacher's answer verified (policy: drop_turn, drop_sample)
    LOW_RATING = "low_rating"  # turn: an axis below the policy's minimum
    UNRATED = "unrated"  # turn: no parsed rating, and the policy keeps rated turns only
    NO_TURNS_LEFT = "no_turns_left"  # sample: every turn was left out


class Scope(StrEnum):
    SAMPLE = "sample"
    TURN = "turn"


WHOLE_SAMPLE = -1  # turn_index of a sample-level decision
KEYS = ("sample_id", "turn_index", "rule")

SCHEMA = StructType([
    StructField("sample_id", StringType(), False),
    StructField("source", StringType(), False),
    StructField("turn_index", IntegerType(), False),  # -1: the whole sample
    StructField("scope", StringType(), False),
    StructField("rule", StringType(), False),
    StructField("evidence", StringType(), False),  # what the rule saw: group and representative, benchmark item, scores
    StructField("policy_hash", StringType(), False),
    StructField("decided_at", TimestampType(), False),
    StructField("run_id", StringType(), False),
])

CHECKS = {
    "check_scope_matches_turn": lambda settings: (F.col("scope") == Scope.SAMPLE) == (F.col("turn_index") == WHOLE_SAMPLE),
}


def expectations(settings: None) -> list:
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.in_set("rule", list(Rule)),
        suites.in_set("scope", list(Scope)),
        suites.matches("policy_hash", suites.HEX_16),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold", name="curation_decisions", schema=SCHEMA, keys=KEYS, partition_by=("source",),
    description="Why publish left a sample or turn out of gold.curated (rule and evidence): nothing leaves unexplained.",
    expectations=expectations, checks=CHECKS,
)
