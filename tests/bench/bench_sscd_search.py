"""Benchmark: SSCD near-duplicate search (k-means buckets + FAISS in each bucket) vs exact search.

Synthetic data: N random 512-d unit vectors (float32), of which 1% are planted partners of
another vector at an exact cosine spread uniformly over [tau + 0.001, 0.999] (the positives) and
0.2% at [tau - 0.02, tau - 0.002] (negatives: must not be reported). Every vector is new. For each
N the Spark side runs jobs.dedup.sscd_buckets (timed apart: FAISS k-means on a bounded sample) and then
jobs.dedup.sscd_pairs once per --probes value (collected, so fully evaluated).

The exact answer. For N <= --exact-max it is FAISS IndexFlatIP range_search of every vector
against all of them (the baseline, timed; the ratio printed is bucketed/exact). Beyond that,
all pairs cost ~N^2 * 512 multiply-adds (3e14 at 800k: hours on 2 cores), so the exact answer
is argued instead: two independent random unit vectors in 512-d have cosine ~ N(0, 1/512), and
the largest of N^2/2 such values is about sqrt(2 ln(N^2/2) / 512), ~0.33 at 800k, nowhere near
tau = 0.95, so the exact answer is the planted positives (their float32 cosines recomputed). The
claim is checked by brute force on --check-queries random queries against all N vectors: no
neighbour other than a vector's own planted partner may reach tau (the largest is printed).
Positives are compared by their float32 cosine, never by the design value, so none sits on tau.

Targets: recall >= 0.99 at the configured probes; growth t(4N)/t(N) <= 6 (bucketed search,
k-means included). The default --tau is what the dedup stage searches down to,
min(dedup.sscd_band_low, dedup.sscd_tau) (pairs below sscd_tau go to the pixel check); --tau 0.95
measures FineVision's threshold. Uniform random
vectors are the worst case for bucketing (no clusters), so this is a lower bound on the recall
real SSCD embeddings get.

    python tests/bench/bench_sscd_search.py [--sizes 50000,200000,800000] [--tau 0.95] [--probes 2,3,4]
        [--exact-max 200000] [--check-queries 2000] [--cores 2]
"""

from __future__ import annotations

import argparse
import math
import shutil
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.ops.pairs import sscd_buckets, sscd_pairs
from jobs.runtime.config import load_config
from jobs.runtime.session import get_session

DIM = 512
POSITIVE_SHARE = 0.01
NEGATIVE_SHARE = 0.002
CHUNK = 50_000
WARM_UP_SIZE = 5_000


