"""bronze.ingested_files: which source files ingest has read, so a re-run reads only new files."""

from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from schemas.contract import TableContract

SCHEMA = StructType(
    [
        StructField("source", StringType(), False),
        StructField("file", StringType(), False),
        StructField("uri", StringType(), False),
        StructField("size", LongType(), False),
        StructField("modified_at", TimestampType(), False),
        StructField("rows_read", LongType(), False),
        StructField("rows_rejected", LongType(), False),
        StructField("ingested_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)

CONTRACT = TableContract(
    layer="bronze",
    name="ingested_files",
    schema=SCHEMA,
    keys=("source", "file"),
    description="The manifest of ingested source files (size and modification time as seen when read).",
)
