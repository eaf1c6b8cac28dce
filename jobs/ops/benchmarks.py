"""Benchmark test sets read, normalised, embedded and hashed by the training path's own ops.

A benchmark (conf/benchmarks.yaml) is loaded once, the first run that selects it. What cannot
be read or kept is a reject under `bench:<name>`, apart from the training sources' counts.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ops.embeddings import embed, embedding_settings
from jobs.ops.rejects import rejects_batch
from jobs.ops.samples import normalize_records
from jobs.ops.signatures import hash_images
from jobs.ops.sources import mark_duplicates, read_records, source_files
from jobs.runtime.config import SourceConfig
from jobs.runtime.gate import Batch
from jobs.runtime.stage import JobContext, StageReport
from schemas import benchmark_images, benchmark_items

OUTCOME_COLUMNS = ["file", "row_index", "sample_id", "source_key", "reason", "detail"]


def unloaded(items: DataFrame, benchmarks: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
    loaded = {r["benchmark"] for r in items.select("benchmark").distinct().collect()}  # a partition column: few values
    return {name: b for name, b in benchmarks.items() if name not in loaded}


def benchmark_batches(context: JobContext, report: StageReport, pending: dict[str, SourceConfig],
                      items: DataFrame) -> list[Batch]:
    """The bench.items, bench.images and rejects batches of the `pending` benchmarks."""
    config, keep = context.config, context.checkpoint
    files = keep(source_files(context.spark, list(pending.values())), "bench_files")
    spread = int(context.spark.conf.get("spark.sql.shuffle.partitions"))
    rows = keep(read_records(files, files.count(), pending, spread).transform(mark_duplicates, items.select("sample_id")),
                "bench_records")
    normalized = normalize_records(rows.where(F.col("reason").isNull()), pending, config,
                                   context.tasks(config.normalize.image_partitions), keep)
    labelled = F.concat(F.lit("bench:"), "source").alias("source")
    outcomes = rows.where(F.col("reason").isNotNull()).select(labelled, *OUTCOME_COLUMNS).unionByName(
        normalized.outcomes.select(labelled, *OUTCOME_COLUMNS))
    report.cover([f"bench:{n}" for n in pending])
    report.tally(rows.select(labelled), outcomes)
    kept = normalized.outcomes.where(F.col("reason").isNull())
    used = kept.select(F.explode("image_ids").alias("image_id")).distinct()
    images = normalized.decoded.where(F.col("reason").isNull()).join(used, "image_id").select("image_id", "bytes")
    vectors = keep(embed(images, embedding_settings(config), context.tasks(config.embed.partitions))
                   .join(hash_images(images, config.dedup.trim_borders), "image_id"), "bench_vectors")
    now = [F.current_timestamp().alias("loaded_at"), F.lit(context.run_id).alias("run_id")]
    image_rows = vectors.where(F.col("error").isNull() & F.col("phash").isNotNull()).join(images, "image_id").select(
        "image_id", "model_id", F.size("vector").alias("dim"), "vector", "phash", "phash_trimmed", "bytes", *now)
    item_rows = kept.select(
        F.col("source").alias("benchmark"), F.col("source_key").alias("item_id"), "sample_id", "image_ids",
        F.transform("turns", lambda t: t["user"]).alias("questions"), "file", "row_index", *now)
    return [rejects_batch(outcomes, "decontaminate", context.run_id),
            Batch(benchmark_images.CONTRACT, image_rows), Batch(benchmark_items.CONTRACT, item_rows)]
