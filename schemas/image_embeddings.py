"""silver.image_embeddings: one L2-normalised SSCD vector per (image, model)."""

import great_expectations.expectations as gxe
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, IntegerType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import SuiteInputs, TableContract

KEYS = ("image_id", "model_id")
NORM_TOLERANCE = 1e-3

SCHEMA = StructType(
    [
        StructField("image_id", StringType(), False),
        StructField("model_id", StringType(), False),  # model:backend-size: vectors of different ids never meet
        StructField("dim", IntegerType(), False),
        StructField("vector", ArrayType(FloatType(), True), False),
        StructField("embedded_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)

CHECKS = {
    "check_vector_has_dim": lambda inputs: F.size("vector") == F.col("dim"),
    "check_vector_is_unit": lambda inputs: F.abs(
        F.sqrt(F.aggregate("vector", F.lit(0.0).cast("double"), lambda acc, x: acc + x * x)) - 1.0
    ) <= NORM_TOLERANCE,
}


def expectations(inputs: SuiteInputs) -> list:
    return [
        *suites.required_columns(SCHEMA),
        suites.unique_keys(KEYS),
        gxe.ExpectColumnValuesToMatchRegex(column="image_id", regex=suites.HEX_64),
        gxe.ExpectColumnValuesToBeBetween(column="dim", min_value=1, max_value=4096),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="silver",
    name="image_embeddings",
    schema=SCHEMA,
    keys=KEYS,
    partition_by=("model_id",),
    description="SSCD copy-detection vectors (unit length) of silver.images, one per image and model.",
    expectations=expectations,
    checks=CHECKS,
)
