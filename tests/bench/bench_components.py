"""Connected components at scale (jobs/ops/components.py): rounds and time for 10k, 100k and 1M
synthetic pairs, and an incremental run after adding 1% more pairs against a full run on all; then
the clusters inside them (jobs/ops/clusters.py) with a third of the pairs overlay-explained.

    python tests/bench/bench_components.py [--pairs 10000,100000,1000000] [--added 0.01]

The pairs mix what dedup meets: a long chain (a photo edited step by step), stars (one original,
many copies) and random pairs among many images. Rounds are the large-star/small-star rounds
until every component is a star around its smallest member; each is checkpointed to disk.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ops.clusters import clusters
from jobs.ops.components import components, overlay, relabel
from jobs.runtime.config import load_config
from jobs.runtime.session import get_session


def synthetic_pairs(spark, count: int, seed: int) -> DataFrame:
    """`count` pairs: 10% one chain, 10% stars of 50 copies, 80% random among 2 x count images."""
    chain, stars = count // 10, count // 10
    ids = spark.range(count)
    name = lambda column: F.format_string("img%010d", column)  # noqa: E731 - ids sort as numbers
    left = (F.when(F.col("id") < chain, F.col("id"))
            .when(F.col("id") < chain + stars, F.lit(10 * count) + F.floor((F.col("id") - chain) / 50) * 51)
            .otherwise(F.floor(F.rand(seed) * 2 * count) + 20 * count)).cast("long")
    right = (F.when(F.col("id") < chain, F.col("id") + 1)
             .when(F.col("id") < chain + stars, F.lit(10 * count) + F.floor((F.col("id") - chain) / 50) * 51
                   + (F.col("id") - chain) % 50 + 1)
             .otherwise(F.floor(F.rand(seed + 1) * 2 * count) + 20 * count)).cast("long")
    pairs = ids.select(name(F.least(left, right)).alias("left_id"), name(F.greatest(left, right)).alias("right_id"))
    return pairs.where("left_id <> right_id").distinct()


class Checkpoints:
    """JobContext.checkpoint into a folder, counting the rounds that reach it."""

    def __init__(self, spark, folder: Path):
        self.spark, self.folder, self.writes = spark, folder, 0

    def __call__(self, frame: DataFrame, name: str) -> DataFrame:
        self.writes += 1
        frame.write.mode("overwrite").parquet(str(self.folder / name))
        return self.spark.read.parquet(str(self.folder / name))


def timed_components(spark, edges: DataFrame, folder: Path) -> tuple[DataFrame, float, int]:
    keep = Checkpoints(spark, folder)
    started = time.monotonic()
    labels = keep(components(edges.select(F.col("left_id").alias("src"), F.col("right_id").alias("dst")), keep), "labels")
    return labels, time.monotonic() - started, keep.writes - 2  # the input and the labels are not rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="10000,100000,1000000")
    parser.add_argument("--added", type=float, default=0.01)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="finelake_bench_components_"))
    spark = get_session(load_config("local", [f"paths.lake={workdir}", "spark.master=local[2]",
                                              "spark.conf.spark.sql.shuffle.partitions=8"]))
    for count in (int(c) for c in args.pairs.split(",")):
        folder = workdir / str(count)
        pairs = synthetic_pairs(spark, count, seed=count)
        pairs.write.mode("overwrite").parquet(str(folder / "pairs"))
        pairs = spark.read.parquet(str(folder / "pairs")).withColumn("added", F.rand(7) < args.added)
        full, full_seconds, rounds = timed_components(spark, pairs, folder / "full")
        components_found = full.select("component").distinct().count()
        print(f"{count:>8} pairs: {rounds} rounds, {full_seconds:.1f} s, {components_found} components")

        before, _, _ = timed_components(spark, pairs.where(~F.col("added")), folder / "before")
        added = pairs.where("added")
        members = added.select(F.col("left_id").alias("member")).unionByName(added.select(F.col("right_id").alias("member")))
        keep = Checkpoints(spark, folder / "incremental")
        started = time.monotonic()
        changed = keep(relabel(before, added, members.distinct(), keep), "changed")
        incremental_seconds = time.monotonic() - started
        after = overlay(before, changed)
        mismatches = after.join(full.withColumnRenamed("component", "full"), "member", "full_outer").where(
            ~F.col("component").eqNullSafe(F.col("full"))).count()
        print(f"{'':>8} +{added.count()} pairs ({args.added:.0%}): incremental {incremental_seconds:.1f} s, "
              f"{changed.count()} members relabelled, {keep.writes - 2} rounds; full run {full_seconds:.1f} s; "
              f"incremental / full = {incremental_seconds / full_seconds:.2f}; labels equal to the full run: {mismatches == 0}")

        graded = pairs.withColumn("overlays", F.when(F.rand(11) < 1 / 3, F.lit(1)))
        keep = Checkpoints(spark, folder / "clusters")
        started = time.monotonic()
        found = keep(clusters(full.select("member"), graded, keep), "clusters")
        print(f"{'':>8} clusters (a third of the pairs with overlays): {time.monotonic() - started:.1f} s, "
              f"{keep.writes - 1} checkpoints, {found.select('cluster').distinct().count()} clusters")


if __name__ == "__main__":
    main()
