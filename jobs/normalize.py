"""normalize: bronze.records -> silver.samples, silver.images, silver.rejects.

Only bronze rows without an outcome yet (not in samples, not rejected by normalize) are read.
Each distinct raw image is decoded once (by the hash of its bytes), text is mapped to turns and
cleaned by the source's config, and every sample ends kept or rejected with one reason code.
"""

from __future__ import annotations

import sys
from functools import partial

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from jobs.ingest import reject_rows, write_rejects
from jobs.runtime.config import Config
from jobs.runtime.gate import Conservation
from jobs.runtime.stage import JobContext, StageReport, run_job, tally
from schemas import bronze_records, silver_images, silver_rejects, silver_samples
from schemas.silver_samples import text_length
from udfs.images import NORMALIZED, ImagePolicy, normalize_batches
from udfs.text import CHAT, TextPolicy, chat_batches

STAGE = "normalize"
DESCRIPTION = "Decode, filter and clean bronze records into silver.samples and silver.images."


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
    """Bronze rows of the selected sources that have no outcome yet."""
    rejected = rejects.where(F.col("stage") == STAGE).select("sample_id")
    return (
        bronze.where(F.col("source").isin(sources))
        .join(samples.select("sample_id"), on="sample_id", how="left_anti")
        .join(rejected, on="sample_id", how="left_anti")
    )


def image_slots(records: DataFrame) -> DataFrame:
    """One row per (sample, position) with the raw image's path and hash (bytes stay behind)."""
    return records.select(
        "sample_id", "source", F.posexplode("images").alias("position", "image")
    ).select("sample_id", "source", "position", F.col("image.path").alias("path"), F.col("image.sha256").alias("sha256"))


def normalize_images(records: DataFrame, policy: ImagePolicy, partitions: int) -> DataFrame:
    """NORMALIZED rows, one per distinct raw image present in `records`.

    One shuffle both spreads the work and deduplicates: hash-partitioning by sha256 puts every
    copy of a raw image in one partition, where the UDF decodes it once. Spark's dropDuplicates
    would aggregate (and sort) the bytes; an explicit partition count, which adaptive execution
    leaves alone, keeps tasks small so no core idles behind one slow task.
    """
    raw = (
        records.select(F.explode("images").alias("image"))
        .where(F.col("image.bytes").isNotNull())
        .select(F.col("image.sha256").alias("sha256"), F.col("image.bytes").alias("bytes"))
        .repartition(partitions, "sha256")
    )
    return raw.mapInArrow(partial(normalize_batches, policy=policy), from_arrow_schema(NORMALIZED))


def decode_partitions(context: JobContext) -> int:
    configured = context.config.normalize.image_partitions
    return configured or 4 * context.spark.sparkContext.defaultParallelism


