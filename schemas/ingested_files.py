"""bronze.ingested_files: which source files ingest has read, so a re-run reads only new files."""

from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import TableContract

KEYS = ("source", "file")

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


def expectations(settings: None) -> list:
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.between("size", low=0),
        suites.between("rows_rejected", low=0),
        suites.at_least("rows_read", "rows_rejected"),
    ]


CONTRACT = TableContract(
    layer="bronze",
    name="ingested_files",
    schema=SCHEMA,
    keys=KEYS,
    description="The manifest of ingested source files (size and modification time as seen when read).",
    expectations=expectations,
)
