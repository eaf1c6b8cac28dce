"""Signatures for near-duplicate search: pHashes of images, hashes of instructions, pHash bands."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from schemas.silver_samples import text_length
from udfs.signatures import TURNS, phash_frames, text_hash


def hash_images(images: DataFrame, trim: bool = True, turned: bool = False) -> DataFrame:
    """(image_id, phash, phash_trimmed[, phash_turned]) of (image_id, bytes) rows (udfs.signatures.phashes):
    phash null when the bytes do not decode, phash_trimmed null unless `trim` and the image has a
    uniform border; with `turned`, phash_turned: the pHashes of the image turned as TURNS names."""

    def hashes(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        return phash_frames(batches, trim, turned)

    columns = "phash long, phash_trimmed long" + (", phash_turned array<long>" if turned else "")
    found = F.pandas_udf(hashes, columns)(F.col("bytes"))
    return images.select("image_id", found.alias("found")).select("image_id", "found.*")


def instruction() -> Column:
    """A sample's instruction: all its user turns."""
    return F.array_join(F.transform("turns", lambda t: t["user"]), "\n")


def instruction_texts(samples: DataFrame) -> DataFrame:
    """(sample_id, source, image_ids, text, text_hash, text_chars) of samples."""

    def hashes(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for texts in batches:
            yield texts.map(text_hash)

    return samples.select("sample_id", "source", "image_ids", instruction().alias("text"),
                          text_length().cast("long").alias("text_chars")).withColumn(
        "text_hash", F.pandas_udf(hashes, "string")(F.col("text")))


def new_image_hashes(images: DataFrame, known: DataFrame, trim: bool, run_id: str, turned: bool = False) -> DataFrame:
    """image_hashes rows (phash null: the image does not decode) of the images without one yet, with
    `turned` also their phash_turned (searched with, not stored)."""
    return images.join(known, "image_id", "left_anti").transform(hash_images, trim, turned).select(
        "*", F.current_timestamp().alias("hashed_at"), F.lit(run_id).alias("run_id"))


def band_layout(radius: int) -> list[tuple[int, int]]:
    """(first bit, width) of each of radius+1 near-equal bands of the 64 bits."""
    bands = radius + 1
    widths = [64 // bands + (1 if b < 64 % bands else 0) for b in range(bands)]
    return [(sum(widths[:b]), width) for b, width in enumerate(widths)]


def hash_columns(frame: DataFrame, turned: bool = False) -> list[str]:
    """The pHash columns `frame` has: phash, and phash_trimmed (and with `turned`, phash_turned) when present."""
    return [c for c in ("phash", "phash_trimmed", *(["phash_turned"] if turned else [])) if c in frame.columns]


def phash_bands(hashes: DataFrame, radius: int) -> DataFrame:
    """Each row once per pHash it has (`hash`: phash, phash_trimmed and, when the frame has
    phash_turned, its turned variants, `turn` naming them, "" for the others) and band (`band`,
    `value`): hashes within `radius` bits share one of radius+1 bands.

    Bands are near-equal slices of the 64 bits: a narrow last band would have few values and put
    most pairs of the table into one candidate bucket.
    """
    listed = F.array(*[F.struct(F.col(c).alias("hash"), F.lit("").alias("turn"))
                       for c in hash_columns(hashes)])
    if "phash_turned" in hashes.columns:
        names = F.array(*map(F.lit, TURNS))
        turned = F.transform("phash_turned", lambda h, i: F.struct(h.alias("hash"), names[i].alias("turn")))
        listed = F.concat(listed, F.coalesce(turned, F.filter(listed, lambda _: F.lit(False))))
    present = F.filter(listed, lambda v: v["hash"].isNotNull())
    variants = hashes.select("*", F.explode(present).alias("variant")).select(
        "*", F.col("variant.hash").alias("hash"), F.col("variant.turn").alias("turn")).drop("variant")
    values = [F.shiftrightunsigned("hash", start).bitwiseAND(F.lit((1 << width) - 1))
              for start, width in band_layout(radius)]
    return variants.select("*", F.posexplode(F.array(*values)).alias("band", "value"))


def hash_distance(left: str, right: str):
    """Hamming distance between the `hash` columns of two aliased sides of a band join."""
    return F.bit_count(F.col(f"{left}.hash").bitwiseXOR(F.col(f"{right}.hash")))


def closest_hashes(matches: DataFrame, keys: list[str], radius: int) -> DataFrame:
    """(*keys, distance, turn): per pair, the closest of its band matches within `radius` bits;
    between equally close ones the unturned ("" sorts first)."""
    # the radius filter goes before the aggregation: Spark cannot move it there itself
    best = matches.where(F.col("distance") <= radius).groupBy(*keys).agg(F.min(F.struct("distance", "turn")).alias("best"))
    return best.select(*keys, "best.*")


def hash_evidence(prefix: str = "") -> Column:
    """`hamming=3`, or `hamming=3 turned=mirror` when a turned pHash matched, after `prefix`."""
    return F.when(F.col("turn") == "", F.format_string(f"{prefix}hamming=%d", "distance")).otherwise(
        F.format_string(f"{prefix}hamming=%d turned=%s", "distance", "turn"))
