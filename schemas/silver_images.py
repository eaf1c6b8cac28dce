"""silver.images: one row per unique normalised image; image_id is the SHA-256 of its bytes."""

from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from schemas import suites
from schemas.contract import TableContract, outcome_row

SOURCE_REF = StructType(
    [
        StructField("source", StringType(), True),
        StructField("sample_id", StringType(), True),
        StructField("position", IntegerType(), True),
    ]
)

KEYS = ("image_id",)
FORMATS = ("JPEG", "PNG", "WEBP")

SCHEMA = StructType(
    [
        StructField("image_id", StringType(), False),
        StructField("bytes", BinaryType(), False),
        StructField("width", IntegerType(), False),
        StructField("height", IntegerType(), False),
        StructField("format", StringType(), False),
        StructField("source_width", IntegerType(), False),
        StructField("source_height", IntegerType(), False),
        StructField("source_format", StringType(), True),
        StructField("source_mode", StringType(), True),
        StructField("notes", ArrayType(StringType(), True), False),  # conversions applied (mode, EXIF, resize)
        StructField("source_refs", ArrayType(SOURCE_REF, True), False),
        StructField("normalized_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)

# What image normalisation (udfs/images.py) emits per distinct raw image (by the SHA-256 of its
# bytes as read): the stored image's columns, or why there is none.
DECODED = outcome_row(
    SCHEMA,
    ["image_id", "bytes", "width", "height", "format", "source_width", "source_height", "source_format", "source_mode", "notes"],
    StructField("sha256", StringType(), True),
)

CHECKS = {
    # The gate validates the rows of a write, never the whole table: every image written is hashed.
    "check_hash_matches_bytes": lambda settings: F.sha2("bytes", 256) == F.col("image_id"),
    "check_has_source_refs": lambda settings: F.size("source_refs") > 0,
    "check_not_upscaled": lambda settings: (F.col("width") <= F.col("source_width"))
    & (F.col("height") <= F.col("source_height")),
}


def expectations(settings) -> list:
    """`settings`: the normalize section of the config."""
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.matches("image_id", suites.HEX_64),
        suites.between("width", 1, settings.image.max_side),
        suites.between("height", 1, settings.image.max_side),
        suites.in_set("format", FORMATS),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="silver",
    name="images",
    schema=SCHEMA,
    keys=KEYS,
    description="Unique normalised images (RGB, longest side capped, re-encoded deterministically).",
    settings="normalize",
    expectations=expectations,
    checks=CHECKS,
)