def image_verdicts(slots: DataFrame, normalized: DataFrame) -> DataFrame:
    """Per sample: ordered image ids, and the first image problem (by position) if any."""
    joined = slots.join(normalized.select("sha256", "image_id", "reason", "detail"), on="sha256", how="left")
    missing = F.col("sha256").isNull()
    slot = F.struct(
        F.col("position"),
        F.col("image_id"),
        F.when(missing, F.lit("missing_image")).otherwise(F.col("reason")).alias("reason"),
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


def chat_rows(records: DataFrame, sources: dict, policy: TextPolicy) -> DataFrame:
    return records.select("sample_id", "source", "file", "row_index", "record").mapInArrow(
        partial(chat_batches, sources=sources, policy=policy), from_arrow_schema(CHAT)
    )


def verdicts(records: DataFrame, chats: DataFrame, images: DataFrame, text_only: list[str]) -> DataFrame:
    """One row per pending record: its outcome (`reason` null = kept) and the silver columns."""
    image_count = F.size(F.coalesce("image_ids", F.array()))
    token_gap = F.col("image_tokens") > image_count
    no_image = (image_count == 0) & ~F.col("source").isin(text_only) if text_only else image_count == 0
    reason = F.coalesce(
        F.col("image_reason"),
        F.when(token_gap, F.lit("missing_image")),
        F.when(no_image, F.lit("no_image")),
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
        F.col("turns").cast(silver_samples.SCHEMA["turns"].dataType).alias("turns"),
        "license", "category", "language", "prompt_edits",
        F.lit(silver_samples.SCHEMA_VERSION).alias("schema_version"),
        "file", "row_index",
        F.current_timestamp().alias("normalized_at"),
        F.lit(run_id).alias("run_id"),
    )


def image_rows(outcomes: DataFrame, slots: DataFrame, normalized: DataFrame, run_id: str) -> DataFrame:
    """Unique images of kept samples, with every (source, sample, position) that refers to them."""
    kept = outcomes.where(F.col("reason").isNull()).select("sample_id")
    refs = (
        slots.join(kept, on="sample_id", how="left_semi")
        .join(normalized.select("sha256", "image_id"), on="sha256")
        .groupBy("image_id")
        .agg(
            F.array_sort(F.collect_set(F.struct("source", "sample_id", F.col("position").cast("int").alias("position"))))
            .alias("source_refs"),
            F.min("sha256").alias("sha256"),
        )
    )
    return refs.join(normalized.drop("image_id", "reason", "detail"), on="sha256").select(
        "image_id", "bytes", "width", "height", "format", "source_width", "source_height", "source_format",
        "source_mode", "notes", "source_refs",
        F.current_timestamp().alias("normalized_at"),
        F.lit(run_id).alias("run_id"),
    )


def new_refs_only() -> tuple[str, dict[str, str]]:
    """A matched image gains the refs of new samples; an image already holding them is untouched."""
    return (
        "size(array_except(s.source_refs, t.source_refs)) > 0",
        {"source_refs": "array_sort(array_union(t.source_refs, s.source_refs))"},
    )


def run(context: JobContext, report: StageReport) -> None:
    lake, config = context.lake, context.config
    sources = {s.name: s for s in config.selected_sources()}
    pending = pending_records(
        lake.read(bronze_records.CONTRACT), lake.read(silver_samples.CONTRACT), lake.read(silver_rejects.CONTRACT),
        list(sources),
    )
    normalized = normalize_images(pending, image_policy(config), decode_partitions(context)).persist()
    # Raw bytes are read once, by normalize_images; the rest of the stage works on a slim copy.
    records = pending.withColumn("images", F.transform("images", lambda i: F.struct(i["path"], i["sha256"]))).persist()
    slots = image_slots(records)
    text_only = [name for name, s in sources.items() if s.text_only]
    outcomes = verdicts(
        records, chat_rows(records, sources, text_policy(config)), image_verdicts(slots, normalized), text_only
    ).persist()
    try:
        tally(report, list(sources), records, outcomes)
        condition, update = new_refs_only()
        images = image_rows(outcomes, slots, normalized, context.run_id)
        report.writes.append(context.gate.write(silver_images.CONTRACT, images, update_when=condition, update_set=update))
        report.writes.append(write_rejects(context, reject_rows(outcomes, STAGE, context.run_id)))
        samples = sample_rows(outcomes, context.run_id)
        samples_write = context.gate.write(
            silver_samples.CONTRACT, samples,
            conservation=Conservation(STAGE, {s: c.rows_in for s, c in report.counts.items()}),
        )
        report.writes.append(samples_write)
        report.expect_equal("samples inserted vs records kept", sum(c.kept for c in report.counts.values()),
                            samples_write.inserted)
        report.histogram("image_long_side", "longest side of the images of this run's samples (px)", images,
                         F.greatest("width", "height"), width=128)
        report.histogram("text_length", "characters in all turns of a kept sample", samples, text_length(), width=250)
    finally:
        for frame in (outcomes, normalized, records):
            frame.unpersist()


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
