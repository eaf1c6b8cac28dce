"""Normalising records: decode each distinct raw image once, map text to turns, decide every record.

Every record ends kept (a silver.samples row, its images in silver.images) or rejected with
one reason code: its first image problem (by position), then missing images, then text rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.runtime.config import Config, SourceConfig
from schemas import silver_images, silver_samples
from schemas.silver_rejects import Reason
from udfs.images import ImagePolicy, normalize_batches
from udfs.text import TextPolicy, chat_batches


@dataclass(frozen=True)
class Normalized:
    outcomes: DataFrame  # one row per record: `reason` null = kept, with the sample's columns
    slots: DataFrame  # (sample_id, source, position, path, sha256): where each image sits in its sample
    decoded: DataFrame  # silver_images.DECODED rows, one per distinct raw image


def image_policy(config: Config) -> ImagePolicy:
    return ImagePolicy(**config.normalize.image.model_dump())


def text_policy(config: Config) -> TextPolicy:
    text = config.normalize.text
    return TextPolicy(
        max_chars=text.max_chars,
        repeat_min_count=text.repeat_min_count,
        repeat_min_fraction=text.repeat_min_fraction,
        discouraging_phrases=tuple(text.discouraging_phrases),
    )


def pending_records(bronze: DataFrame, samples: DataFrame, rejects: DataFrame, sources: list[str]) -> DataFrame:
    """Bronze rows of `sources` with no outcome yet: not a sample, not rejected by normalize."""
    rejected = rejects.where(F.col("stage") == "normalize").select("sample_id")
    return (
        bronze.where(F.col("source").isin(sources))
        .join(samples.select("sample_id"), on="sample_id", how="left_anti")
        .join(rejected, on="sample_id", how="left_anti")
    )


def normalize_records(records: DataFrame, sources: dict[str, SourceConfig], config: Config, tasks: int,
                      checkpoint: Callable[[DataFrame, str], DataFrame]) -> Normalized:
    """Decode the images of `records` (bronze rows) and decide every record.

    The decoded images and the outcomes are checkpointed: each write of the stage reads them,
    and nothing decodes an image twice.
    """
    decoded = checkpoint(normalize_images(records, image_policy(config), tasks), "decoded")
    slim = records.withColumn("images", F.transform("images", lambda i: F.struct(i["path"], i["sha256"])))
    slots = image_slots(slim)
    text_only = [name for name, s in sources.items() if s.text_only]
    chats = chat_rows(slim, sources, text_policy(config))
    outcomes = checkpoint(record_outcomes(slim, chats, image_verdicts(slots, decoded), text_only), "outcomes")
    return Normalized(outcomes, slots, decoded)


def image_slots(records: DataFrame) -> DataFrame:
    """One row per (sample, position) with the raw image's path and hash (bytes stay behind)."""
    return records.select(
        "sample_id", "source", F.posexplode("images").alias("position", "image")
    ).select("sample_id", "source", "position", F.col("image.path").alias("path"), F.col("image.sha256").alias("sha256"))


def normalize_images(records: DataFrame, policy: ImagePolicy, tasks: int) -> DataFrame:
    """DECODED rows, one per distinct raw image present in `records`.

    One shuffle both spreads the work and deduplicates: hash-partitioning by sha256 puts every
    copy of a raw image in one partition, where the UDF decodes it once. Spark's dropDuplicates
    would aggregate (and sort) the bytes; an explicit partition count, which adaptive execution
    leaves alone, keeps tasks small so no core idles behind one slow task.
    """
    raw = (
        records.select(F.explode("images").alias("image"))
        .where(F.col("image.bytes").isNotNull())
        .select(F.col("image.sha256").alias("sha256"), F.col("image.bytes").alias("bytes"))
        .repartition(tasks, "sha256")
    )
    return raw.mapInArrow(partial(normalize_batches, policy=policy), silver_images.DECODED)


