"""gold.reasoning: a teacher's chain of thought and final answer per turn.

Partitioned by teacher: distill owns `short`, route owns `long` (jobs/registry.py).
"""

from enum import StrEnum

from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from schemas import generated, suites
from schemas.contract import TableContract


class Teacher(StrEnum):
    SHORT = "short"  # HoneyPipe's short-CoT teacher (distill)
    LONG = "long"  # the long-CoT teacher for what the short one got wrong (route)


class Status(StrEnum):
    OK = "ok"
    MALFORMED = "malformed"  # no <think>...</think> or no answer after it
    FAILED = "failed"  # the backend gave no output (reason says why)


KEYS = (*generated.TURN_KEYS, "teacher")

SCHEMA = StructType([
    StructField("sample_id", StringType(), False),
    StructField("turn_index", IntegerType(), False),
    StructField("source", StringType(), False),
    StructField("teacher", StringType(), False),
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
    "check_reason_unless_ok": lambda settings: (F.col("status") == Status.OK) == F.col("reason").isNull(),
}


def expectations(settings: None) -> list:
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.in_set("teacher", list(Teacher)),
        suites.in_set("status", list(Status)),
        *generated.expectations(),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold", name="reasoning", schema=SCHEMA, keys=KEYS, partition_by=("teacher",), version=3,  # 2: by teacher; 3: context_used
    description="Distilled chain-of-thought and final answer per turn and teacher (short, long).",
    expectations=expectations, checks=CHECKS,
)
