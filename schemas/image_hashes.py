"""silver.image_hashes: the 64-bit perceptual hashes (plain and borders trimmed) of every image, for near-duplicate search."""

from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import TableContract

KEYS = ("image_id",)

SCHEMA = StructType(
    [
        StructField("image_id", StringType(), False),
        StructField("phash", LongType(), False),  # 64 bits as a signed bigint
        StructField("phash_trimmed", LongType(), True),  # of the image without uniform borders; null: none
        StructField("hashed_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)


def expectations(settings: None) -> list:
    return [*suites.standard(SCHEMA, KEYS), suites.matches("image_id", suites.HEX_64)]


CONTRACT = TableContract(
    layer="silver",
    name="image_hashes",
    schema=SCHEMA,
    keys=KEYS,
    version=2,  # 2: phash_trimmed
    description="pHash (64 bits) of every image of silver.images; an image with a hash has been through dedup.",
    expectations=expectations,
)
