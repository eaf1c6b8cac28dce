"""decontaminate: flag training samples whose image or question overlaps a benchmark test item.

Benchmarks (conf/benchmarks.yaml) are read with the training sources' adapters and normalised
and embedded the same way into `bench.items` and `bench.images`; a benchmark is loaded once,
the first run that selects it. Then every training sample is checked against every selected
benchmark:
- images: a FAISS index of the benchmark vectors is broadcast to the executors and every
  training vector is range-searched down to `image_band_low`; benchmark pHashes are joined by the
  same banded LSH as dedup, within `phash_radius`. A hit at cosine >= `image_tau` is a leak; one
  in the band below it, and (with `phash_verify`) a pHash hit, is a leak only when the pixel check
  (udfs/verify.py: trimmed, aligned, compared tile by tile) agrees, as in dedup;
- text: word n-grams (13 by default; a shorter question is one n-gram of its own length) of a
  sample's user turns against each benchmark item's; a sample is flagged for an item when it holds
  at least `text_min_overlap` of the item's n-grams.
Hits go to `gold.contamination` (flags, never deletions); per-benchmark rates go to MLflow.
The check reruns over all samples each run (benchmark sets change); MERGE inserts only new flags.
Run it after dedup, whose `silver.image_hashes` it reads for the training pHashes.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.dedup import hash_columns, hash_distance, hash_images, phash_bands, verified_pairs
from jobs.embed import embed, embedding_settings
from jobs.ingest import list_source_files, mark_duplicates, read_records, reject_rows, write_rejects
from jobs.normalize import chat_rows, decode_partitions, image_policy, image_slots, image_verdicts, normalize_images, text_policy, verdicts
from jobs.runtime.config import DecontaminateConf, SourceConfig
from jobs.runtime.stage import JobContext, StageReport, run_job, tally
from schemas import benchmark_images, benchmark_items, contamination, image_embeddings, image_hashes, silver_images, silver_samples
from udfs.signatures import shingles

STAGE = "decontaminate"
DESCRIPTION = "Load benchmark test sets, flag training samples whose images or questions overlap them."
HIT_COLUMNS = ["sample_id", "source", "benchmark", "item_id", "kind", "similarity", "evidence"]
_INDEXES: dict[str, object] = {}  # index digest -> FAISS index, deserialised once per Python worker


# ---------------------------------------------------------------- loading benchmarks


def load_benchmarks(context: JobContext, report: StageReport, benchmarks: dict[str, SourceConfig]) -> None:
    """Read, normalise and embed the benchmarks not loaded yet; what cannot be read is a reject row."""
    lake, config = context.lake, context.config
    loaded = {r["benchmark"] for r in lake.read(benchmark_items.CONTRACT).select("benchmark").distinct().collect()}
    pending = {name: b for name, b in benchmarks.items() if name not in loaded}
    if not pending:
        return
    listed = None
    for source in pending.values():
        files = list_source_files(context, source)
        listed = files if listed is None else listed.unionByName(files)
    spread = int(context.spark.conf.get("spark.sql.shuffle.partitions"))
    rows = mark_duplicates(read_records(listed, listed.count(), pending, spread),
                           lake.read(benchmark_items.CONTRACT).select("sample_id")).persist()
    readable = rows.where(F.col("reason").isNull())
    normalized = normalize_images(readable, image_policy(config), decode_partitions(context)).persist()
    slim = readable.withColumn("images", F.transform("images", lambda i: F.struct(i["path"], i["sha256"])))
    slots = image_slots(slim)
    outcomes = verdicts(
        slim, chat_rows(slim, pending, text_policy(config)), image_verdicts(slots, normalized),
        [n for n, b in pending.items() if b.text_only],
    ).persist()
    try:
        # Benchmark rows are counted and rejected under "bench:<name>", apart from training sources.
        labelled = F.concat(F.lit("bench:"), "source").alias("source")
        columns = ["file", "row_index", "sample_id", "source_key", "reason", "detail"]
        every = rows.where(F.col("reason").isNotNull()).select(labelled, *columns).unionByName(
            outcomes.select(labelled, *columns))
        tally(report, [f"bench:{n}" for n in pending], rows.select(labelled), every)
        report.writes.append(write_rejects(context, reject_rows(every, STAGE, context.run_id)))
        kept = outcomes.where(F.col("reason").isNull())
        used = kept.select(F.explode("image_ids").alias("image_id")).distinct()
        images = normalized.where(F.col("reason").isNull()).join(used, "image_id").select("image_id", "bytes").persist()
        settings = embedding_settings(config)
        partitions = config.embed.partitions or 4 * context.spark.sparkContext.defaultParallelism
        vectors = embed(images, settings, partitions).join(hash_images(images, config.dedup.trim_borders), "image_id")
        report.writes.append(context.gate.write(benchmark_images.CONTRACT, vectors.where(
            F.col("error").isNull() & F.col("phash").isNotNull()).join(images, "image_id").select(
            "image_id", "model_id", F.size("vector").alias("dim"), "vector", "phash", "phash_trimmed", "bytes",
            F.current_timestamp().alias("loaded_at"), F.lit(context.run_id).alias("run_id"),
        )))
        report.writes.append(context.gate.write(benchmark_items.CONTRACT, kept.select(
            F.col("source").alias("benchmark"), F.col("source_key").alias("item_id"), "sample_id", "image_ids",
            F.transform("turns", lambda t: t["user"]).alias("questions"), "file", "row_index",
            F.current_timestamp().alias("loaded_at"), F.lit(context.run_id).alias("run_id"),
        )))
        images.unpersist()
    finally:
        for frame in (rows, normalized, outcomes):
            frame.unpersist()


# ---------------------------------------------------------------- image leaks


def sscd_leaks(train: DataFrame, bench: DataFrame, tau: float, partitions: int) -> DataFrame:
    """(image_id, bench_image_id, similarity, evidence): training vectors at cosine >= tau of a benchmark vector.

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

    found = train.select("image_id", "vector").repartition(partitions).mapInPandas(
        search, "image_id string, bench_image_id string, similarity double"
    )
    return found.select(F.lit("sscd").alias("kind"), "*", F.format_string("sscd cosine=%.4f", "similarity").alias("evidence"))


