"""gold.verdicts: is a teacher's final answer right? By rule where the answer allows, else by a judge."""

import great_expectations.expectations as gxe
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import SuiteInputs, TableContract

KEYS = ("sample_id", "turn_index", "teacher")
VERDICTS = ("correct", "incorrect", "unverified")  # unverified: no answer to check, or the judge gave none
METHODS = ("rule", "judge", "none")

SCHEMA = StructType([
    StructField("sample_id", StringType(), False),
    StructField("turn_index", IntegerType(), False),
    StructField("source", StringType(), False),
    StructField("teacher", StringType(), False),
    StructField("model", StringType(), False),  # the teacher's model
    StructField("verdict", StringType(), False),
    StructField("method", StringType(), False),
    StructField("reason", StringType(), False),  # the rule's reason, the judge's score, or why neither decided
    StructField("judge_model", StringType(), True),
    StructField("judge_prompt_version", StringType(), True),
    StructField("judge_score", IntegerType(), True),
    StructField("judge_output", StringType(), True),
    StructField("judge_calls", IntegerType(), False),
    StructField("verified_at", TimestampType(), False),
    StructField("run_id", StringType(), False),
])

CHECKS = {
    "check_judge_fields": lambda inputs: (F.col("method") != "judge") | (
        F.col("judge_model").isNotNull() & (F.col("judge_calls") > 0)),
    "check_judge_score_decides": lambda inputs: F.col("judge_score").isNull() | (F.col("method") == "judge"),
}


def expectations(inputs: SuiteInputs) -> list:
    return [
        *suites.required_columns(SCHEMA),
        suites.unique_keys(KEYS),
        gxe.ExpectColumnValuesToBeInSet(column="verdict", value_set=list(VERDICTS)),
        gxe.ExpectColumnValuesToBeInSet(column="method", value_set=list(METHODS)),
        gxe.ExpectColumnValuesToBeBetween(column="judge_score", min_value=1, max_value=5),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold", name="verdicts", schema=SCHEMA, keys=KEYS, partition_by=("source",),
    description="Verdict per distilled answer (correct, incorrect, unverified), by rule or judge, with a reason.",
    expectations=expectations, checks=CHECKS,
)
