"""What every teacher table records about how a row was generated, and the rules that hold for it."""

from enum import StrEnum

from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, IntegerType, StringType, StructField, TimestampType

from schemas import suites

TURN_KEYS = ("sample_id", "turn_index")  # a turn of silver.samples: what the teacher tables are about


class FinishReason(StrEnum):
    STOP = "stop"
    LENGTH = "length"  # the output budget ran out
    ERROR = "error"
    ABORT = "abort"
    REPETITION = "repetition"


# model / prompt / sampling / counts / when: the provenance of a generated row
PROVENANCE = [
    StructField("model", StringType(), False),  # the teacher's label (teacher.models.<role>.name)
    StructField("prompt_version", StringType(), False),  # e.g. reasoning@v1
    StructField("sampling", StringType(), False),  # JSON: temperature, top_p, seed, token caps
    StructField("raw_output", StringType(), True),  # the model's text as returned (data, never executed)
    StructField("tokens_in", IntegerType(), False),
    StructField("tokens_out", IntegerType(), False),
    StructField("finish_reason", StringType(), True),
    StructField("calls", IntegerType(), False),  # backend calls spent on the row (retries, repairs)
    StructField("teacher_blind", BooleanType(), False),  # the sample has images the teacher could not see
    StructField("caption_used", BooleanType(), False),  # ... and their captions were in the prompt instead
    StructField("context_used", BooleanType(), False),  # the prompt held the images' content as text (image_text, captions)
    StructField("generated_at", TimestampType(), False),
    StructField("run_id", StringType(), False),
]

CHECKS = {
    "check_counts_non_negative": lambda settings: (F.col("tokens_in") >= 0) & (F.col("tokens_out") >= 0) & (F.col("calls") >= 0),
    "check_caption_only_when_blind": lambda settings: ~F.col("caption_used") | F.col("teacher_blind"),
    "check_captions_are_context": lambda settings: ~F.col("caption_used") | F.col("context_used"),
}


def expectations() -> list:
    return [
        suites.in_set("finish_reason", list(FinishReason)),
        suites.matches("prompt_version", r"^[a-z_]+@v\d+$"),
    ]
