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

from pyspark.sql import functions as F

import great_expectations.expectations as gxe

from schemas import suites
from schemas.contract import SuiteInputs, TableContract

RAW_IMAGE = StructType(
    [
        StructField("path", StringType(), True),  # where the image came from (file, tar member, column path)
        StructField("bytes", BinaryType(), True),  # null: the referenced file was not found
        StructField("sha256", StringType(), True),  # of the raw bytes, so normalise decodes each raw image once
    ]
)

KEYS = ("sample_id",)

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



CHECKS = {
    # an image either has bytes and their hash, or neither (a missing file)
    "check_images_consistent": lambda inputs: F.forall(
        "images",
        lambda i: (i["bytes"].isNull() & i["sha256"].isNull()) | (i["bytes"].isNotNull() & i["sha256"].rlike(suites.HEX_64)),
    ),
    "check_record_is_json_object": lambda inputs: F.expr(
        "try_parse_json(record) IS NOT NULL AND startswith(ltrim(record), '{')"
    ),
}


def expectations(inputs: SuiteInputs) -> list:
    return [
        *suites.required_columns(SCHEMA),
        suites.unique_keys(KEYS),
        gxe.ExpectColumnValuesToMatchRegex(column="sample_id", regex=suites.HEX_32),
        gxe.ExpectColumnValuesToBeBetween(column="row_index", min_value=0),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="bronze",
    name="records",
    schema=SCHEMA,
    keys=KEYS,
    partition_by=("source",),
    description="Rows as read from each source, one per record, with lineage (source, file, row).",
    expectations=expectations,
    checks=CHECKS,
)
