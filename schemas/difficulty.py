"""gold.difficulty: a small model's pass rate over k answers per question, and the subsets it selects."""

import great_expectations.expectations as gxe
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StringType, StructField, StructType

from schemas import generated, suites
from schemas.contract import SuiteInputs, TableContract

KEYS = ("sample_id", "turn_index", "model", "prompt_version")
STATUSES = ("ok", "unverifiable", "failed")  # unverifiable: free-form gold answer, no rule can check it

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
    "check_pass_rate": lambda inputs: F.when(F.col("checked") > 0, F.abs(F.col("pass_rate") - F.col("passes") / F.col("checked")) < 1e-9)
    .otherwise(F.col("pass_rate").isNull()),
    "check_answers_k": lambda inputs: F.size("answers") == F.col("k"),
}


def expectations(inputs: SuiteInputs) -> list:
    return [
        *suites.required_columns(SCHEMA),
        suites.unique_keys(KEYS),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
        gxe.ExpectColumnValuesToBeBetween(column="pass_rate", min_value=0.0, max_value=1.0),
        *generated.expectations(),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold", name="difficulty", schema=SCHEMA, keys=KEYS, partition_by=("source",),
    description="Pass rate of a small model over k answers per question, and the difficulty subsets it is in.",
    expectations=expectations, checks=CHECKS,
)
