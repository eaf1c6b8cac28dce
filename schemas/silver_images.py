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

from pyspark.sql import functions as F

import great_expectations.expectations as gxe

from schemas import suites
from schemas.contract import SuiteInputs, TableContract

SOURCE_REF = StructType(
    [
        StructField("source", StringType(), True),
        StructField("sample_id", StringType(), True),
        StructField("position", IntegerType(), True),
    ]
)

KEYS = ("image_id",)

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



CHECKS = {
    # Hashing every stored image on every write would read the whole table; rows of this run
    # are hashed, rows of earlier runs passed the same check when they were written.
    "check_hash_matches_bytes": lambda inputs: (F.col("run_id") != inputs.run_id)
    | (F.sha2("bytes", 256) == F.col("image_id")),
    "check_has_source_refs": lambda inputs: F.size("source_refs") > 0,
    "check_not_upscaled": lambda inputs: (F.col("width") <= F.col("source_width"))
    & (F.col("height") <= F.col("source_height")),
}


def expectations(inputs: SuiteInputs) -> list:
    return [
        *suites.required_columns(SCHEMA),
        suites.unique_keys(KEYS),
        gxe.ExpectColumnValuesToMatchRegex(column="image_id", regex=suites.HEX_64),
        gxe.ExpectColumnValuesToBeBetween(column="width", min_value=1, max_value=inputs.max_side),
        gxe.ExpectColumnValuesToBeBetween(column="height", min_value=1, max_value=inputs.max_side),
        gxe.ExpectColumnValuesToBeInSet(column="format", value_set=["JPEG", "PNG", "WEBP"]),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="silver",
    name="images",
    schema=SCHEMA,
    keys=KEYS,
    description="Unique normalised images (RGB, longest side capped, re-encoded deterministically).",
    expectations=expectations,
    checks=CHECKS,
)
