"""silver.images: one row per unique normalised image; image_id is the SHA-256 of its bytes."""

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from schemas.contract import TableContract

SOURCE_REF = StructType(
    [
        StructField("source", StringType(), True),
        StructField("sample_id", StringType(), True),
        StructField("position", IntegerType(), True),
    ]
)

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

CONTRACT = TableContract(
    layer="silver",
    name="images",
    schema=SCHEMA,
    keys=("image_id",),
    description="Unique normalised images (RGB, longest side capped, re-encoded deterministically).",
)