def phash_leaks(train: DataFrame, bench: DataFrame, radius: int) -> DataFrame:
    """Training pHashes within `radius` bits of a benchmark pHash (one shared band, then the exact
    distance; plain and trimmed pHashes, the closest counts)."""
    left = phash_bands(train.select("image_id", *hash_columns(train)), radius).alias("l")
    right = phash_bands(bench.select(F.col("image_id").alias("bench_image_id"), *hash_columns(bench)), radius).alias("r")
    joined = left.join(F.broadcast(right), ["band", "value"]).select(
        "image_id", "bench_image_id", hash_distance("l", "r").alias("distance")
    ).where(F.col("distance") <= radius).groupBy("image_id", "bench_image_id").agg(F.min("distance").alias("distance"))
    return joined.select(F.lit("phash").alias("kind"), "image_id", "bench_image_id", (1 - F.col("distance") / 64).alias("similarity"),
                         F.format_string("phash hamming=%d", "distance").alias("evidence"))


def verified_leaks(pairs: DataFrame, train_images: DataFrame, bench_images: DataFrame,
                   settings: DecontaminateConf) -> tuple[DataFrame, dict[str, int]]:
    """Certain leaks (SSCD >= image_tau; pHash unless phash_verify) as they are; the rest only when
    the pixel check agrees, as dedup decides its uncertain pairs (each training image checks its
    `verify_neighbours` most similar benchmark images); with the pixel check's counts."""
    kind = F.col("kind")
    uncertain = ((kind == "sscd") & (F.col("similarity") < settings.image_tau)) | (
        (kind == "phash") & F.lit(settings.phash_verify))
    as_pairs = pairs.select("kind", F.col("image_id").alias("left_id"), F.col("bench_image_id").alias("right_id"),
                            "similarity", "evidence")
    kept, counts = verified_pairs(as_pairs, uncertain, train_images, settings.verify_min, settings.verify_neighbours,
                                  right_images=bench_images, ranked=("left_id",))
    return kept.select("kind", F.col("left_id").alias("image_id"), F.col("right_id").alias("bench_image_id"),
                       "similarity", "evidence"), counts


def image_hits(image_pairs: DataFrame, samples: DataFrame, items: DataFrame) -> DataFrame:
    """Image pairs -> (sample, benchmark item) flags with the closest pair as evidence."""
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
        "sample_id", "source", "benchmark", "item_id", F.lit("image").alias("kind"), "similarity",
        F.array_join(F.transform(F.slice("signals", 1, 3), lambda s: s["pair"]), "; ").alias("evidence"),
    )