def unit_rows(rng: np.random.Generator, rows: int) -> np.ndarray:
    vectors = rng.standard_normal((rows, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def partners(rng: np.random.Generator, bases: np.ndarray, cosines: np.ndarray) -> np.ndarray:
    """Unit vectors at exactly `cosines` from `bases`: c * v + sqrt(1 - c^2) * u, u a unit vector orthogonal to v."""
    noise = rng.standard_normal(bases.shape, dtype=np.float32)
    noise -= np.sum(noise * bases, axis=1, keepdims=True) * bases
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    out = cosines[:, None] * bases + np.sqrt(1 - cosines**2)[:, None] * noise
    return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def synthetic(size: int, tau: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors, planted pairs (i, j) with i < j, their float32 cosines): the partners are the last rows."""
    rng = np.random.default_rng(seed)
    positives, negatives = round(size * POSITIVE_SHARE), round(size * NEGATIVE_SHARE)
    planted = positives + negatives
    vectors = np.empty((size, DIM), dtype=np.float32)
    for start in range(0, size - planted, CHUNK):  # chunks keep the float64-free temporaries small
        stop = min(start + CHUNK, size - planted)
        vectors[start:stop] = unit_rows(rng, stop - start)
    bases = rng.choice(size - planted, size=planted, replace=False)
    cosines = np.concatenate([rng.uniform(tau + 0.001, 0.999, positives), rng.uniform(tau - 0.02, tau - 0.002, negatives)])
    vectors[size - planted:] = partners(rng, vectors[bases], cosines.astype(np.float32))
    pairs = np.stack([bases, np.arange(size - planted, size)], axis=1)
    return vectors, pairs, np.sum(vectors[pairs[:, 0]] * vectors[pairs[:, 1]], axis=1)


def write_parquet(vectors: np.ndarray, path: Path) -> None:
    """image_id, vector (array<float>), is_new, written chunk by chunk: no Python list per vector."""
    schema = pa.schema([("image_id", pa.string()), ("vector", pa.list_(pa.float32())), ("is_new", pa.bool_())])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, len(vectors), CHUNK):
            block = vectors[start:start + CHUNK]
            offsets = pa.array(np.arange(0, (len(block) + 1) * DIM, DIM, dtype=np.int32))
            writer.write_table(pa.table({
                "image_id": pa.array([f"{i:08d}" for i in range(start, start + len(block))]),
                "vector": pa.ListArray.from_arrays(offsets, pa.array(block.reshape(-1))),
                "is_new": pa.array(np.ones(len(block), dtype=bool)),
            }, schema=schema), row_group_size=10_000)


def exact_pairs(vectors: np.ndarray, tau: float) -> set[tuple[int, int]]:
    index = faiss.IndexFlatIP(DIM)
    index.add(vectors)
    limits, _, hits = index.range_search(vectors, tau)
    queries = np.repeat(np.arange(len(vectors)), np.diff(limits.astype(np.int64)))
    keep = queries < hits
    return set(zip(queries[keep].tolist(), hits[keep].tolist()))


def largest_stray_cosine(vectors: np.ndarray, pairs: np.ndarray, queries: int, seed: int) -> float:
    """Brute force for `queries` random vectors against all: the largest cosine to anything but itself and its partner."""
    partner = {}
    for i, j in pairs.tolist():
        partner[i], partner[j] = j, i
    sample = np.random.default_rng(seed).choice(len(vectors), size=min(queries, len(vectors)), replace=False)
    index = faiss.IndexFlatIP(DIM)
    index.add(vectors)
    scores, hits = index.search(vectors[sample], 3)
    stray = [
        score
        for query, row_scores, row_hits in zip(sample.tolist(), scores, hits)
        for score, hit in zip(row_scores.tolist(), row_hits.tolist())
        if hit not in (query, partner.get(query))
    ]
    return max(stray)


def timed(work):
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="50000,200000,800000", help="comma-separated N")
    parser.add_argument("--tau", type=float, default=None,
                        help="search threshold (default: the stage's, min(dedup.sscd_band_low, dedup.sscd_tau))")
    parser.add_argument("--probes", default=None, help="comma-separated probe counts (default: dedup.sscd_probes)")
    parser.add_argument("--exact-max", type=int, default=200_000, help="largest N whose exact answer is brute-forced")
    parser.add_argument("--check-queries", type=int, default=2000, help="queries brute-forced to check the claim beyond --exact-max")
    parser.add_argument("--cores", type=int, default=2, help="Spark local[N]")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override, as for finelake")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="finelake-bench-"))
    config = load_config("local", [f"paths.lake={workdir}/lake", f"spark.master=local[{args.cores}]",
                                   f"spark.conf.spark.sql.shuffle.partitions={args.cores * 4}", *args.set])
    settings = config.dedup
    tau = min(settings.sscd_band_low, settings.sscd_tau) if args.tau is None else args.tau
    probes = [int(p) for p in args.probes.split(",")] if args.probes else [settings.sscd_probes]
    faiss.omp_set_num_threads(args.cores)
    spark = get_session(config)

    def spark_search(size: int, seed: int) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray]:
        vectors, pairs, cosines = synthetic(size, tau, seed)
        path = workdir / f"vectors_{size}.parquet"
        write_parquet(vectors, path)
        frame = spark.read.parquet(str(path))
        row = {"N": size}
        row["t_kmeans"], centers = timed(lambda: sscd_buckets(frame, settings.sscd_buckets))
        row["k"] = len(centers)
        for p in probes:
            row[f"t_pairs_{p}"], found = timed(lambda: sscd_pairs(frame, tau, centers, p).collect())  # noqa: B023
            row[f"found_{p}"] = {(int(r.left_id), int(r.right_id)) for r in found}
        path.unlink()
        return row, vectors, pairs, cosines

    spark_search(WARM_UP_SIZE, args.seed + 1)  # JVM JIT, Python workers, FAISS and k-means code paths
    print(f"tau {tau}, probes {probes}, buckets {settings.sscd_buckets or 'sqrt(N)'}, Spark local[{args.cores}], "
          f"FAISS {args.cores} threads; positives {POSITIVE_SHARE:.1%} of N in [tau, 1), negatives {NEGATIVE_SHARE:.1%} just below")
    rows = []
    for size in sizes:
        row, vectors, pairs, cosines = spark_search(size, args.seed)
        planted = {(int(i), int(j)) for (i, j), c in zip(pairs, cosines) if c >= tau}
        if size <= args.exact_max:
            row["t_exact"], truth = timed(lambda: exact_pairs(vectors, tau))  # noqa: B023
            row["truth"] = f"brute force ({'= planted' if truth == planted else f'{len(truth - planted)} unplanted'})"
        else:
            stray = largest_stray_cosine(vectors, pairs, args.check_queries, args.seed)
            expected = math.sqrt(2 * math.log(size * size / 2) / DIM)
            truth = planted
            row["truth"] = (f"planted; {min(args.check_queries, size)} queries x {size}: largest stray cosine "
                            f"{stray:.3f} (expected max over all pairs ~{expected:.2f}) {'<' if stray < tau else '>='} tau")
        row["positives"] = len(truth)
        lowest = {(int(i), int(j)) for (i, j), c in zip(pairs, cosines) if tau <= c < tau + 0.01} & truth
        for p in probes:
            found = row.pop(f"found_{p}")
            row[f"recall_{p}"] = len(found & truth) / len(truth)
            row[f"extra_{p}"] = len(found - truth)
            row[f"recall_low_{p}"] = len(found & lowest) / max(len(lowest), 1)
        rows.append(row)
        report(rows, probes)
    spark.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def report(rows: list[dict], probes: list[int]) -> None:
    print(f"\n{'N':>8} {'k':>5} {'positives':>9} {'k-means s':>9} {'exact s':>8}  truth")
    for row in rows:
        exact = f"{row['t_exact']:8.1f}" if "t_exact" in row else f"{'-':>8}"
        print(f"{row['N']:>8} {row['k']:>5} {row['positives']:>9} {row['t_kmeans']:>9.1f} {exact}  {row['truth']}")
    print(f"\n{'N':>8} {'probes':>6} {'pairs s':>8} {'total s':>8} {'recall':>7} {'recall@[tau,tau+.01)':>21} "
          f"{'false':>5} {'total/exact':>11} {'t(N)/t(prev N)':>14}")
    for p in probes:
        previous = None
        for row in rows:
            total = row["t_kmeans"] + row[f"t_pairs_{p}"]
            versus = f"{total / row['t_exact']:11.2f}" if "t_exact" in row else f"{'-':>11}"
            growth = f"{total / previous[1]:6.2f} (x{row['N'] / previous[0]:g} N)" if previous else f"{'-':>14}"
            print(f"{row['N']:>8} {p:>6} {row[f't_pairs_{p}']:>8.1f} {total:>8.1f} {row[f'recall_{p}']:>7.4f} "
                  f"{row[f'recall_low_{p}']:>21.4f} {row[f'extra_{p}']:>5} {versus} {growth:>14}")
            previous = (row["N"], total)
    print("targets: recall >= 0.99 at the configured probes; t(4N)/t(N) <= 6", flush=True)


if __name__ == "__main__":
    main()
