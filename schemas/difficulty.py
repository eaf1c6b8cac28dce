"""gold.difficulty: a small model's pass rate over k answers per question, and the subsets it selects."""

from enum import StrEnum

from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StringType, StructField, StructType

from schemas import generated, suites
from schemas.contract import TableContract


class Status(StrEnum):
    OK = "ok"
    UNVERIFIABLE = "unverifiable"  # free-form gold answer: no rule can check it
    FAILED = "failed"  # every sample failed to generate


KEYS = (*generated.TURN_KEYS, "model", "prompt_version")

SCHEMA = StructType([
    StructField("sample_id", StringType(), False),
    StructField("turn_index", IntegerType(), False),
    StructField("source", StringType(), False),
    StructField("status", StringType(), False),
    StructField("reason", StringType(), True),
    StructField("k", IntegerType(), False),
    StructField("checked", IntegerType(), False),  # answers the rule could decide
    StructField("passes", IntegerType(), False),
    StructField("pass_rate", DoubleType(), True),  # passes / checked; null when nothing was checkable
    StructField("answers", ArrayType(StringType(), True), False),  # the k final answers
    StructField("subsets", ArrayType(StringType(), True), False),  # named selections this question is in
    *generated.PROVENANCE,  # raw_output: the k outputs as a JSON list; finish_reason: the worst of the k
])

CHECKS = {
    **generated.CHECKS,
    "check_pass_rate": lambda settings: F.when(F.col("checked") > 0, F.abs(F.col("pass_rate") - F.col("passes") / F.col("checked")) < 1e-9)
    .otherwise(F.col("pass_rate").isNull()),
    "check_answers_k": lambda settings: F.size("answers") == F.col("k"),
}


def expectations(settings: None) -> list:
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.in_set("status", list(Status)),
        suites.between("pass_rate", 0.0, 1.0),
        *generated.expectations(),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold", name="difficulty", schema=SCHEMA, keys=KEYS, partition_by=("source",), version=2,  # 2: context_used
    description="Pass rate of a small model over k answers per question, and the difficulty subsets it is in.",
    expectations=expectations, checks=CHECKS,
)
