"""silver.rejects: every row a stage dropped, with a reason code; nothing is dropped silently."""

from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

import great_expectations.expectations as gxe

from schemas import suites
from schemas.contract import SuiteInputs, TableContract

REASON_CODES: dict[str, str] = {
    # ingest: reading source files
    "unreadable_file": "the file could not be opened or parsed past this row",
    "malformed_record": "a record (line, item, turn list) is not of the expected shape",
    "template_error": "a config template names a field the record lacks or fails to render",
    "duplicate_key": "another record already has this (source, subset, key)",
    # normalize: images
    "missing_image": "an image the sample references is not there (file absent, or fewer images than <image> tokens)",
    "no_image": "the sample has no image and its source is not text_only",
    "empty_file": "an image file with zero bytes",
    "undecodable_image": "bytes Pillow cannot decode as an image",
    "truncated_image": "an image whose data ends early",
    "decompression_bomb": "width x height above normalize.image.max_pixels",
    "image_too_small": "shorter side below normalize.image.min_side",
    "extreme_aspect_ratio": "longer/shorter side above normalize.image.max_aspect_ratio",
    # normalize: text
    "empty_text": "no turns, or a turn whose user or assistant text is empty",
    "text_too_long": "more characters than normalize.text.max_chars",
    "repeated_text": "a word sequence or line repeated over most of a text",
    # embed
    "embedding_failed": "the model could not embed this image (detail says why); `file` holds the image_id",
}

KEYS = ("stage", "source", "file", "row_index")

SCHEMA = StructType(
    [
        StructField("stage", StringType(), False),
        StructField("source", StringType(), False),
        StructField("file", StringType(), False),
        StructField("row_index", LongType(), False),
        StructField("sample_id", StringType(), True),  # null when the record could not be keyed
        StructField("source_key", StringType(), True),
        StructField("reason", StringType(), False),
        StructField("detail", StringType(), True),
        StructField("rejected_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)

STAGES = ("ingest", "normalize", "embed", "dedup", "decontaminate")


def expectations(inputs: SuiteInputs) -> list:
    return [
        *suites.required_columns(SCHEMA),
        suites.unique_keys(KEYS),
        gxe.ExpectColumnValuesToBeInSet(column="reason", value_set=sorted(REASON_CODES)),
        gxe.ExpectColumnValuesToBeInSet(column="stage", value_set=list(STAGES)),
        gxe.ExpectColumnValuesToBeBetween(column="row_index", min_value=0),
    ]


CONTRACT = TableContract(
    layer="silver",
    name="rejects",
    schema=SCHEMA,
    keys=KEYS,
    partition_by=("stage",),
    description="Rows dropped by a stage with a reason code and the file and row they came from.",
    expectations=expectations,
)
