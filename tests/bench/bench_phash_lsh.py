"""Benchmark: pHash pairs by banded LSH in Spark (jobs.dedup.phash_pairs) vs all pairs in numpy.

Synthetic 64-bit hashes: random ones, plus 1% planted near copies of an earlier hash with 1 to
`radius` bits flipped (must be found) and 0.2% with radius+1 to radius+4 bits flipped (must not).
Every hash is new. The baseline compares every pair: XOR and popcount over blocks of rows,
vectorised in numpy, on --cores threads (numpy releases the GIL), so both sides use the same
cores. Both must give the same pair set; any difference is printed. Also printed: the candidate
pairs the bands let through (pairs sharing a band value, before the exact distance), which is
what the LSH join costs: with random hashes a band of w bits lets ~N^2/2 / 2^w pairs through.
Spark runs once on a small set first (JVM JIT, Python workers); each side reports its best of
--repeats.

    python tests/bench/bench_phash_lsh.py [--sizes 20000,50000] [--cores 2] [--repeats 1]
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.ops.pairs import phash_pairs
from jobs.ops.signatures import band_layout
from jobs.runtime.config import load_config
from jobs.runtime.session import get_session

NEAR_SHARE = 0.01
FAR_SHARE = 0.002
BLOCK = 256
WARM_UP_SIZE = 2_000


def flipped(rng: np.random.Generator, values: np.ndarray, low: int, high: int) -> np.ndarray:
    """Each value with between low and high (inclusive) distinct random bits flipped."""
    out = values.view(np.uint64).copy()
    for n, count in enumerate(rng.integers(low, high + 1, size=len(values))):
        for bit in rng.choice(64, size=count, replace=False):
            out[n] ^= np.uint64(1) << np.uint64(bit)
    return out.view(np.int64)


def synthetic(size: int, radius: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    near, far = round(size * NEAR_SHARE), round(size * FAR_SHARE)
    base = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, size=size - near - far, dtype=np.int64)
    originals = rng.choice(len(base), size=near + far, replace=False)
    return np.concatenate([base, flipped(rng, base[originals[:near]], 1, radius),
                           flipped(rng, base[originals[near:]], radius + 1, radius + 4)])


def all_pairs(hashes: np.ndarray, radius: int, threads: int) -> set[tuple[int, int]]:
    unsigned = hashes.view(np.uint64)

    def block(start: int) -> list[tuple[int, int]]:
        distances = np.bitwise_count(unsigned[start:start + BLOCK, None] ^ unsigned[None, start:])
        rows, cols = np.nonzero(distances <= radius)
        keep = cols > rows  # column offsets are relative to `start`, like the rows: j > i
        return list(zip((rows[keep] + start).tolist(), (cols[keep] + start).tolist()))

    with ThreadPoolExecutor(threads) as pool:
        return {pair for found in pool.map(block, range(0, len(hashes), BLOCK)) for pair in found}


def band_candidates(hashes: np.ndarray, radius: int) -> list[int]:
    """Pairs sharing each band's value, with phash_pairs' bands (unsigned shift, then mask)."""
    unsigned = hashes.view(np.uint64)
    counts = []
    for start, width in band_layout(radius):
        _, sizes = np.unique((unsigned >> np.uint64(start)) & np.uint64((1 << width) - 1), return_counts=True)
        counts.append(int(np.sum(sizes.astype(np.int64) * (sizes - 1) // 2)))
    return counts


def write_parquet(hashes: np.ndarray, path: Path) -> None:
    pq.write_table(pa.table({
        "image_id": pa.array([f"{i:08d}" for i in range(len(hashes))]),
        "phash": pa.array(hashes),
        "is_new": pa.array(np.ones(len(hashes), dtype=bool)),
    }), path)


def best_of(repeats: int, work):
    best, result = math.inf, None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20000,50000", help="comma-separated N")
    parser.add_argument("--radius", type=int, default=None, help="default: dedup.phash_radius")
    parser.add_argument("--cores", type=int, default=2, help="Spark local[N] and the baseline's threads")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, as for finelake")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="finelake-bench-"))
    config = load_config("local", [f"paths.lake={workdir}/lake", f"spark.master=local[{args.cores}]",
                                   f"spark.conf.spark.sql.shuffle.partitions={args.cores * 4}", *args.set])
    radius = config.dedup.phash_radius if args.radius is None else args.radius
    spark = get_session(config)

    def lsh(hashes: np.ndarray, repeats: int) -> tuple[float, set[tuple[int, int]]]:
        path = workdir / f"hashes_{len(hashes)}.parquet"
        write_parquet(hashes, path)
        frame = spark.read.parquet(str(path))
        seconds, rows = best_of(repeats, lambda: phash_pairs(frame, radius).collect())
        return seconds, {(int(r.left_id), int(r.right_id)) for r in rows}

    lsh(synthetic(WARM_UP_SIZE, radius, args.seed + 1), 1)
    print(f"radius {radius} (bands of {[w for _, w in band_layout(radius)]} bits), Spark local[{args.cores}], "
          f"numpy all pairs on {args.cores} threads; near copies {NEAR_SHARE:.1%} of N, far copies {FAR_SHARE:.1%}")
    print(f"{'N':>8} {'pairs':>6} {'same':>5} {'LSH s':>8} {'all pairs s':>11} {'LSH/all pairs':>13}  candidates per band")
    for size in (int(s) for s in args.sizes.split(",")):
        hashes = synthetic(size, radius, args.seed)
        lsh_seconds, found = lsh(hashes, args.repeats)
        brute_seconds, truth = best_of(args.repeats, lambda: all_pairs(hashes, radius, args.cores))  # noqa: B023
        print(f"{size:>8} {len(truth):>6} {'yes' if found == truth else 'NO':>5} {lsh_seconds:>8.1f} {brute_seconds:>11.1f} "
              f"{lsh_seconds / brute_seconds:>13.2f}  {band_candidates(hashes, radius)}", flush=True)
        if found != truth:
            print(f"  only LSH: {sorted(found - truth)[:20]}\n  only all pairs: {sorted(truth - found)[:20]}")
    print("LSH/all pairs: Spark LSH time over numpy all-pairs time (below 1: LSH is faster)")
    spark.stop()
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
