"""bronze.ingested_files: which source files ingest has read, so a re-run reads only new files."""

from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

import great_expectations.expectations as gxe

from schemas import suites
from schemas.contract import SuiteInputs, TableContract

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



def expectations(inputs: SuiteInputs) -> list:
    return [
        *suites.required_columns(SCHEMA),
        suites.unique_keys(KEYS),
        gxe.ExpectColumnValuesToBeBetween(column="size", min_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="rows_rejected", min_value=0),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A="rows_read", column_B="rows_rejected", or_equal=True),
    ]


CONTRACT = TableContract(
    layer="bronze",
    name="ingested_files",
    schema=SCHEMA,
    keys=KEYS,
    description="The manifest of ingested source files (size and modification time as seen when read).",
    expectations=expectations,
)