def image_verdicts(slots: DataFrame, decoded: DataFrame) -> DataFrame:
    """Per sample: ordered image ids, and the first image problem (by position) if any."""
    joined = slots.join(decoded.select("sha256", "image_id", "reason", "detail"), on="sha256", how="left")
    missing = F.col("sha256").isNull()
    slot = F.struct(
        F.col("position"),
        F.col("image_id"),
        F.when(missing, F.lit(Reason.MISSING_IMAGE)).otherwise(F.col("reason")).alias("reason"),
        F.when(missing, F.concat(F.lit("image file not found: "), F.coalesce("path", F.lit("?"))))
        .otherwise(F.col("detail"))
        .alias("detail"),
    )
    grouped = joined.groupBy("sample_id").agg(F.array_sort(F.collect_list(slot)).alias("slots"))
    first_problem = F.get(F.filter("slots", lambda s: s["reason"].isNotNull()), 0)
    return grouped.select(
        "sample_id",
        F.transform("slots", lambda s: s["image_id"]).alias("image_ids"),
        first_problem["reason"].alias("image_reason"),
        F.concat(F.lit("image "), first_problem["position"].cast("string"), F.lit(": "), first_problem["detail"])
        .alias("image_detail"),
    )


def chat_rows(records: DataFrame, sources: dict[str, SourceConfig], policy: TextPolicy) -> DataFrame:
    return records.select("sample_id", "source", "file", "row_index", "record").mapInArrow(
        partial(chat_batches, sources=sources, policy=policy), silver_samples.CHAT
    )


def record_outcomes(records: DataFrame, chats: DataFrame, images: DataFrame, text_only: list[str]) -> DataFrame:
    """One row per record: its outcome (`reason` null = kept) and the silver columns."""
    image_count = F.size(F.coalesce("image_ids", F.array()))
    token_gap = F.col("image_tokens") > image_count
    no_image = (image_count == 0) & ~F.col("source").isin(text_only) if text_only else image_count == 0
    reason = F.coalesce(
        F.col("image_reason"),
        F.when(token_gap, F.lit(Reason.MISSING_IMAGE)),
        F.when(no_image, F.lit(Reason.NO_IMAGE)),
        F.col("text_reason"),
    )
    detail = F.coalesce(
        F.col("image_detail"),
        F.when(token_gap, F.format_string("the turns reference %d images, the sample has %d", F.col("image_tokens"), image_count)),
        F.when(no_image, F.lit("the sample has no image")),
        F.col("text_detail"),
    )
    return (
        records.select("sample_id", "source", "subset", "source_key", "file", "row_index")
        .join(chats.withColumnRenamed("reason", "text_reason").withColumnRenamed("detail", "text_detail"), "sample_id")
        .join(images, on="sample_id", how="left")
        .withColumn("reason", reason)
        .withColumn("detail", detail)
        .withColumn("image_ids", F.coalesce("image_ids", F.array().cast("array<string>")))
    )


def sample_rows(outcomes: DataFrame, run_id: str) -> DataFrame:
    return outcomes.where(F.col("reason").isNull()).select(
        "sample_id", "source", "subset", "source_key", "image_ids",
        F.col("turns").cast(silver_samples.SCHEMA["turns"].dataType).alias("turns"), "image_text",
        F.col("actions").cast(silver_samples.SCHEMA["actions"].dataType).alias("actions"),
        "license", "category", "language", "prompt_edits",
        F.lit(silver_samples.SCHEMA_VERSION).alias("schema_version"),
        "file", "row_index",
        F.current_timestamp().alias("normalized_at"),
        F.lit(run_id).alias("run_id"),
    )


def image_rows(normalized: Normalized, run_id: str) -> DataFrame:
    """Unique images of kept samples, with every (source, sample, position) that refers to them."""
    kept = normalized.outcomes.where(F.col("reason").isNull()).select("sample_id")
    decoded = normalized.decoded
    refs = (
        normalized.slots.join(kept, on="sample_id", how="left_semi")
        .join(decoded.select("sha256", "image_id"), on="sha256")
        .groupBy("image_id")
        .agg(
            F.array_sort(F.collect_set(F.struct("source", "sample_id", F.col("position").cast("int").alias("position"))))
            .alias("source_refs"),
            F.min("sha256").alias("sha256"),
        )
    )
    return refs.join(decoded.drop("image_id", "reason", "detail"), on="sha256").select(
        "image_id", "bytes", "width", "height", "format", "source_width", "source_height", "source_format",
        "source_mode", "notes", "source_refs",
        F.current_timestamp().alias("normalized_at"),
        F.lit(run_id).alias("run_id"),
    )


# A matched image gains the refs of new samples; an image already holding them is untouched.
NEW_REFS_ONLY = {
    "update_when": "size(array_except(s.source_refs, t.source_refs)) > 0",
    "update_set": {"source_refs": "array_sort(array_union(t.source_refs, s.source_refs))"},
}
