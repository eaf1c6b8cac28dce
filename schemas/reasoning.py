"""gold.reasoning: a teacher's chain of thought and final answer per turn (distill; route adds `long`)."""

import great_expectations.expectations as gxe
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from schemas import generated, suites
from schemas.contract import SuiteInputs, TableContract

KEYS = ("sample_id", "turn_index", "teacher")
TEACHERS = ("short", "long")
STATUSES = ("ok", "malformed", "failed")  # malformed: no <think>...</think> or no answer after it

SCHEMA = StructType([
    StructField("sample_id", StringType(), False),
    StructField("turn_index", IntegerType(), False),
    StructField("source", StringType(), False),
    StructField("teacher", StringType(), False),  # short (distill) | long (route)
    StructField("question", StringType(), False),
    StructField("gold_answer", StringType(), False),  # the dataset's assistant turn
    StructField("status", StringType(), False),
    StructField("reason", StringType(), True),
    StructField("reasoning", StringType(), True),  # inside <think>...</think>
    StructField("final_answer", StringType(), True),  # after </think> (the whole text when malformed)
    *generated.PROVENANCE,
])

CHECKS = {
    **generated.CHECKS,
    "check_reason_unless_ok": lambda inputs: (F.col("status") == "ok") == F.col("reason").isNull(),
}


def expectations(inputs: SuiteInputs) -> list:
    return [
        *suites.required_columns(SCHEMA),
        suites.unique_keys(KEYS),
        gxe.ExpectColumnValuesToBeInSet(column="teacher", value_set=list(TEACHERS)),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
        *generated.expectations(),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold", name="reasoning", schema=SCHEMA, keys=KEYS, partition_by=("source",),
    description="Distilled chain-of-thought and final answer per turn and teacher (short, long).",
    expectations=expectations, checks=CHECKS,
)
