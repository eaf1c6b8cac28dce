"""gold.turn_ratings: FineVision's four 1-5 ratings of every user/assistant turn."""

import great_expectations.expectations as gxe
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from schemas import generated, suites
from schemas.contract import SuiteInputs, TableContract

KEYS = ("sample_id", "turn_index", "model", "prompt_version")
AXES = ("formatting", "relevance", "visual_dependency", "image_correspondence")
STATUSES = ("ok", "unparseable", "failed")

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
    return (F.col("status") != "ok") | present


CHECKS = {**generated.CHECKS, "check_scores_when_ok": lambda inputs: _scores_when_ok()}


def expectations(inputs: SuiteInputs) -> list:
    return [
        *suites.required_columns(SCHEMA),
        suites.unique_keys(KEYS),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
        *generated.expectations(),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold", name="turn_ratings", schema=SCHEMA, keys=KEYS, partition_by=("source",),
    description="Four 1-5 ratings per turn (formatting, relevance, visual dependency, image correspondence).",
    expectations=expectations, checks=CHECKS,
)
