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

from pyspark.sql import functions as F

from schemas import actions, suites
from schemas.contract import TableContract, outcome_row

SCHEMA_VERSION = 3  # 2: image_text; 3: actions

# Delta enforces NOT NULL only on top-level columns; nested fields are checked by the suite.
TURN = StructType([StructField("user", StringType(), True), StructField("assistant", StringType(), True)])

KEYS = ("sample_id",)
ACTION_ROW = StructType([StructField("turn_index", IntegerType(), True), *actions.ACTION.fields])

SCHEMA = StructType(
    [
        StructField("sample_id", StringType(), False),
        StructField("source", StringType(), False),
        StructField("subset", StringType(), False),
        StructField("source_key", StringType(), False),
        StructField("image_ids", ArrayType(StringType(), True), False),  # ordered; keys of silver.images
        StructField("turns", ArrayType(TURN, True), False),
        # The images' content as text where the source carries it (a table's text, OCR): what a
        # text-only teacher reads instead of the image (the source's `image_text` template).
        StructField("image_text", StringType(), True),
        # GUI agent sources: each turn's actions in the one action space (schemas/actions.py); else empty
        StructField("actions", ArrayType(ACTION_ROW, True), True),
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

# What the text rules (udfs/text.py) emit per record: its chat columns, the <image> tokens its
# turns hold, and the first rule it fails.
CHAT = outcome_row(SCHEMA, ["sample_id", "turns", "image_text", "actions", "prompt_edits", "license", "category", "language"],
                   StructField("image_tokens", IntegerType(), True))


def text_length():
    """Characters in all turns of a sample, as a Spark column."""
    return F.aggregate("turns", F.lit(0), lambda total, t: total + F.length(t["user"]) + F.length(t["assistant"]))


CHECKS = {
    "check_turns_non_empty": lambda settings: (F.size("turns") > 0)
    & F.forall("turns", lambda t: (F.length(F.trim(t["user"])) > 0) & (F.length(F.trim(t["assistant"])) > 0)),
    "check_image_ids_are_hashes": lambda settings: F.forall("image_ids", lambda i: i.rlike(suites.HEX_64)),
    "check_text_within_max_chars": lambda settings: text_length() <= settings.text.max_chars,
    "check_actions_in_the_action_space": lambda settings: F.forall(
        F.coalesce("actions", F.array()), lambda a: a["function"].isin(*actions.Function) & a["canonical"].isNotNull()
        & a["raw"].isNotNull() & (a["turn_index"] < F.size("turns"))
        & F.forall(F.array(a["x"], a["y"], a["to_x"], a["to_y"]), lambda v: v.isNull() | v.between(0, 1))),
}


def expectations(settings) -> list:
    """`settings`: the normalize section of the config."""
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.matches("sample_id", suites.HEX_32),
        suites.in_set("schema_version", [SCHEMA_VERSION]),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="silver",
    name="samples",
    schema=SCHEMA,
    keys=KEYS,
    partition_by=("source",),
    version=SCHEMA_VERSION,
    settings="normalize",
    description="Samples in one chat schema: ordered image refs and user/assistant turns.",
    expectations=expectations,
    checks=CHECKS,
)
