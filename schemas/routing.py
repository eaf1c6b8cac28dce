"""gold.routing: HoneyPipe's short-to-long routing outcome per turn. Failures stay, marked."""

import great_expectations.expectations as gxe
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import SuiteInputs, TableContract

KEYS = ("sample_id", "turn_index")
# short_correct: kept from the short teacher; long_correct: the long teacher fixed it;
# failed_both: neither verified (kept in the table, marked); long_pending: not routed yet.
OUTCOMES = ("short_correct", "long_correct", "failed_both", "long_pending")

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
    "check_chosen_when_correct": lambda inputs: F.col("chosen_teacher").isNull()
    == F.col("outcome").isin("failed_both", "long_pending"),
}


def expectations(inputs: SuiteInputs) -> list:
    return [
        *suites.required_columns(SCHEMA),
        suites.unique_keys(KEYS),
        gxe.ExpectColumnValuesToBeInSet(column="outcome", value_set=list(OUTCOMES)),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold", name="routing", schema=SCHEMA, keys=KEYS, partition_by=("source",),
    description="Short-to-long CoT routing outcome per turn; what fails both teachers stays, marked failed_both.",
    expectations=expectations, checks=CHECKS,
)
