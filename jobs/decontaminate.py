"""decontaminate: flag training samples whose image or question overlaps a benchmark test item.

Benchmarks (conf/benchmarks.yaml) are read, normalised, embedded and hashed by the training
path's own ops into `bench.items` and `bench.images` (jobs/ops/benchmarks.py), once, the first
run that selects them. Then training samples are checked against the selected benchmarks
(jobs/ops/leaks.py): images by a broadcast FAISS index and pHash bands with dedup's pixel
check, questions by word n-grams. Hits go to `gold.contamination` (flags, never deletions);
per-benchmark rates go to MLflow. Each (sample, benchmark) is checked once per settings digest
(`gold.contamination_checks`): a run checks new samples, and old ones against a new benchmark or
new thresholds. Run it after dedup: a sample waits until dedup has hashed all its images.
"""

from __future__ import annotations

import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ops.benchmarks import benchmark_batches, unloaded
from jobs.ops.embeddings import embedding_settings, image_views
from jobs.ops.leaks import (HIT_COLUMNS, image_hits, leak_rates, phash_leaks, sscd_leaks, text_hits, unchecked,
                            verified_leaks)
from jobs.runtime.gate import Batch
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import (benchmark_images, benchmark_items, contamination, contamination_checks, image_embeddings, image_hashes,
                     silver_images, silver_samples)

STAGE = "decontaminate"
DESCRIPTION = "Load benchmark test sets, flag training samples whose images or questions overlap them."


def run(context: JobContext, report: StageReport) -> None:
    lake, config, settings = context.lake, context.config, context.config.decontaminate
    benchmarks = {b.name: b for b in config.selected_benchmarks()}
    if not benchmarks:
        report.problems.append("no benchmark selected: check decontaminate.benchmarks and conf/benchmarks.yaml")
        return
    pending = unloaded(lake.read(benchmark_items.CONTRACT), benchmarks)
    if pending:
        report.writes += context.gate.commit(*benchmark_batches(context, report, pending, lake.read(benchmark_items.CONTRACT)))
    model_id = embedding_settings(config).model_id
    digest, selected = settings.check_digest(model_id), F.col("benchmark").isin(list(benchmarks))
    samples, hashes = lake.read(silver_samples.CONTRACT), lake.read(image_hashes.CONTRACT)
    todo = context.checkpoint(unchecked(samples, list(benchmarks), lake.read(contamination_checks.CONTRACT), hashes,
                                        digest), "unchecked")
    report.metrics["samples_waiting_for_dedup"] = todo.where(~F.col("ready")).select("sample_id").distinct().count()
    todo = todo.where("ready").drop("ready")
    checked = todo.select("sample_id", "source").distinct()
    report.tally(checked, checked.select("source", F.lit(None).cast("string").alias("reason")))
    if not todo.isEmpty():
        flags = _flags(context, report, todo, samples.join(checked.select("sample_id"), "sample_id", "left_semi"), hashes,
                       model_id)
        done = todo.select("sample_id", "source", "benchmark", F.lit(digest).alias("settings"),
                           F.current_timestamp().alias("checked_at"), F.lit(context.run_id).alias("run_id"))
        report.writes += context.gate.commit(Batch(contamination.CONTRACT, flags),
                                             Batch(contamination_checks.CONTRACT, done, append=True))

    every_flag = lake.read_current(contamination.CONTRACT).where(selected)
    report.metrics.update(leak_rates(samples, lake.read_current(benchmark_items.CONTRACT).where(selected), every_flag))
    report.bars["contamination_rate_per_benchmark"] = ("share of training samples flagged (%)", {
        b: 100 * report.metrics[f"contamination_rate.{b}"] for b in sorted(benchmarks)
        if f"contamination_rate.{b}" in report.metrics})
    report.histogram("contamination_similarity", "similarity x 100 of the flags (image: cosine or pHash; text: overlap)",
                     every_flag, F.col("similarity") * 100, width=1)


def _flags(context: JobContext, report: StageReport, todo: DataFrame, samples: DataFrame, hashes: DataFrame,
           model_id: str) -> DataFrame:
    """The flags of the `todo` (sample, benchmark) pairs: only their images and benchmarks are searched."""
    lake, settings = context.lake, context.config.decontaminate
    active = [r["benchmark"] for r in todo.select("benchmark").distinct().collect()]  # few: selected benchmarks
    items = context.checkpoint(lake.read_current(benchmark_items.CONTRACT).where(F.col("benchmark").isin(active)), "items")
    bench_images = lake.read_current(benchmark_images.CONTRACT).where(F.col("model_id") == model_id).join(
        items.select(F.explode("image_ids").alias("image_id")).distinct(), "image_id")
    images = samples.select(F.explode("image_ids").alias("image_id")).distinct()

    pairs = phash_leaks(hashes.join(images, "image_id", "left_semi"), bench_images, settings.phash_radius,
                        settings.phash_turns)
    if not bench_images.isEmpty():
        train = (lake.read(image_embeddings.CONTRACT).where(F.col("model_id") == model_id)
                 .join(images, "image_id", "left_semi").transform(image_views))
        pairs = pairs.unionByName(sscd_leaks(train, bench_images, settings.sscd_low, context.tasks(settings.partitions)))
    pairs, checks = verified_leaks(pairs, lake.read(silver_images.CONTRACT), bench_images, settings, context.checkpoint)
    report.metrics.update({f"pixel_check.{k}": v for k, v in checks.items()})
    hits = image_hits(pairs, samples, items).unionByName(text_hits(samples, items, settings))
    return context.checkpoint(hits.join(todo.select("sample_id", "benchmark"), ["sample_id", "benchmark"], "left_semi")
                              .select(*HIT_COLUMNS, F.current_timestamp().alias("found_at"), F.lit(context.run_id).alias("run_id")),
                              "flags")


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
