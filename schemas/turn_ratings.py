"""gold.turn_ratings: FineVision's four 1-5 ratings of every user/assistant turn."""

from enum import StrEnum

from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from schemas import generated, suites
from schemas.contract import TableContract


class Status(StrEnum):
    OK = "ok"
    UNPARSEABLE = "unparseable"  # reason: the parser's code (missing_axes:..., out_of_range:...)
    FAILED = "failed"  # the backend gave no output


KEYS = (*generated.TURN_KEYS, "model", "prompt_version")
AXES = ("formatting", "relevance", "visual_dependency", "image_correspondence")

SCHEMA = StructType([
    StructField("sample_id", StringType(), False),
    StructField("turn_index", IntegerType(), False),
    StructField("source", StringType(), False),
    StructField("status", StringType(), False),
    StructField("reason", StringType(), True),  # why there are no scores: the parser's or the backend's reason
    *[StructField(axis, IntegerType(), True) for axis in AXES],
    *generated.PROVENANCE,
])


def _scores_when_ok():
    present = F.lit(True)
    for axis in AXES:
        present = present & F.col(axis).between(1, 5)
    return (F.col("status") != Status.OK) | present


CHECKS = {**generated.CHECKS, "check_scores_when_ok": lambda settings: _scores_when_ok()}


def expectations(settings: None) -> list:
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.in_set("status", list(Status)),
        *generated.expectations(),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold", name="turn_ratings", schema=SCHEMA, keys=KEYS, partition_by=("source",), version=2,  # 2: context_used
    description="Four 1-5 ratings per turn (formatting, relevance, visual dependency, image correspondence).",
    expectations=expectations, checks=CHECKS,
)
