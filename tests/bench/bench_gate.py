"""Write-audit-publish costs the batch, not the table: a 1,000-row commit through the real gate
(stage, Great Expectations suite, Delta commit, ops.validations) on tables of 10k, 100k and 1M rows.

    python tests/bench/bench_gate.py [--sizes 10000,100000,1000000] [--batch 1000] [--image-kb 24] [--repeats 3]

Three real contracts, their rows synthetic: silver.samples (appended: keys new by construction),
silver.images (MERGE on image_id, with the refs update normalize uses; `--image-kb` random
bytes per image) and silver.rejects (MERGE into the stage's own partition). The tables are
written straight to Delta (not through the gate) once per size; each commit then adds `--batch`
new rows. Printed: median seconds per commit at each size, and time at the largest size / time
at the smallest (target <= 1.5). Demo images average ~127 KB; the default 24 KB keeps 1M images
within this machine's disk (the gate never reads the bytes of rows already in a table).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import registry
from jobs.ops.rejects import rejects_batch
from jobs.ops.samples import NEW_REFS_ONLY
from jobs.runtime.config import load_config
from jobs.runtime.gate import Batch, Gate
from jobs.runtime.session import get_session
from jobs.runtime.tables import Lake
from schemas import silver_images, silver_rejects, silver_samples


def samples(spark, start: int, count: int, run_id: str) -> DataFrame:
    ids = spark.range(start, start + count, numPartitions=max(1, count // 50_000))
    return ids.select(
        F.substring(F.sha2(F.col("id").cast("string"), 256), 1, 32).alias("sample_id"),
        F.concat(F.lit("bench_"), (F.col("id") % 4).cast("string")).alias("source"), F.lit("default").alias("subset"),
        F.col("id").cast("string").alias("source_key"),
        F.array(F.sha2(F.concat(F.lit("image"), F.col("id").cast("string")), 256)).alias("image_ids"),
        F.array(F.struct(F.concat(F.lit("What is in picture "), F.col("id").cast("string"), F.lit("?")).alias("user"),
                         F.lit("A photo of a bench in a park, seen from the side.").alias("assistant"))).alias("turns"),
        F.lit(None).cast("string").alias("image_text"), F.array().cast(silver_samples.SCHEMA["actions"].dataType).alias("actions"),
        F.lit("CC0-1.0").alias("license"), F.lit("general").alias("category"), F.lit("en").alias("language"),
        F.array().cast("array<string>").alias("prompt_edits"), F.lit(silver_samples.SCHEMA_VERSION).alias("schema_version"),
        F.lit("part-0.parquet").alias("file"), F.col("id").alias("row_index"),
        F.current_timestamp().alias("normalized_at"), F.lit(run_id).alias("run_id"),
    )


def images(spark, start: int, count: int, kilobytes: int, run_id: str) -> DataFrame:
    ids = spark.range(start, start + count, numPartitions=max(1, count // 50_000))
    data = F.expr(f"cast(randstr({kilobytes * 1024}) as binary)")
    return ids.select("id", data.alias("bytes")).select(
        F.sha2("bytes", 256).alias("image_id"), "bytes", F.lit(1024).alias("width"), F.lit(768).alias("height"),
        F.lit("JPEG").alias("format"), F.lit(2048).alias("source_width"), F.lit(1536).alias("source_height"),
        F.lit("JPEG").alias("source_format"), F.lit("RGB").alias("source_mode"), F.array().cast("array<string>").alias("notes"),
        F.array(F.struct(F.lit("bench_0").alias("source"), F.substring(F.sha2(F.col("id").cast("string"), 256), 1, 32)
                         .alias("sample_id"), F.lit(0).alias("position"))).alias("source_refs"),
        F.current_timestamp().alias("normalized_at"), F.lit(run_id).alias("run_id"),
    )


def rejected(spark, start: int, count: int) -> DataFrame:
    ids = spark.range(start, start + count, numPartitions=max(1, count // 50_000))
    return ids.select(
        F.concat(F.lit("bench_"), (F.col("id") % 4).cast("string")).alias("source"),
        F.concat(F.lit("part-"), (F.col("id") % 97).cast("string"), F.lit(".parquet")).alias("file"),
        F.col("id").alias("row_index"), F.lit(None).cast("string").alias("sample_id"),
        F.col("id").cast("string").alias("source_key"), F.lit("empty_text").alias("reason"), F.lit("no turns").alias("detail"),
    )


def build(lake: Lake, size: int, kilobytes: int) -> None:
    spark = lake.spark
    for contract, rows in ((silver_samples.CONTRACT, samples(spark, 0, size, "build")),
                           (silver_images.CONTRACT, images(spark, 0, size, kilobytes, "build")),
                           (silver_rejects.CONTRACT, rejected(spark, 0, size).select(
                               F.lit("normalize").alias("stage"), "*", F.current_timestamp().alias("rejected_at"),
                               F.lit("build").alias("run_id")))):
        lake.ensure(contract)
        rows.write.format("delta").mode("append").saveAsTable(lake.name(contract))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--image-kb", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="finelake_bench_gate_"))
    base = [f"paths.lake={workdir}", "spark.master=local[2]", "spark.conf.spark.sql.shuffle.partitions=4"]
    spark = get_session(load_config("local", base))
    normalize = registry.BY_NAME["normalize"]
    seconds: dict[int, dict[str, float]] = {}
    # The first commits of a process pay for cold Spark paths and GX's import: warm up on a 1k table, not timed.
    for size, prefix in ((1000, "warmup_"), *((int(s), f"g{s}_") for s in args.sizes.split(","))):
        config = load_config("local", [*base, f"catalog.schema_prefix={prefix}"])
        lake = Lake(spark, config)
        if not lake.exists(silver_images.CONTRACT):  # a --workdir of an earlier run keeps its tables
            started = time.monotonic()
            build(lake, size, args.image_kb)
            print(f"{size:>9} rows per table written in {time.monotonic() - started:.0f} s")
        timings: dict[str, list[float]] = {"samples": [], "images": [], "rejects": []}
        for repeat in range(args.repeats):
            run_id = uuid.uuid4().hex[:16]
            gate = Gate(lake, normalize, run_id, config)
            start = lake.read_current(silver_samples.CONTRACT).count()  # every commit adds new keys
            for name, batch in (
                ("samples", Batch(silver_samples.CONTRACT, samples(spark, start, args.batch, run_id), append=True)),
                ("images", Batch(silver_images.CONTRACT, images(spark, start, args.batch, args.image_kb, run_id), **NEW_REFS_ONLY)),
                ("rejects", rejects_batch(rejected(spark, start, args.batch).withColumn("reason", F.lit("empty_text")),
                                          "normalize", run_id)),
            ):
                began = time.monotonic()
                gate.commit(batch)
                timings[name].append(time.monotonic() - began)
        if prefix == "warmup_":
            continue
        seconds[size] = {name: statistics.median(values) for name, values in timings.items()}
        print(f"{size:>9} rows: " + ", ".join(f"{name} {value:.2f} s" for name, value in seconds[size].items())
              + f"  (median of {args.repeats} commits of {args.batch} rows)")
    small, large = min(seconds), max(seconds)
    for name in ("samples", "images", "rejects"):
        print(f"{name:>8}: time at {large} / time at {small} = {seconds[large][name] / seconds[small][name]:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
