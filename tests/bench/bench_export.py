"""Export throughput against a plain pyarrow write of the same rows, in one run.

    python tests/bench/bench_export.py [--samples 4000] [--image-kb 96] [--formats hf,webdataset,llava] [--repeats 3]

A lake in a temp folder holds silver.images (`--samples` images of `--image-kb` random bytes; an
export never decodes them) and gold.curated (`--samples` rows of two turns, one image each),
written straight to Delta. Timed, median of `--repeats`: `finelake export --format F` (the real
command: read gold.curated, join the images, shards written by the executors, the card) and the
baseline: the same rows (gold.curated joined with its images, read by Spark) brought to the driver
as Arrow and written to one parquet file by pyarrow (after one untimed run of each). Printed: MB/s (of the files written) and
samples/s of each, and the ratio export / baseline in samples/s (target >= 0.7).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from pyspark.sql import functions as F

from jobs import export as export_job
from jobs.ops.exports import with_images
from jobs.runtime.config import load_config
from jobs.runtime.session import get_session
from jobs.runtime.tables import Lake
from schemas import curated, silver_images
from schemas.turn_ratings import AXES


def build(lake: Lake, samples: int, kilobytes: int) -> None:
    spark = lake.spark
    ids = spark.range(samples, numPartitions=max(2, samples // 1000))
    data = F.expr(f"cast(randstr({kilobytes * 1024}) as binary)")
    images = ids.select("id", data.alias("bytes")).select(
        F.sha2("bytes", 256).alias("image_id"), "bytes", F.lit(1024).alias("width"), F.lit(768).alias("height"),
        F.lit("JPEG").alias("format"), F.lit(1024).alias("source_width"), F.lit(768).alias("source_height"),
        F.lit("JPEG").alias("source_format"), F.lit("RGB").alias("source_mode"), F.array().cast("array<string>").alias("notes"),
        F.array(F.struct(F.lit("bench").alias("source"), F.substring(F.sha2(F.col("id").cast("string"), 256), 1, 32)
                         .alias("sample_id"), F.lit(0).alias("position"))).alias("source_refs"),
        F.current_timestamp().alias("normalized_at"), F.lit("bench").alias("run_id"), "id")
    images.drop("id").write.format("delta").mode("append").saveAsTable(lake.name(silver_images.CONTRACT))
    stored = spark.table(lake.name(silver_images.CONTRACT)).select("image_id", F.col("source_refs")[0]["sample_id"].alias("sample_id"))
    turn = F.struct(F.lit(0).alias("turn_index"), F.lit("What is shown in this picture, and what colour is it?").alias("user"),
                    F.lit("<think>\nThe picture shows a bench; it is green.\n</think>\n\nA green bench.").alias("assistant"),
                    F.lit("short").alias("reasoning_teacher"), *[F.lit(4).alias(axis) for axis in AXES])
    rows = stored.select(
        "sample_id", F.concat(F.lit("bench_"), F.substring("sample_id", 1, 1)).alias("source"), F.lit("default").alias("subset"),
        F.col("sample_id").alias("source_key"), F.lit("general").alias("category"), F.lit("CC0-1.0").alias("license"),
        F.lit("en").alias("language"), F.array("image_id").alias("image_ids"),
        F.array(turn, turn.withField("turn_index", F.lit(1))).alias("turns"), F.array(F.lit("hardest_50")).alias("subsets"),
        F.lit("0" * 16).alias("policy_hash"), F.create_map(F.lit("silver.samples"), F.lit(1).cast("long")).alias("inputs"),
        F.current_timestamp().alias("published_at"), F.lit("bench").alias("run_id"))
    rows.write.format("delta").mode("append").saveAsTable(lake.name(curated.CONTRACT))


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--image-kb", type=int, default=96)
    parser.add_argument("--formats", default="hf,webdataset,llava")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_export_"))
    overrides = [f"paths.lake={root / 'lake'}", "spark.master=local[2]", "spark.conf.spark.sql.shuffle.partitions=8",
                 "spark.conf.spark.driver.memory=6g", "publish.shard_mb.hf=64", "publish.shard_mb.webdataset=64",
                 "publish.shard_mb.llava=64"]
    lake = Lake(get_session(load_config("local", overrides)), load_config("local", overrides))
    lake.ensure(silver_images.CONTRACT)
    lake.ensure(curated.CONTRACT)
    build(lake, args.samples, args.image_kb)
    flags = [arg for o in overrides for arg in ("--set", o)]

    def baseline() -> int:
        target = root / "baseline.parquet"
        table = lake.read_current(curated.CONTRACT).transform(with_images, lake.read_current(silver_images.CONTRACT)).toArrow()
        pq.write_table(table, target, compression="zstd")
        return target.stat().st_size

    def exported(fmt: str) -> int:
        target = root / f"export_{fmt}"
        shutil.rmtree(target, ignore_errors=True)
        assert export_job.main(["--format", fmt, "--to", str(target), *flags]) == 0
        return folder_bytes(target)

    def timed(work) -> tuple[float, int]:
        runs = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            written = work()
            runs.append((time.perf_counter() - started, written))
        return statistics.median(r[0] for r in runs), runs[-1][1]

    baseline()  # warm-up: the JVM's code and the Python workers, for both sides
    exported("hf")
    base_seconds, base_bytes = timed(baseline)
    print(f"{args.samples} samples, one {args.image_kb} KB image each, local[2]")
    print(f"  {'baseline (driver, pyarrow)':<28}{base_seconds:8.1f} s {base_bytes / 1e6 / base_seconds:8.1f} MB/s "
          f"{args.samples / base_seconds:8.0f} samples/s")
    for fmt in args.formats.split(","):
        seconds, written = timed(lambda: exported(fmt))
        print(f"  {'export ' + fmt:<28}{seconds:8.1f} s {written / 1e6 / seconds:8.1f} MB/s "
              f"{args.samples / seconds:8.0f} samples/s   ratio {base_seconds / seconds:.2f} (target >= 0.7)")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
