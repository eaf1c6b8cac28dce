"""gold.routing: HoneyPipe's short-to-long routing outcome per turn. Failures stay, marked."""

from enum import StrEnum

from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType, TimestampType

from schemas import generated, suites
from schemas.contract import TableContract


class Outcome(StrEnum):
    SHORT_CORRECT = "short_correct"  # kept from the short teacher
    LONG_CORRECT = "long_correct"  # the long teacher fixed it
    FAILED_BOTH = "failed_both"  # neither verified: kept in the table, marked
    LONG_PENDING = "long_pending"  # not routed yet (e.g. a run with a commit budget)


UNCHOSEN = (Outcome.FAILED_BOTH, Outcome.LONG_PENDING)
KEYS = generated.TURN_KEYS

SCHEMA = StructType([
    StructField("sample_id", StringType(), False),
    StructField("turn_index", IntegerType(), False),
    StructField("source", StringType(), False),
    StructField("outcome", StringType(), False),
    StructField("chosen_teacher", StringType(), True),  # whose reasoning to train on; null unless verified
    StructField("short_verdict", StringType(), False),
    StructField("long_verdict", StringType(), True),
    StructField("routed_at", TimestampType(), False),
    StructField("run_id", StringType(), False),
])

CHECKS = {
    "check_chosen_when_correct": lambda settings: F.col("chosen_teacher").isNull() == F.col("outcome").isin(*UNCHOSEN),
}


def expectations(settings: None) -> list:
    return [*suites.standard(SCHEMA, KEYS), suites.in_set("outcome", list(Outcome)), *suites.all_true(*CHECKS)]


CONTRACT = TableContract(
    layer="gold", name="routing", schema=SCHEMA, keys=KEYS, partition_by=("source",),
    description="Short-to-long CoT routing outcome per turn; what fails both teachers stays, marked failed_both.",
    expectations=expectations, checks=CHECKS,
)
