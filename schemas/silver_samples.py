"""silver.samples: the chat schema of The Cauldron / FineVision, one row per kept sample."""

from pyspark.sql.types import (
    ArrayType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from schemas.contract import TableContract

SCHEMA_VERSION = 1

# Delta enforces NOT NULL only on top-level columns; nested fields are checked by the suite.
TURN = StructType([StructField("user", StringType(), True), StructField("assistant", StringType(), True)])

SCHEMA = StructType(
    [
        StructField("sample_id", StringType(), False),
        StructField("source", StringType(), False),
        StructField("subset", StringType(), False),
        StructField("source_key", StringType(), False),
        StructField("image_ids", ArrayType(StringType(), True), False),  # ordered; keys of silver.images
        StructField("turns", ArrayType(TURN, True), False),
        StructField("license", StringType(), False),
        StructField("category", StringType(), False),
        StructField("language", StringType(), False),
        StructField("prompt_edits", ArrayType(StringType(), True), False),  # phrases removed from user turns
        StructField("schema_version", IntegerType(), False),
        StructField("file", StringType(), False),
        StructField("row_index", LongType(), False),
        StructField("normalized_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)

CONTRACT = TableContract(
    layer="silver",
    name="samples",
    schema=SCHEMA,
    keys=("sample_id",),
    partition_by=("source",),
    version=SCHEMA_VERSION,
    description="Samples in one chat schema: ordered image refs and user/assistant turns.",
)
