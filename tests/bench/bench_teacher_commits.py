"""The teacher commit path on its own: 5k and 20k pending turns, a stand-in generator that answers
at once (the cost under test is finding pending work, slicing it, auditing and committing).

    python tests/bench/bench_teacher_commits.py [--pending 5000,20000] [--commit-rows 2000]

The real commit loop (jobs/ops/commits.py) writes gold.turn_ratings through the real gate. Printed
per run: commits, seconds per 1,000 rows committed, and the ratio of that figure at the largest
pending count to the smallest (flat = the cost grows with the commit, not with the table).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import registry
from jobs.ops.commits import commit_pending
from jobs.runtime.config import load_config
from jobs.runtime.gate import Gate
from jobs.runtime.session import get_session
from jobs.runtime.stage import JobContext, StageReport
from jobs.runtime.tables import Lake
from schemas import turn_ratings
from schemas.turn_ratings import AXES, Status


def pending_turns(spark, count: int) -> DataFrame:
    return spark.range(count).select(
        F.substring(F.sha2(F.col("id").cast("string"), 256), 1, 32).alias("sample_id"), F.lit(0).alias("turn_index"),
        F.concat(F.lit("bench_"), (F.col("id") % 4).cast("string")).alias("source"),
        F.lit("How many pens does the shop sell in a week?").alias("question"), F.lit("42").alias("answer"),
        F.lit(False).alias("teacher_blind"), F.lit(False).alias("caption_used"), F.lit(False).alias("context_used"))


def instant_ratings(turns: DataFrame, run_id: str) -> DataFrame:
    """What rate would store, from a generator that answers at once."""
    return turns.select(
        "sample_id", "turn_index", "source", F.lit(Status.OK).alias("status"), F.lit(None).cast("string").alias("reason"),
        *[F.lit(4).alias(a) for a in AXES], F.lit("stand-in").alias("model"), F.lit("rating@v1").alias("prompt_version"),
        F.lit("{}").alias("sampling"), F.lit('{"formatting": 4}').alias("raw_output"), F.lit(120).alias("tokens_in"),
        F.lit(30).alias("tokens_out"), F.lit("stop").alias("finish_reason"), F.lit(1).alias("calls"),
        "teacher_blind", "caption_used", "context_used", F.current_timestamp().alias("generated_at"), F.lit(run_id).alias("run_id"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", default="5000,20000")
    parser.add_argument("--commit-rows", type=int, default=2000)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="finelake_bench_commits_"))
    base = [f"paths.lake={workdir}", "spark.master=local[2]", "spark.conf.spark.sql.shuffle.partitions=4",
            f"teacher.commit_rows={args.commit_rows}"]
    spark = get_session(load_config("local", base))

    def committed(count: int, prefix: str) -> tuple[int, int, float]:
        config = load_config("local", [*base, f"catalog.schema_prefix={prefix}"])
        lake, run_id = Lake(spark, config), uuid.uuid4().hex[:16]
        context = JobContext(spark, config, lake, run_id, Gate(lake, registry.BY_NAME["rate"], run_id, config))
        report = StageReport("rate", run_id)
        started = time.monotonic()
        written = commit_pending(context, report, turn_ratings.CONTRACT, pending_turns(spark, count),
                                 lambda turns: instant_ratings(turns, run_id))
        elapsed = time.monotonic() - started
        lake.remove_scratch("checkpoints", run_id)
        return written, int(report.metrics[f"{turn_ratings.CONTRACT.name}.commits"]), elapsed

    committed(200, "warmup_")  # the first run of a process pays for table creation and cold Spark paths
    per_thousand = {}
    for count in (int(c) for c in args.pending.split(",")):
        written, commits, elapsed = committed(count, f"t{count}_")
        per_thousand[count] = elapsed / written * 1000
        print(f"{count:>6} pending: {written} rows in {commits} commits, {elapsed:.1f} s, "
              f"{per_thousand[count]:.2f} s per 1,000 rows, {elapsed / commits:.2f} s per commit")
    small, large = min(per_thousand), max(per_thousand)
    print(f"seconds per 1,000 rows at {large} pending / at {small}: {per_thousand[large] / per_thousand[small]:.2f}")


if __name__ == "__main__":
    main()
