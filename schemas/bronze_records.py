"""bronze.records: every record as read from a source file, with its images and lineage."""

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from schemas.contract import TableContract

RAW_IMAGE = StructType(
    [
        StructField("path", StringType(), True),  # where the image came from (file, tar member, column path)
        StructField("bytes", BinaryType(), True),  # null: the referenced file was not found
        StructField("sha256", StringType(), True),  # of the raw bytes, so normalise decodes each raw image once
    ]
)

SCHEMA = StructType(
    [
        StructField("sample_id", StringType(), False),
        StructField("source", StringType(), False),
        StructField("subset", StringType(), False),
        StructField("source_key", StringType(), False),
        StructField("file", StringType(), False),  # path relative to the source's root
        StructField("row_index", LongType(), False),
        StructField("record", StringType(), False),  # the record's fields as JSON, images replaced by refs
        StructField("images", ArrayType(RAW_IMAGE, True), False),
        StructField("ingested_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)

CONTRACT = TableContract(
    layer="bronze",
    name="records",
    schema=SCHEMA,
    keys=("sample_id",),
    partition_by=("source",),
    description="Rows as read from each source, one per record, with lineage (source, file, row).",
)
