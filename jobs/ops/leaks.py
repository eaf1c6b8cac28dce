"""Benchmark leaks: training images close to a benchmark image, training questions holding a
benchmark question's n-grams, and the per-benchmark rates a reviewer reads.

- images: a FAISS index of the benchmark vectors is broadcast to the executors and every
  training vector is range-searched down to the band's low end; benchmark pHashes are joined by
  the same banded LSH as dedup. A hit at cosine >= `sscd_tau` is a leak; one below it, and (with
  `phash_verify`) a pHash hit, only when the pixel check agrees, as in dedup;
- incremental: a (sample, benchmark) pair is checked once per `check_digest` (gold.contamination_checks),
  when dedup has hashed every image of the sample; a new benchmark or new settings see old samples;
- text: word n-grams (13 by default; a shorter question is one n-gram of its own length) of a
  sample's user turns against each benchmark item's; a sample is flagged for an item when it
  holds at least `text_min_overlap` of the item's n-grams.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ops.pairs import verified_pairs
from jobs.ops.signatures import (closest_hashes, hash_columns, hash_distance, hash_evidence, hash_images, instruction,
                                 phash_bands)
from jobs.runtime.config import DecontaminateConf
from schemas import contamination
from schemas.contamination import Kind
from schemas.duplicate_pairs import Kind as Signal
from udfs.signatures import shingles

HIT_COLUMNS = ["sample_id", "source", "benchmark", "item_id", "kind", "similarity", "evidence"]
_INDEXES: dict[str, object] = {}  # index digest -> FAISS index, deserialised once per Python worker


def unchecked(samples: DataFrame, benchmarks: list[str], checks: DataFrame, hashes: DataFrame,
              settings: str) -> DataFrame:
    """(sample_id, source, benchmark, ready): each sample and selected benchmark not yet checked
    under `settings`; `ready` once dedup, which searches after embed, has hashed every image of the sample."""
    names = samples.sparkSession.createDataFrame([(b,) for b in benchmarks], "benchmark string")
    done = checks.where(F.col("settings") == settings).select("sample_id", "benchmark")
    pending = samples.select("sample_id", "source", "image_ids").crossJoin(F.broadcast(names)).join(
        done, ["sample_id", "benchmark"], "left_anti")
    images = pending.select("sample_id", F.explode("image_ids").alias("image_id"))
    waiting = images.join(hashes.select("image_id"), "image_id", "left_anti").select("sample_id").distinct()
    return pending.join(waiting.withColumn("waiting", F.lit(True)), "sample_id", "left").select(
        "sample_id", "source", "benchmark", F.col("waiting").isNull().alias("ready"))


def sscd_leaks(train: DataFrame, bench: DataFrame, tau: float, tasks: int) -> DataFrame:
    """(kind, image_id, bench_image_id, similarity, evidence): training vectors (one or more views of an image)
    at cosine >= tau of a benchmark vector.

    The benchmark vectors (benchmark-sized, not training-sized) become one exact inner-product
    FAISS index, broadcast once and deserialised once per Python worker.
    """
    import faiss

    local = bench.select("image_id", "vector").toPandas()
    matrix = np.stack(local["vector"].to_numpy()).astype(np.float32)
    flat = faiss.IndexFlatIP(matrix.shape[1])
    flat.add(matrix)
    serialized = faiss.serialize_index(flat)
    key = hashlib.sha256(serialized.tobytes()).hexdigest()
    index = train.sparkSession.sparkContext.broadcast(serialized)
    bench_ids = local["image_id"].tolist()

    def search(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import faiss

        if key not in _INDEXES:
            _INDEXES[key] = faiss.deserialize_index(index.value)
        found = _INDEXES[key]
        for batch in batches:
            limits, scores, hits = found.range_search(np.stack(batch["vector"].to_numpy()).astype(np.float32), tau)
            rows = np.repeat(np.arange(len(batch)), np.diff(limits).astype(np.int64))
            yield pd.DataFrame({
                "image_id": batch["image_id"].to_numpy()[rows].astype(object),
                "bench_image_id": pd.Series([bench_ids[h] for h in hits], dtype=object),
                "similarity": np.minimum(scores.astype("float64"), 1.0),
            })

    found = train.select("image_id", "vector").repartition(tasks).mapInPandas(
        search, "image_id string, bench_image_id string, similarity double"
    ).groupBy("image_id", "bench_image_id").agg(F.max("similarity").alias("similarity"))  # the closest view of an image
    return found.select(F.lit(Signal.SSCD).alias("kind"), "*", F.format_string("sscd cosine=%.4f", "similarity").alias("evidence"))


def phash_leaks(train: DataFrame, bench: DataFrame, radius: int, turns: bool = True) -> DataFrame:
    """Training pHashes within `radius` bits of a benchmark pHash (one shared band, then the exact
    distance; plain and trimmed pHashes, and with `turns` the benchmark image's rotations and mirror
    (hashed from its bytes: benchmark images are few), the closest counts)."""
    left = phash_bands(train.select("image_id", *hash_columns(train)), radius).alias("l")
    if turns:
        turned = hash_images(bench.select("image_id", "bytes"), trim=False, turned=True)
        bench = bench.join(turned.select("image_id", "phash_turned"), "image_id")
    right = phash_bands(bench.select(F.col("image_id").alias("bench_image_id"), *hash_columns(bench, turned=True)),
                        radius).alias("r")
    matches = left.join(F.broadcast(right), ["band", "value"]).select(
        "image_id", "bench_image_id", hash_distance("l", "r").alias("distance"), F.col("r.turn").alias("turn"))
    return closest_hashes(matches, ["image_id", "bench_image_id"], radius).select(
        F.lit(Signal.PHASH).alias("kind"), "image_id", "bench_image_id", (1 - F.col("distance") / 64).alias("similarity"),
        hash_evidence("phash ").alias("evidence"))


def verified_leaks(pairs: DataFrame, train_images: DataFrame, bench_images: DataFrame, settings: DecontaminateConf,
                   checkpoint: Callable[[DataFrame, str], DataFrame]) -> tuple[DataFrame, dict[str, int]]:
    """The leaks dedup's rules keep (verified_pairs): each training image checks its
    `verify_neighbours` most similar benchmark images; with the pixel check's counts."""
    as_pairs = pairs.select("kind", F.col("image_id").alias("left_id"), F.col("bench_image_id").alias("right_id"),
                            "similarity", "evidence")
    kept, counts = verified_pairs(as_pairs, train_images, settings, checkpoint, right_images=bench_images,
                                  ranked=("left_id",))
    return kept.select("kind", F.col("left_id").alias("image_id"), F.col("right_id").alias("bench_image_id"),
                       "similarity", "evidence"), counts


