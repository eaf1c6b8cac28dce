"""silver.rejects: every row a stage dropped, with a reason code; nothing is dropped silently.

Partitioned by stage: each stage owns its partition (jobs/registry.py), so stages commit their
rejects at the same time without conflicting.
"""

from enum import StrEnum

from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import TableContract


class Reason(StrEnum):
    """Why a row was dropped. `Reason.X.description` says what it means for the person reading rejects."""

    def __new__(cls, value: str, description: str):
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    # ingest: reading source files
    UNREADABLE_FILE = "unreadable_file", "the file could not be opened or parsed past this row"
    MALFORMED_RECORD = "malformed_record", "a record (line, item, turn list) is not of the expected shape"
    TEMPLATE_ERROR = "template_error", "a config template names a field the record lacks or fails to render"
    DUPLICATE_KEY = "duplicate_key", "another record already has this (source, subset, key)"
    # normalize: images
    MISSING_IMAGE = "missing_image", "an image the sample references is not there (file absent, or fewer images than <image> tokens)"
    NO_IMAGE = "no_image", "the sample has no image and its source is not text_only"
    EMPTY_FILE = "empty_file", "an image file with zero bytes"
    UNDECODABLE_IMAGE = "undecodable_image", "bytes Pillow cannot decode as an image"
    TRUNCATED_IMAGE = "truncated_image", "an image whose data ends early"
    DECOMPRESSION_BOMB = "decompression_bomb", "width x height above normalize.image.max_pixels"
    IMAGE_TOO_SMALL = "image_too_small", "shorter side below normalize.image.min_side"
    EXTREME_ASPECT_RATIO = "extreme_aspect_ratio", "longer/shorter side above normalize.image.max_aspect_ratio"
    # normalize: text
    EMPTY_TEXT = "empty_text", "no turns, or a turn whose user or assistant text is empty"
    TEXT_TOO_LONG = "text_too_long", "more characters than normalize.text.max_chars"
    REPEATED_TEXT = "repeated_text", "a word sequence or line repeated over most of a text"
    # normalize: GUI agent actions (udfs/actions.py)
    UNKNOWN_ACTION = "unknown_action", "an agent action with no counterpart in the action space (schemas/actions.py)"
    COORDINATES_OUT_OF_RANGE = "coordinates_out_of_range", "an action's point falls outside the screenshot"
    MISSING_SCREEN_SIZE = "missing_screen_size", "an action given in pixels whose screenshot size is unknown"
    MALFORMED_ACTION = "malformed_action", "an action not of its format's shape (missing, mistyped or non-literal arguments)"
    # embed
    EMBEDDING_FAILED = "embedding_failed", "the model could not embed this image (detail says why); `file` holds the image_id"


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


def expectations(settings: None) -> list:
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.in_set("reason", list(Reason)),
        suites.between("row_index", low=0),
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
