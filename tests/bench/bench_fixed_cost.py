"""What a stage costs whatever its size: ingest and normalize of one tiny source (the demo's
Cauldron parquet, 10 records) once the session is up, against a plain PySpark script that reads
the same file and appends it to a Delta table (no gate, no MLflow, no rejects).

    python tests/bench/bench_fixed_cost.py [--repeats 3] [--profile]

Each repeat uses a fresh schema prefix, so every run does the full work of a first run.
Printed: seconds per stage (median), the plain script's seconds, their ratio, and the target
(a curation stage without a model on a tiny input <= 15 s). `--profile` prints where the
driver's time goes in one ingest + normalize (cProfile, by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path

from jobs import registry
from jobs.runtime.config import load_config
from jobs.runtime.session import get_session
from udfs import demo_sources

TARGET_SECONDS = 15.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="finelake_bench_fixed_"))
    demo_root = workdir / "demo_sources"
    demo_sources.build(demo_root)
    base = [f"paths.lake={workdir}", f"paths.demo_sources={demo_root}", "spark.master=local[2]",
            "spark.conf.spark.sql.shuffle.partitions=4", "ingest.sources=[demo_cauldron]"]
    started = time.monotonic()
    spark = get_session(load_config("local", base))
    print(f"session up in {time.monotonic() - started:.1f} s (JVM, Delta jars from the Ivy cache)")

    def stage_run(prefix: str) -> dict[str, float]:
        flags = [arg for item in (*base, f"catalog.schema_prefix={prefix}") for arg in ("--set", item)]
        seconds = {}
        for name in ("ingest", "normalize"):
            began = time.monotonic()
            assert registry.BY_NAME[name].main(flags) == 0
            seconds[name] = time.monotonic() - began
        return seconds

    def plain_run(prefix: str) -> float:
        began = time.monotonic()
        rows = spark.read.parquet(str(demo_root / "cauldron"))
        rows.write.format("delta").mode("append").save(str(workdir / f"{prefix}plain"))
        return time.monotonic() - began

    stage_run("warmup_")  # first-run costs of the process: MLflow store, GX import, Python workers
    plain_run("warmup_")
    runs = [stage_run(f"r{i}_") for i in range(args.repeats)]
    plain = statistics.median(plain_run(f"r{i}_") for i in range(args.repeats))
    for name in ("ingest", "normalize"):
        seconds = statistics.median(r[name] for r in runs)
        verdict = "meets" if seconds <= TARGET_SECONDS else "misses"
        print(f"{name:>9}: {seconds:.1f} s (median of {args.repeats}); plain read + Delta append {plain:.1f} s; "
              f"ratio {seconds / plain:.1f}; {verdict} the target of {TARGET_SECONDS:.0f} s")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        stage_run("profiled_")
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(r"finelake|jobs/|delta/tables|gate|tables\.py", 40)


if __name__ == "__main__":
    main()