def image_hits(image_pairs: DataFrame, samples: DataFrame, items: DataFrame) -> DataFrame:
    """Image pairs -> (sample, benchmark item) flags with the closest pairs as evidence."""
    train_refs = samples.select("sample_id", "source", F.explode("image_ids").alias("image_id"))
    bench_refs = items.select("benchmark", "item_id", F.explode("image_ids").alias("bench_image_id"))
    pair = F.format_string("%s (image %s ~ benchmark image %s)", "evidence", F.substring("image_id", 1, 12),
                           F.substring("bench_image_id", 1, 12))
    grouped = (
        image_pairs.join(train_refs, "image_id").join(bench_refs, "bench_image_id")
        .groupBy("sample_id", "source", "benchmark", "item_id")
        .agg(F.max("similarity").alias("similarity"),
             F.sort_array(F.collect_set(F.struct("similarity", pair.alias("pair"))), asc=False).alias("signals"))
    )
    # Every signal that fired (pHash and SSCD often both do), strongest first, at most three.
    return grouped.select(
        "sample_id", "source", "benchmark", "item_id", F.lit(Kind.IMAGE).alias("kind"), "similarity",
        F.array_join(F.transform(F.slice("signals", 1, 3), lambda s: s["pair"]), "; ").alias("evidence"),
    )


