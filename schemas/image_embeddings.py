"""silver.image_embeddings: one L2-normalised SSCD vector per (image, model)."""

from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, IntegerType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import TableContract

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
    "check_vector_has_dim": lambda settings: F.size("vector") == F.col("dim"),
    "check_vector_is_unit": lambda settings: F.abs(
        F.sqrt(F.aggregate("vector", F.lit(0.0).cast("double"), lambda acc, x: acc + x * x)) - 1.0
    ) <= NORM_TOLERANCE,
}


def expectations(settings: None) -> list:
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.matches("image_id", suites.HEX_64),
        suites.between("dim", 1, 4096),
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
