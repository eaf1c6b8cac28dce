"""bronze.records: every record as read from a source, with its images and lineage."""

from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from schemas import suites
from schemas.contract import TableContract, outcome_row

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

# What the format readers (udfs/readers.py) emit per record: its bronze columns, or why it has none.
READ_ROW = outcome_row(SCHEMA, ["source", "subset", "source_key", "sample_id", "file", "row_index", "record", "images"])

CHECKS = {
    # an image either has bytes and their hash, or neither (a missing file)
    "check_images_consistent": lambda settings: F.forall(
        "images",
        lambda i: (i["bytes"].isNull() & i["sha256"].isNull()) | (i["bytes"].isNotNull() & i["sha256"].rlike(suites.HEX_64)),
    ),
    "check_record_is_json_object": lambda settings: F.expr(
        "try_parse_json(record) IS NOT NULL AND startswith(ltrim(record), '{')"
    ),
}


def expectations(settings: None) -> list:
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.matches("sample_id", suites.HEX_32),
        suites.between("row_index", low=0),
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