# ---------------------------------------------------------------- text leaks


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
    text = F.array_join(F.transform("turns", lambda t: t["user"]), "\n")
    train = ngram_rows(samples.select("sample_id", "source", text.alias("text")),
                       lambda text: [[str(s), g] for s in sizes for g in shingles(text, s)])
    shared = train.join(bench, ["size", "gram"]).groupBy("sample_id", "source", "benchmark", "item_id").agg(
        F.count(F.lit(1)).alias("shared"), F.first("size").alias("size"))
    overlap = shared.join(totals, ["benchmark", "item_id"]).withColumn("similarity", F.col("shared") / F.col("total"))
    return overlap.where(F.col("similarity") >= settings.text_min_overlap).select(
        "sample_id", "source", "benchmark", "item_id", F.lit("text").alias("kind"), "similarity",
        F.format_string("%d of %d question %d-grams", "shared", "total", "size").alias("evidence"),
    )


# ---------------------------------------------------------------- the stage


def run(context: JobContext, report: StageReport) -> None:
    lake, config, settings = context.lake, context.config, context.config.decontaminate
    benchmarks = {b.name: b for b in config.selected_benchmarks()}
    if not benchmarks:
        report.problems.append("no benchmark selected: check decontaminate.benchmarks and conf/benchmarks.yaml")
        return
    load_benchmarks(context, report, benchmarks)
    model_id = embedding_settings(config).model_id
    items = lake.read(benchmark_items.CONTRACT).where(F.col("benchmark").isin(list(benchmarks))).persist()
    bench_images = lake.read(benchmark_images.CONTRACT).where(F.col("model_id") == model_id).join(
        items.select(F.explode("image_ids").alias("image_id")).distinct(), "image_id")
    samples = lake.read(silver_samples.CONTRACT).persist()
    try:
        partitions = settings.partitions or 4 * context.spark.sparkContext.defaultParallelism
        pairs = phash_leaks(lake.read(image_hashes.CONTRACT), bench_images, settings.phash_radius)
        if not bench_images.isEmpty():
            train = lake.read(image_embeddings.CONTRACT).where(F.col("model_id") == model_id)
            band = min(settings.image_band_low, settings.image_tau)
            pairs = pairs.unionByName(sscd_leaks(train, bench_images, band, partitions))
        pairs, checks = verified_leaks(pairs, lake.read(silver_images.CONTRACT), bench_images, settings)
        report.metrics.update({f"pixel_check.{k}": v for k, v in checks.items()})
        hits = image_hits(pairs, samples, items).unionByName(
            text_hits(samples, items, settings))
        found = hits.select(*HIT_COLUMNS, F.current_timestamp().alias("found_at"), F.lit(context.run_id).alias("run_id"))
        report.writes.append(context.gate.write(contamination.CONTRACT, found))
        flags = lake.read_version(contamination.CONTRACT, lake.published_version(contamination.CONTRACT)).where(
            F.col("benchmark").isin(list(benchmarks))).persist()
        tally(report, sorted(r.source for r in samples.select("source").distinct().collect()), samples,
              samples.select("source", F.lit(None).cast("string").alias("reason")))
        log_rates(report, samples, items, flags)
        report.histogram("contamination_similarity", "similarity x 100 of the flags (image: cosine or pHash; text: overlap)",
                         flags, F.col("similarity") * 100, width=1)
        flags.unpersist()
    finally:
        items.unpersist()
        samples.unpersist()


def log_rates(report: StageReport, samples: DataFrame, items: DataFrame, flags: DataFrame) -> None:
    """Per benchmark: share of training samples flagged, share of benchmark items leaked."""
    total_samples = samples.count()
    item_counts = {r["benchmark"]: r["count"] for r in items.groupBy("benchmark").count().collect()}
    per = flags.groupBy("benchmark").agg(F.countDistinct("sample_id").alias("samples"),
                                         F.countDistinct("item_id").alias("items"))
    found = {r["benchmark"]: r for r in per.collect()}
    for benchmark, count in sorted(item_counts.items()):
        row = found.get(benchmark)
        samples_flagged, items_leaked = (row["samples"], row["items"]) if row else (0, 0)
        report.metrics[f"contaminated_samples.{benchmark}"] = samples_flagged
        report.metrics[f"contamination_rate.{benchmark}"] = samples_flagged / total_samples if total_samples else 0.0
        report.metrics[f"benchmark_items_leaked.{benchmark}"] = items_leaked / count if count else 0.0
    report.metrics["contaminated_samples"] = flags.select("sample_id").distinct().count()
    report.bars["contamination_rate_per_benchmark"] = (
        "share of training samples flagged (%)",
        {b: 100 * report.metrics[f"contamination_rate.{b}"] for b in sorted(item_counts)},
    )


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