def question_grams(text: str, ngram: int, min_words: int) -> list[list[str]]:
    """[size, n-gram] of a benchmark question: n-grams of min(ngram, words); none below `min_words` words."""
    found = shingles(text, ngram)
    size = len(found[0].split()) if found else 0
    return [[str(size), g] for g in found] if size >= min_words else []


def ngram_rows(texts: DataFrame, grams_of) -> DataFrame:
    """(..., size, gram) rows: `grams_of(text)` gives [size, n-gram] pairs, hashed here to 64 bits."""

    def grams(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for batch in batches:
            yield batch.map(grams_of)

    exploded = texts.withColumn("gram", F.explode(F.pandas_udf(grams, "array<array<string>>")(F.col("text"))))
    return exploded.select(
        *[c for c in texts.columns if c != "text"],
        F.col("gram")[0].cast("int").alias("size"),
        F.xxhash64(F.col("gram")[1]).alias("gram"),
    ).dropDuplicates([*[c for c in texts.columns if c != "text"], "size", "gram"])


def text_hits(samples: DataFrame, items: DataFrame, settings: DecontaminateConf) -> DataFrame:
    """Samples holding at least `text_min_overlap` of a benchmark item's question n-grams.

    A question shorter than `text_ngram` words is one n-gram of its own length, so the training
    side is cut into every size a benchmark uses: a short question pasted into a longer text is found.
    """
    ngram, min_words = settings.text_ngram, settings.text_min_words
    questions = items.select("benchmark", "item_id", F.array_join("questions", "\n").alias("text"))
    bench = ngram_rows(questions, lambda text: question_grams(text, ngram, min_words))
    totals = bench.groupBy("benchmark", "item_id").agg(F.count(F.lit(1)).alias("total"))
    sizes = sorted(r["size"] for r in bench.select("size").distinct().collect())
    if not sizes:
        return samples.sparkSession.createDataFrame([], contamination.SCHEMA).select(*HIT_COLUMNS)
    train = ngram_rows(samples.select("sample_id", "source", instruction().alias("text")),
                       lambda text: [[str(s), g] for s in sizes for g in shingles(text, s)])
    shared = train.join(bench, ["size", "gram"]).groupBy("sample_id", "source", "benchmark", "item_id").agg(
        F.count(F.lit(1)).alias("shared"), F.first("size").alias("size"))
    overlap = shared.join(totals, ["benchmark", "item_id"]).withColumn("similarity", F.col("shared") / F.col("total"))
    return overlap.where(F.col("similarity") >= settings.text_min_overlap).select(
        "sample_id", "source", "benchmark", "item_id", F.lit(Kind.TEXT).alias("kind"), "similarity",
        F.format_string("%d of %d question %d-grams", "shared", "total", "size").alias("evidence"),
    )


def leak_rates(samples: DataFrame, items: DataFrame, flags: DataFrame) -> dict[str, float]:
    """Per benchmark: training samples flagged, their share, and the share of the benchmark's items leaked."""
    total_samples = samples.count()
    item_counts = {r["benchmark"]: r["count"] for r in items.groupBy("benchmark").count().collect()}
    per = flags.groupBy("benchmark").agg(F.countDistinct("sample_id").alias("samples"),
                                         F.countDistinct("item_id").alias("items"))
    found = {r["benchmark"]: r for r in per.collect()}
    metrics: dict[str, float] = {}
    for benchmark, count in sorted(item_counts.items()):
        row = found.get(benchmark)
        flagged, leaked = (row["samples"], row["items"]) if row else (0, 0)
        metrics[f"contaminated_samples.{benchmark}"] = flagged
        metrics[f"contamination_rate.{benchmark}"] = flagged / total_samples if total_samples else 0.0
        metrics[f"benchmark_items_leaked.{benchmark}"] = leaked / count if count else 0.0
    metrics["contaminated_samples"] = flags.select("sample_id").distinct().count()
    return metrics
