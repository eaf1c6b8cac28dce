"""silver.captions: one dense caption per unique image and captioning model (MMFineReason)."""

from enum import StrEnum

from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from schemas import generated, suites
from schemas.contract import TableContract


class Status(StrEnum):
    OK = "ok"
    BLIND = "blind"  # a text-only model cannot caption: nothing was generated
    FAILED = "failed"


KEYS = ("image_id", "model", "prompt_version")

SCHEMA = StructType([
    StructField("image_id", StringType(), False),
    StructField("status", StringType(), False),
    StructField("reason", StringType(), True),
    StructField("caption", StringType(), True),
    *generated.PROVENANCE,
])

CHECKS = {
    **generated.CHECKS,
    "check_caption_when_ok": lambda settings: (F.col("status") != Status.OK) | (F.length(F.trim("caption")) > 0),
}


def expectations(settings: None) -> list:
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.matches("image_id", suites.HEX_64),
        suites.in_set("status", list(Status)),
        *generated.expectations(),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="silver", name="captions", schema=SCHEMA, keys=KEYS, version=2,  # 2: context_used
    description="A dense caption per image and model (status blind: the model cannot see images).",
    expectations=expectations, checks=CHECKS,
)
