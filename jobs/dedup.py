"""dedup: near-duplicate images and instructions -> evidence pairs, groups, a representative per group.

Four kinds of evidence, none of them a deletion:
- exact: images are already unique by content hash (silver.images); instructions by the hash of
  their normalised text;
- perceptual: 64-bit pHash within `dedup.phash_radius`, found by banded LSH (a pair within r bits
  shares at least one of r+1 bands exactly), never all pairs; with `trim_borders` an image also
  has the pHash of its content without uniform borders, and a pair's distance is the closest;
- text: MinHash LSH (Spark ML) over word shingles of the instruction, Jaccard >= `text_jaccard`;
- SSCD: cosine >= `sscd_band_low` inside k-means buckets (FAISS spherical k-means on a bounded
  sample; each vector joins its `sscd_probes`
  nearest centroids), exact search in each bucket with FAISS. A pair whose vectors fall in disjoint
  buckets is missed: that is the recall traded for sub-quadratic work (see tests/bench).
- pixel check (udfs/verify.py): SSCD pairs below `sscd_tau` (by default 1.0: all of them) and,
  with `phash_verify`, pHash pairs are kept only when the two images, borders trimmed and
  aligned, agree tile by tile (>= `verify_min`): crops, borders and captions get in, charts of
  one template with different data stay out (tests/bench/eval_dedup_quality.py measures it).
  Only each image's `verify_neighbours` most similar candidates are checked: bounded work in
  dense regions, where hundreds of synthetic scenes all look alike to SSCD and pHash.
Pairs become image groups and text groups by connected components computed in Spark; samples are
grouped by `dedup.rule` and the keep policy marks one representative per group. Search is
incremental: only pairs with at least one new image (no pHash yet) or new text are looked for.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs.embed import embedding_settings
from jobs.ingest import every_column, reject_rows, write_rejects
from jobs.runtime.config import DedupConf
from jobs.runtime.stage import JobContext, StageReport, run_job, tally
from schemas import duplicate_groups, duplicate_pairs, image_embeddings, image_hashes, silver_images, silver_samples
from udfs.signatures import phash_frames, shingles, text_hash

STAGE = "dedup"
DESCRIPTION = "Find near-duplicate images and instructions, group samples, mark one representative per group."
MAX_ITERATIONS = 64
KMEANS_POINTS_PER_BUCKET = 64
KMEANS_SAMPLE_MAX = 100_000
log = logging.getLogger("finelake")
PAIR_COLUMNS = ["kind", "left_id", "right_id", "similarity", "evidence"]


# ---------------------------------------------------------------- signatures


def hash_images(images: DataFrame, trim: bool = True) -> DataFrame:
    """(image_id, phash, phash_trimmed) for images (udfs.signatures.phashes); phash null when the bytes
    do not decode, phash_trimmed null unless `trim` and the image has a uniform border."""

    def hashes(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        return phash_frames(batches, trim)

    found = F.pandas_udf(hashes, "phash long, phash_trimmed long")(F.col("bytes"))
    return images.select("image_id", found.alias("found")).select("image_id", "found.*")


def instruction_texts(samples: DataFrame) -> DataFrame:
    """(sample_id, source, text, text_hash, text_chars): a sample's instruction is all its user turns."""

    def hashes(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for texts in batches:
            yield texts.map(text_hash)

    text = F.array_join(F.transform("turns", lambda t: t["user"]), "\n")
    chars = F.aggregate("turns", F.lit(0), lambda n, t: n + F.length(t["user"]) + F.length(t["assistant"]))
    return samples.select("sample_id", "source", "image_ids", text.alias("text"), chars.alias("text_chars")).withColumn(
        "text_hash", F.pandas_udf(hashes, "string")(F.col("text"))
    )


# ---------------------------------------------------------------- pair search


def ordered_pair(kind: str, a, b, similarity, evidence) -> list:
    return [
        F.lit(kind).alias("kind"),
        F.least(a, b).alias("left_id"),
        F.greatest(a, b).alias("right_id"),
        similarity.cast("double").alias("similarity"),
        evidence.alias("evidence"),
    ]


def band_layout(radius: int) -> list[tuple[int, int]]:
    """(first bit, width) of each of radius+1 near-equal bands of the 64 bits."""
    bands = radius + 1
    widths = [64 // bands + (1 if b < 64 % bands else 0) for b in range(bands)]
    return [(sum(widths[:b]), width) for b, width in enumerate(widths)]


def hash_columns(frame: DataFrame) -> list[str]:
    """The pHash columns `frame` has: phash, and phash_trimmed when present."""
    return [c for c in ("phash", "phash_trimmed") if c in frame.columns]


def phash_bands(hashes: DataFrame, radius: int) -> DataFrame:
    """Each row once per pHash it has (`hash`: phash and, when present, phash_trimmed) and band
    (`band`, `value`): hashes within `radius` bits share one of radius+1 bands.

    Bands are near-equal slices of the 64 bits: a narrow last band would have few values and put
    most pairs of the table into one candidate bucket.
    """
    listed = F.array_distinct(F.array_compact(F.array(*hash_columns(hashes))))
    variants = hashes.select("*", F.explode(listed).alias("hash"))
    values = [F.shiftrightunsigned("hash", start).bitwiseAND(F.lit((1 << width) - 1))
              for start, width in band_layout(radius)]
    return variants.select("*", F.posexplode(F.array(*values)).alias("band", "value"))


def hash_distance(left: str, right: str):
    return F.bit_count(F.col(f"{left}.hash").bitwiseXOR(F.col(f"{right}.hash")))


def phash_pairs(hashes: DataFrame, radius: int) -> DataFrame:
    """Pairs within `radius` bits (the closest of their plain and trimmed pHashes), at least one side
    new: banded LSH, then the exact distance."""
    banded = phash_bands(hashes.select("image_id", *hash_columns(hashes), "is_new"), radius)
    left, right = banded.alias("l"), banded.alias("r")
    candidates = (
        left.join(right, (F.col("l.band") == F.col("r.band")) & (F.col("l.value") == F.col("r.value")))
        .where((F.col("l.image_id") < F.col("r.image_id")) & (F.col("l.is_new") | F.col("r.is_new")))
        .select(F.col("l.image_id").alias("a"), F.col("r.image_id").alias("b"), hash_distance("l", "r").alias("distance"))
        .where(F.col("distance") <= radius)  # before the aggregation: Spark cannot move it there itself
        .groupBy("a", "b").agg(F.min("distance").alias("distance"))
    )
    return candidates.select(*ordered_pair(
        "phash", F.col("a"), F.col("b"), 1 - F.col("distance") / 64, F.format_string("hamming=%d", "distance")
    ))


def sscd_buckets(vectors: DataFrame, buckets: int, seed: int = 7) -> np.ndarray:
    """Unit-length spherical k-means centroids (FAISS, on the driver) of a bounded sample of the vectors.

    Centroids need ~KMEANS_POINTS_PER_BUCKET points each, not every vector: the sample is at most
    KMEANS_SAMPLE_MAX vectors (200 MB of float32 at 512-d) whatever the table's size. FAISS
    clusters 50k vectors in seconds where Spark ML's KMeans took minutes (tests/bench/bench_sscd_search.py).
    """
    import faiss

    count = vectors.count()
    k = max(1, min(buckets or int(math.sqrt(count)), count))
    wanted = min(count, KMEANS_SAMPLE_MAX, KMEANS_POINTS_PER_BUCKET * k)
    picked = vectors.select("vector")
    if wanted < count:
        picked = picked.sample(fraction=min(1.0, 1.1 * wanted / count), seed=seed).limit(wanted)
    sample = np.stack(picked.toPandas()["vector"].to_numpy()).astype(np.float32)
    k = min(k, len(sample))
    kmeans = faiss.Kmeans(sample.shape[1], k, niter=20, seed=seed, spherical=True,
                          max_points_per_centroid=KMEANS_POINTS_PER_BUCKET)
    kmeans.train(sample)
    centers = kmeans.centroids
    return centers / np.maximum(np.linalg.norm(centers, axis=1, keepdims=True), 1e-12)


def sscd_pairs(vectors: DataFrame, tau: float, centers: np.ndarray, probes: int) -> DataFrame:
    """Cosine >= tau inside buckets: each vector joins its `probes` nearest centroids; FAISS searches each bucket."""
    probes = min(probes, len(centers))

    def nearest(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for batch in batches:
            scores = np.stack(batch.to_numpy()).astype(np.float32) @ centers.T
            yield pd.Series(np.argsort(-scores, axis=1)[:, :probes].tolist())

    def search(bucket: pd.DataFrame) -> pd.DataFrame:
        import faiss

        members = np.stack(bucket["vector"].to_numpy()).astype(np.float32)
        index = faiss.IndexFlatIP(members.shape[1])
        index.add(members)
        queries = np.flatnonzero(bucket["is_new"].to_numpy())
        ids = bucket["image_id"].to_numpy()
        found = {"a": [], "b": [], "cosine": []}
        if len(queries):
            limits, scores, hits = index.range_search(members[queries], tau)
            for row, query in enumerate(queries):
                for hit, score in zip(hits[limits[row]:limits[row + 1]], scores[limits[row]:limits[row + 1]]):
                    if hit != query:
                        found["a"].append(ids[query])
                        found["b"].append(ids[hit])
                        found["cosine"].append(min(float(score), 1.0))
        # typed columns: an empty bucket result must still convert to Arrow as string, string, double
        return pd.DataFrame({
            "a": pd.Series(found["a"], dtype=object),
            "b": pd.Series(found["b"], dtype=object),
            "cosine": pd.Series(found["cosine"], dtype="float64"),
        })

    assigned = vectors.withColumn("bucket", F.explode(F.pandas_udf(nearest, "array<int>")(F.col("vector"))))
    found = assigned.groupBy("bucket").applyInPandas(search, "a string, b string, cosine double")
    ordered = found.select(F.least("a", "b").alias("a"), F.greatest("a", "b").alias("b"), "cosine")
    best = ordered.groupBy("a", "b").agg(F.max("cosine").alias("cosine"))
    return best.select(*ordered_pair("sscd", F.col("a"), F.col("b"), F.col("cosine"),
                                     F.format_string("cosine=%.4f", "cosine")))


def pixel_check(pairs: DataFrame, images: DataFrame, neighbours: int, right_images: DataFrame | None = None,
                ranked: tuple[str, ...] = ("left_id", "right_id")) -> DataFrame:
    """Every pair with `check`: its copy score (udfs.verify.copy_score), null when it was not checked.

    Only a pair among the `neighbours` most similar candidates (per kind) of one of its images (the
    sides in `ranked`) is checked: in a dense region (synthetic scenes, tables of one template)
    every image has hundreds of look-alike candidates, and the work must stay ~neighbours x images.
    Both sides' bytes are joined in (right ids from `right_images` when given, e.g. benchmark
    images); a pair found by several signals is checked once; a batch prepares each image once
    (decode, trim, downscale). A pair whose image does not decode scores 0.
    """

    def scores(batches: Iterator[pd.DataFrame]) -> Iterator[pd.Series]:
        from udfs.verify import copy_score, prepared

        for batch in batches:
            ready: dict[str, object] = {}

            def image(image_id: str, data: bytes):
                if image_id not in ready:
                    try:
                        ready[image_id] = prepared(data)
                    except (OSError, ValueError):
                        ready[image_id] = None
                return ready[image_id]

            out = []
            for left, left_bytes, right, right_bytes in batch.itertuples(index=False):
                a, b = image(left, left_bytes), image(right, right_bytes)
                out.append(0.0 if a is None or b is None else copy_score(a, b))
            yield pd.Series(out, dtype="float64")

    roles = [pairs.select("kind", F.col(side).alias("image"),
                          F.col("right_id" if side == "left_id" else "left_id").alias("other"),
                          "similarity", "left_id", "right_id") for side in ranked]
    by_image = functools.reduce(DataFrame.unionByName, roles)
    order = Window.partitionBy("kind", "image").orderBy(F.col("similarity").desc(), F.col("other"))
    nearest = by_image.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= neighbours)
    left, right = images.select("image_id", "bytes"), (right_images if right_images is not None else images)
    to_check = nearest.select("left_id", "right_id").distinct() \
        .join(left.select(F.col("image_id").alias("left_id"), F.col("bytes").alias("left_bytes")), "left_id") \
        .join(right.select(F.col("image_id").alias("right_id"), F.col("bytes").alias("right_bytes")), "right_id")
    check = F.pandas_udf(scores, "double")(F.struct("left_id", "left_bytes", "right_id", "right_bytes"))
    # Few rows, much work per row: adaptive execution would coalesce them into one task. An explicit
    # count spreads them; grouping by left image lets a batch prepare each image once.
    tasks = 4 * pairs.sparkSession.sparkContext.defaultParallelism
    checked = to_check.repartition(tasks, "left_id").select("left_id", "right_id", check.alias("check"))
    return pairs.join(checked, ["left_id", "right_id"], "left")


def verified_pairs(pairs: DataFrame, uncertain, images: DataFrame, minimum: float, neighbours: int,
                   right_images: DataFrame | None = None, ranked: tuple[str, ...] = ("left_id", "right_id"),
                   ) -> tuple[DataFrame, dict[str, int]]:
    """The certain pairs as they are and the `uncertain` ones that pass the pixel check (>= `minimum`;
    the score joins the evidence), with the pixel check's counts: candidates, checked, passed.

    `pairs` and the checked pairs are materialised once (checkpoints): the search behind `pairs` is
    split in two here, and the gated write reads the result several times.
    """
    pairs = pairs.localCheckpoint()
    candidates = pixel_check(pairs.where(uncertain), images, neighbours, right_images, ranked).localCheckpoint()
    counts = candidates.agg(
        F.count(F.lit(1)).alias("candidates"), F.count("check").alias("checked"),
        F.count(F.when(F.col("check") >= minimum, 1)).alias("passed"),
    ).first().asDict()
    kept = candidates.where(F.col("check") >= minimum).select(
        "kind", "left_id", "right_id", "similarity",
        F.format_string("%s check=%.3f", "evidence", "check").alias("evidence"))
    return pairs.where(~uncertain).unionByName(kept), counts


def image_pairs(hashes: DataFrame, vectors: DataFrame, images: DataFrame,
                settings: DedupConf) -> tuple[DataFrame, dict[str, int]]:
    """pHash and SSCD pairs, at least one side new, and the pixel check's counts. Certain: SSCD cosine
    >= sscd_tau, and pHash pairs unless phash_verify; SSCD pairs in [sscd_band_low, sscd_tau) and
    checked pHash pairs must pass the pixel check."""
    pairs = phash_pairs(hashes, settings.phash_radius)
    if not vectors.where("is_new").isEmpty():
        centers = sscd_buckets(vectors, settings.sscd_buckets)
        low = min(settings.sscd_band_low, settings.sscd_tau)
        pairs = pairs.unionByName(sscd_pairs(vectors, low, centers, settings.sscd_probes))
    uncertain = ((F.col("kind") == "sscd") & (F.col("similarity") < settings.sscd_tau)) | (
        (F.col("kind") == "phash") & F.lit(settings.phash_verify))
    return verified_pairs(pairs, uncertain, images, settings.verify_min, settings.verify_neighbours)


def text_pairs(texts: DataFrame, settings: DedupConf) -> DataFrame:
    """Near-duplicate instructions by MinHash LSH; Spark computes the exact Jaccard of candidates."""
    from pyspark.ml.feature import HashingTF, MinHashLSH

    def shingled(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for batch in batches:
            yield batch.map(lambda text: shingles(text, settings.text_shingle_words))

    tokens = texts.withColumn("shingles", F.pandas_udf(shingled, "array<string>")(F.col("text")))
    tokens = tokens.where(F.size("shingles") > 0)
    features = HashingTF(inputCol="shingles", outputCol="features", numFeatures=1 << 20, binary=True).transform(tokens)
    model = MinHashLSH(inputCol="features", outputCol="hashes", numHashTables=settings.minhash_tables, seed=7).fit(features)
    joined = model.approxSimilarityJoin(
        features.where("is_new"), features, 1 - settings.text_jaccard + 1e-9, distCol="distance"
    )
    pairs = joined.where(F.col("datasetA.text_hash") != F.col("datasetB.text_hash")).select(
        F.col("datasetA.text_hash").alias("a"), F.col("datasetB.text_hash").alias("b"), (1 - F.col("distance")).alias("j")
    )
    ordered = pairs.select(F.least("a", "b").alias("a"), F.greatest("a", "b").alias("b"), "j").dropDuplicates(["a", "b"])
    return ordered.select(*ordered_pair("text", F.col("a"), F.col("b"), F.col("j"), F.format_string("jaccard=%.3f", "j")))


# ---------------------------------------------------------------- groups


def connected_components(vertices: DataFrame, edges: DataFrame) -> DataFrame:
    """(id, component) with component = the smallest id reachable, by label propagation in Spark.

    Each round every vertex takes the smallest label among itself and its neighbours; rounds stop
    when no label changes (at most the graph's diameter). Only the count of changes reaches the
    driver; checkpoints keep the plan from growing with the rounds.
    """
    both = edges.select(F.col("left_id").alias("src"), F.col("right_id").alias("dst")).unionByName(
        edges.select(F.col("right_id").alias("src"), F.col("left_id").alias("dst"))
    )
    labels = vertices.select(F.col("id"), F.col("id").alias("component")).distinct().localCheckpoint()
    for round_ in range(MAX_ITERATIONS):
        offered = both.join(labels, both.src == labels.id).select(F.col("dst").alias("id"), "component")
        updated = labels.unionByName(offered).groupBy("id").agg(F.min("component").alias("component")).localCheckpoint()
        changed = updated.alias("u").join(labels.alias("o"), "id").where(F.col("u.component") != F.col("o.component")).count()
        labels = updated
        if changed == 0:
            log.info("connected components: converged after %d rounds", round_ + 1)
            return labels
    raise RuntimeError(f"connected components did not converge in {MAX_ITERATIONS} rounds")


def sample_groups(texts: DataFrame, image_components: DataFrame, text_components: DataFrame,
                  settings: DedupConf, run_id: str) -> DataFrame:
    """Every sample with its group under the rule and the representative the keep policy picks."""
    image_group = (
        texts.select("sample_id", F.explode("image_ids").alias("id"))
        .join(image_components, "id")
        .groupBy("sample_id")
        .agg(F.array_join(F.array_sort(F.collect_set("component")), ",").alias("images"))
    )
    grouped = (
        texts.join(image_group, "sample_id", "left")
        .join(text_components.withColumnRenamed("id", "text_hash"), "text_hash")
        .withColumn("image_group", F.when(F.col("images").isNotNull(), F.sha2("images", 256).substr(1, 32)))
        .withColumnRenamed("component", "text_group")
    )
    key = {
        "image": F.coalesce("image_group", F.concat(F.lit("alone:"), "sample_id")),
        "text": F.col("text_group"),
        "image_and_text": F.concat_ws("|", F.coalesce("image_group", F.lit("")), "text_group"),
    }[settings.rule]
    priority = F.array_position(F.array(*[F.lit(s) for s in settings.source_priority]), F.col("source")) \
        if settings.source_priority else F.lit(0)
    rank_unlisted_last = F.when(priority == 0, F.lit(1 << 30)).otherwise(priority)
    group = Window.partitionBy("group_id")
    order = group.orderBy(rank_unlisted_last, F.col("text_chars").desc(), F.col("sample_id"))
    return (
        grouped.withColumn("group_id", F.sha2(key, 256).substr(1, 32))
        .withColumn("group_size", F.count(F.lit(1)).over(group))
        .withColumn("representative", F.first("sample_id").over(order))
        .select(
            "sample_id", "source", "image_group", "text_group", "group_id", "group_size", "representative",
            (F.col("representative") == F.col("sample_id")).alias("is_representative"),
            F.lit(settings.rule).alias("rule"),
            F.current_timestamp().alias("grouped_at"),
            F.lit(run_id).alias("run_id"),
        )
    )


# ---------------------------------------------------------------- the stage


def run(context: JobContext, report: StageReport) -> None:
    """Hash new images, search pairs, then mark the images done: a crash before the last write
    leaves them new, so the next run searches again (pairs MERGE, nothing is found twice)."""
    lake, config, settings = context.lake, context.config, context.config.dedup
    known = lake.read(image_hashes.CONTRACT)
    fresh = hash_images(lake.read(silver_images.CONTRACT).join(known.select("image_id"), "image_id", "left_anti"),
                        settings.trim_borders)
    fresh = fresh.select("image_id", "phash", "phash_trimmed", F.current_timestamp().alias("hashed_at"),
                         F.lit(context.run_id).alias("run_id")).persist()
    flagged = (
        known.withColumn("is_new", F.lit(False))
        .unionByName(fresh.where(F.col("phash").isNotNull()).withColumn("is_new", F.lit(True)))
        .persist()
    )
    samples = lake.read(silver_samples.CONTRACT)
    texts = instruction_texts(samples).persist()
    new_texts = texts.join(lake.read(duplicate_groups.CONTRACT).select("sample_id"), "sample_id", "left_anti")
    distinct_texts = (
        texts.groupBy("text_hash").agg(F.first("text").alias("text"))
        .join(new_texts.select("text_hash").distinct().withColumn("is_new", F.lit(True)), "text_hash", "left")
        .fillna(False, ["is_new"])
    )
    vectors = (
        lake.read(image_embeddings.CONTRACT).where(F.col("model_id") == embedding_settings(config).model_id)
        .join(flagged.select("image_id", "is_new"), "image_id").select("image_id", "vector", "is_new").persist()
    )
    try:
        found_images, checks = image_pairs(flagged, vectors, lake.read(silver_images.CONTRACT), settings)
        report.metrics.update({f"pixel_check.{k}": v for k, v in checks.items()})
        pairs = found_images.unionByName(text_pairs(distinct_texts, settings))
        found = pairs.select(*PAIR_COLUMNS, F.current_timestamp().alias("found_at"), F.lit(context.run_id).alias("run_id"))
        report.writes.append(context.gate.write(duplicate_pairs.CONTRACT, found))

        failed = fresh.where(F.col("phash").isNull()).select(
            F.lit("silver.images").alias("source"), F.col("image_id").alias("file"), F.lit(0).cast("long").alias("row_index"),
            F.lit(None).cast("string").alias("sample_id"), F.lit(None).cast("string").alias("source_key"),
            F.lit("undecodable_image").alias("reason"), F.lit("pHash could not decode the stored image").alias("detail"),
        )
        report.writes.append(write_rejects(context, reject_rows(failed, STAGE, context.run_id)))
        report.writes.append(context.gate.write(image_hashes.CONTRACT, fresh.where(F.col("phash").isNotNull())))

        all_pairs = lake.read_version(duplicate_pairs.CONTRACT, lake.published_version(duplicate_pairs.CONTRACT))
        image_components = connected_components(
            flagged.select(F.col("image_id").alias("id")), all_pairs.where(F.col("kind").isin("phash", "sscd"))
        )
        text_components = connected_components(
            texts.select(F.col("text_hash").alias("id")), all_pairs.where(F.col("kind") == "text")
        )
        groups = sample_groups(texts, image_components, text_components, settings, context.run_id).persist()
        tally(report, sorted(r.source for r in texts.select("source").distinct().collect()), texts,
              groups.select("source", F.lit(None).cast("string").alias("reason")))
        changed = " OR ".join(
            f"NOT (t.`{c}` <=> s.`{c}`)" for c in ("image_group", "text_group", "group_id", "group_size", "representative")
        )
        report.writes.append(context.gate.write(
            duplicate_groups.CONTRACT, groups, update_when=changed, update_set=every_column(duplicate_groups.CONTRACT)
        ))
        report.histogram("group_size", "samples in a duplicate group (groups of 2 or more)",
                         groups.where("group_size > 1 AND is_representative"), F.col("group_size"), width=1)
        this_run = all_pairs.where(F.col("run_id") == context.run_id)
        for kind in duplicate_pairs.KINDS:
            report.histogram(f"pair_similarity_{kind}", f"{kind} similarity x 100 of the pairs found by this run",
                             this_run.where(F.col("kind") == kind), F.col("similarity") * 100, width=1)
        groups.unpersist()
    finally:
        for frame in (fresh, flagged, texts, vectors):
            frame.unpersist()


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
