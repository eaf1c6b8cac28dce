"""`finelake sql --engine duckdb` against the default Spark engine: the same queries, as a user runs them
(one command each, from the shell prompt to the last row), on the same lake, in the same run.

    python tests/bench/bench_sql_engines.py [--lake PATH] [--repeat 3]

Without --lake, a lake is built first in a temporary folder: ingest and normalize of the four demo
sources. Prints each query's median seconds per engine, the ratio spark / duckdb, and whether both
engines returned the same rows (CSV, sorted).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FINELAKE = str(Path(sys.executable).parent / "finelake")
QUERIES = {
    "count by source": "SELECT source, count(*) AS n FROM silver.samples GROUP BY source",
    "join and aggregate": "SELECT r.source, count(*) AS n, max(length(r.record)) AS longest FROM bronze.records r "
                          "JOIN silver.samples s ON s.sample_id = r.sample_id GROUP BY r.source",
    "rejects by reason": "SELECT stage, reason, count(*) AS n FROM silver.rejects GROUP BY stage, reason",
    "one key": "SELECT sample_id, subset, category FROM silver.samples WHERE sample_id = "
               "(SELECT min(sample_id) FROM silver.samples)",
}


def finelake(*arguments: str) -> subprocess.CompletedProcess:
    result = subprocess.run([FINELAKE, *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"finelake {' '.join(arguments[:2])} failed:\n{result.stderr[-2000:]}")
    return result


def build_lake(lake: Path) -> None:
    flags = ["--set", f"paths.lake={lake}", "--set", f"paths.demo_sources={lake / 'demo_sources'}"]
    from udfs import demo_sources

    demo_sources.build(lake / "demo_sources")
    for stage in ("ingest", "normalize"):
        started = time.monotonic()
        finelake("run", stage, *flags)
        print(f"built: {stage} {time.monotonic() - started:.1f} s", flush=True)


def timed(lake: Path, engine: str, query: str) -> tuple[float, list[str]]:
    started = time.monotonic()
    result = finelake("sql", query, "--engine", engine, "--format", "csv", "--set", f"paths.lake={lake}")
    lines = result.stdout.splitlines()
    return time.monotonic() - started, [lines[0], *sorted(lines[1:])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", type=Path, default=None, help="an existing lake (default: build the demo's)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    folder = None
    if args.lake is None:
        folder = Path(tempfile.mkdtemp(prefix="bench-sql-"))
        args.lake = folder / "lake"
        build_lake(args.lake)
    try:
        print(f"{'query':22} {'spark s':>8} {'duckdb s':>9} {'ratio':>6}  same rows")
        for name, query in QUERIES.items():
            runs = {engine: [timed(args.lake, engine, query) for _ in range(args.repeat)] for engine in ("spark", "duckdb")}
            seconds = {engine: statistics.median(t for t, _ in results) for engine, results in runs.items()}
            same = runs["spark"][0][1] == runs["duckdb"][0][1]
            print(f"{name:22} {seconds['spark']:8.2f} {seconds['duckdb']:9.2f} "
                  f"{seconds['spark'] / seconds['duckdb']:6.1f}  {same}", flush=True)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
