"""gold.duplicate_pairs: the evidence of dedup, one row per near-duplicate pair found."""

from enum import StrEnum

from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import TableContract


class Kind(StrEnum):
    PHASH = "phash"  # between image ids: 1 - Hamming/64
    SSCD = "sscd"  # between image ids: cosine
    TEXT = "text"  # between instruction hashes: MinHash Jaccard


IMAGE_KINDS = (Kind.PHASH, Kind.SSCD)
KEYS = ("kind", "left_id", "right_id")

SCHEMA = StructType(
    [
        StructField("kind", StringType(), False),
        StructField("left_id", StringType(), False),  # left_id < right_id
        StructField("right_id", StringType(), False),
        StructField("similarity", DoubleType(), False),  # 1 - hamming/64, cosine, or Jaccard
        StructField("evidence", StringType(), False),
        # the pixel check's verdict (udfs/verify.py) where the pair needed one; null for certain pairs and texts
        StructField("check", DoubleType(), True),  # share of textured pixels that agree outside overlays
        StructField("transform", StringType(), True),  # the map found: identity, mirror+rotate90, rotate7+scale, ...
        StructField("inlier_share", DoubleType(), True),  # RANSAC inliers / ratio-test feature matches
        # differing regions the check explained as overlays: a pair with some joins a cluster but never chains one
        StructField("overlays", IntegerType(), True),
        StructField("found_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)

CHECKS = {
    "check_ordered_pair": lambda settings: F.col("left_id") < F.col("right_id"),
    # every pair found is at least as close as the thresholds it was searched with
    "check_within_threshold": lambda settings: F.col("similarity") + 1e-6 >= (
        F.when(F.col("kind") == Kind.PHASH, 1 - settings.phash_radius / 64)
        .when(F.col("kind") == Kind.SSCD, min(settings.sscd_tau, settings.sscd_band_low))
        .otherwise(settings.text_jaccard)
    ),
    # a pair that needed the pixel check passed it
    "check_verified": lambda settings: F.col("check").isNull() | (F.col("check") >= settings.verify_min),
}


def expectations(settings) -> list:
    """`settings`: the dedup section of the config."""
    return [
        *suites.standard(SCHEMA, KEYS),
        suites.in_set("kind", list(Kind)),
        suites.between("similarity", 0.0, 1.0 + 1e-6),
        suites.between("check", 0.0, 1.0),
        suites.between("inlier_share", 0.0, 1.0),
        suites.between("overlays", 0),
        *suites.all_true(*CHECKS),
    ]


CONTRACT = TableContract(
    layer="gold",
    name="duplicate_pairs",
    schema=SCHEMA,
    keys=KEYS,
    partition_by=("kind",),
    version=3,  # 2: check, transform, inlier_share; 3: overlays
    description="Near-duplicate pairs with their similarity: pHash and SSCD between images, MinHash between texts; "
                "image pairs with the pixel check's score and the map it found.",
    settings="dedup",
    expectations=expectations,
    checks=CHECKS,
)
