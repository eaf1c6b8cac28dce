"""gold.verdicts: is a teacher's final answer right? By rule where the answer allows, else by a judge.

Partitioned by teacher, like gold.reasoning: verify owns `short`, route owns `long`.
"""

from enum import StrEnum

from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import TableContract
from schemas.reasoning import KEYS, Teacher


class Verdict(StrEnum):
    CORRECT = "correct"
    INCORRECT = "incorrect"
    UNVERIFIED = "unverified"  # no answer to check, or the judge gave none


class Method(StrEnum):
    RULE = "rule"  # udfs/answers.py: choices, numbers, yes/no
    JUDGE = "judge"  # the fidelity judge, for free-form answers
    NONE = "none"  # nothing to check


JUDGE_AXES = ("score",)  # the fidelity judge answers one 1-5 score

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
    "check_judge_fields": lambda settings: (F.col("method") != Method.JUDGE) | (
        F.col("judge_model").isNotNull() & (F.col("judge_calls") > 0)),
    "check_judge_score_decides": lambda settings: F.col("judge_score").isNull() | (F.col("method") == Method.JUDGE),
}


def expectations(settings: None) -> list:
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.in_set("teacher", list(Teacher)),
        suites.in_set("verdict", list(Verdict)),
        suites.in_set("method", list(Method)),
        suites.between("judge_score", 1, 5),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold", name="verdicts", schema=SCHEMA, keys=KEYS, partition_by=("teacher",), version=2,  # 2: by teacher
    description="Verdict per distilled answer (correct, incorrect, unverified), by rule or judge, with a reason.",
    expectations=expectations, checks=CHECKS,
)
