"""bench.images: each distinct benchmark image with its SSCD vector (same model as training) and pHash."""

from pyspark.sql.types import ArrayType, BinaryType, FloatType, IntegerType, LongType, StringType, StructField, StructType, TimestampType

from schemas import image_embeddings, suites
from schemas.contract import TableContract

KEYS = ("image_id", "model_id")

SCHEMA = StructType(
    [
        StructField("image_id", StringType(), False),  # content hash of the normalised image, as silver.images
        StructField("model_id", StringType(), False),
        StructField("dim", IntegerType(), False),
        StructField("vector", ArrayType(FloatType(), True), False),
        StructField("phash", LongType(), False),
        StructField("phash_trimmed", LongType(), True),  # of the image without uniform borders; null: none
        StructField("bytes", BinaryType(), False),  # the normalised image, for the pixel check of candidate leaks
        StructField("loaded_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)

CHECKS = image_embeddings.VECTOR_CHECKS


def expectations(settings: None) -> list:
    return [*suites.standard(SCHEMA, KEYS), suites.matches("image_id", suites.HEX_64), *suites.all_true(*CHECKS)]


CONTRACT = TableContract(
    layer="bench",
    name="images",
    schema=SCHEMA,
    keys=KEYS,
    version=2,  # 2: phash_trimmed
    partition_by=("model_id",),
    description="Benchmark images: SSCD vector (unit length) and pHash, searched by decontamination.",
    expectations=expectations,
    checks=CHECKS,
)
