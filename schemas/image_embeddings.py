"""silver.image_embeddings: one L2-normalised SSCD vector per (image, model), and one of the picture shown inside
the image (framed in a viewer's window or a screenshot, or turned on a uniform fill) when
udfs.signatures.inner_picture finds one."""

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
        StructField("framed_vector", ArrayType(FloatType(), True), True),  # of the picture inside; null: none found
        StructField("embedded_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)


def _is_unit(column: str):
    return F.abs(F.sqrt(F.aggregate(column, F.lit(0.0).cast("double"), lambda acc, x: acc + x * x)) - 1.0) <= NORM_TOLERANCE


VECTOR_CHECKS = {  # of any table that holds a `vector` of `dim` floats
    "check_vector_has_dim": lambda settings: F.size("vector") == F.col("dim"),
    "check_vector_is_unit": lambda settings: _is_unit("vector"),
}
CHECKS = {
    **VECTOR_CHECKS,
    "check_framed_vector": lambda settings: F.col("framed_vector").isNull() | (
        (F.size("framed_vector") == F.col("dim")) & _is_unit("framed_vector")),
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
    version=2,  # 2: framed_vector
    description="SSCD copy-detection vectors (unit length) of silver.images, one per image and model.",
    expectations=expectations,
    checks=CHECKS,
)
