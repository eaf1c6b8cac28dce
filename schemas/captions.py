"""silver.captions: one dense caption per unique image and captioning model (MMFineReason)."""

import great_expectations.expectations as gxe
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from schemas import generated, suites
from schemas.contract import SuiteInputs, TableContract

KEYS = ("image_id", "model", "prompt_version")
STATUSES = ("ok", "blind", "failed")  # blind: a text-only model cannot caption, nothing was generated

SCHEMA = StructType([
    StructField("image_id", StringType(), False),
    StructField("status", StringType(), False),
    StructField("reason", StringType(), True),
    StructField("caption", StringType(), True),
    *generated.PROVENANCE,
])

CHECKS = {
    **generated.CHECKS,
    "check_caption_when_ok": lambda inputs: (F.col("status") != "ok") | (F.length(F.trim("caption")) > 0),
}


def expectations(inputs: SuiteInputs) -> list:
    return [
        *suites.required_columns(SCHEMA),
        suites.unique_keys(KEYS),
        gxe.ExpectColumnValuesToMatchRegex(column="image_id", regex=suites.HEX_64),
        gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
        *generated.expectations(),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="silver", name="captions", schema=SCHEMA, keys=KEYS,
    description="A dense caption per image and model (status blind: the model cannot see images).",
    expectations=expectations, checks=CHECKS,
)
