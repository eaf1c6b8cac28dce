"""Near-duplicate pair search, never all pairs: pHash banded LSH, SSCD in k-means buckets, MinHash
LSH for texts, and the pixel check that decides the uncertain image pairs.

- pHash: 64-bit pHashes within `phash_radius` by banded LSH (a pair within r bits shares at
  least one of r+1 bands exactly); an image may also have the pHash of its content without
  uniform borders, and a pair's distance is the closest;
- SSCD: cosine >= the band's low end inside k-means buckets (FAISS spherical k-means on a
  bounded sample; each vector joins its `sscd_probes` nearest centroids), exact search in each
  bucket with FAISS; an image may have two vectors (jobs.ops.embeddings.image_views: the whole
  image and the picture framed inside it), and a pair's cosine is the closest of its views. A
  pair whose vectors fall in disjoint buckets is missed: that is the recall traded for
  sub-quadratic work (tests/bench/bench_sscd_search.py);
- text: MinHash LSH (Spark ML) over word shingles, Jaccard >= `text_jaccard`;
- pixel check (udfs/verify.py): SSCD pairs below `sscd_tau` and, with `phash_verify`, pHash pairs
  are kept only when the two images, mapped onto each other (affine map of ORB features by RANSAC,
  mirrored too), differ nowhere but in a few overlays (score >= `verify_min`); the pair keeps the
  score (`check`), the map (`transform`), its `inlier_share`, and the covered shares and regions in
  its evidence. Only each image's `verify_neighbours` most similar candidates are checked: bounded
  work in dense regions, where hundreds of synthetic scenes all look alike.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.ops.signatures import closest_hashes, hash_columns, hash_distance, hash_evidence, phash_bands
from jobs.runtime.config import DedupConf, ImageMatchConf
from schemas.duplicate_pairs import Kind
from udfs.signatures import shingles

KMEANS_POINTS_PER_BUCKET = 64
KMEANS_SAMPLE_MAX = 100_000
PAIR_COLUMNS = ["kind", "left_id", "right_id", "similarity", "evidence", "check", "transform", "inlier_share", "overlays"]


def ordered_pair(kind: str, a: Column, b: Column, similarity: Column, evidence: Column) -> list[Column]:
    return [
        F.lit(kind).alias("kind"),
        F.least(a, b).alias("left_id"),
        F.greatest(a, b).alias("right_id"),
        similarity.cast("double").alias("similarity"),
        evidence.alias("evidence"),
    ]


def phash_pairs(hashes: DataFrame, radius: int) -> DataFrame:
    """Pairs within `radius` bits (the closest of their plain and trimmed pHashes, and of the new
    side's turned ones when `hashes` has phash_turned) with at least one new side (`is_new`): the new
    images' bands joined to everyone's, then the exact distance. A turned match names its turn."""
    new = phash_bands(hashes.where("is_new").select("image_id", *hash_columns(hashes, turned=True), "is_new"), radius)
    every = phash_bands(hashes.select("image_id", *hash_columns(hashes), "is_new"), radius)
    new, every = new.alias("l"), every.alias("r")
    once = (F.col("l.image_id") != F.col("r.image_id")) & (~F.col("r.is_new") | (F.col("l.image_id") < F.col("r.image_id")))
    matches = new.join(every, (F.col("l.band") == F.col("r.band")) & (F.col("l.value") == F.col("r.value"))).where(once).select(
        F.least("l.image_id", "r.image_id").alias("a"), F.greatest("l.image_id", "r.image_id").alias("b"),
        hash_distance("l", "r").alias("distance"), F.col("l.turn").alias("turn"))
    return closest_hashes(matches, ["a", "b"], radius).select(
        *ordered_pair(Kind.PHASH, F.col("a"), F.col("b"), 1 - F.col("distance") / 64, hash_evidence()))


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
    """Cosine >= tau inside buckets: each vector joins its `probes` nearest centroids; FAISS searches
    each bucket for the new vectors (`is_new`)."""
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
                    if ids[hit] != ids[query]:  # an image's two views are one image
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
    return best.select(*ordered_pair(Kind.SSCD, F.col("a"), F.col("b"), F.col("cosine"),
                                     F.format_string("cosine=%.4f", "cosine")))


def needs_pixel_check(settings: ImageMatchConf) -> Column:
    """Pairs that are candidates only: SSCD below sscd_tau, and pHash pairs with phash_verify."""
    kind = F.col("kind")
    return ((kind == Kind.SSCD) & (F.col("similarity") < settings.sscd_tau)) | (
        (kind == Kind.PHASH) & F.lit(settings.phash_verify))


def prepared_images(images: DataFrame, ids: DataFrame, tasks: int) -> DataFrame:
    """image_id, prepared: the images among `ids` ready for the pixel check (udfs.verify.Prepared as
    bytes, with both views' features; null when the image does not decode). Each is prepared once,
    however many pairs it is in: preparing (decode, trim, scale, ORB twice) costs more than a check."""

    def prepare(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        from udfs.verify import prepared

        for batch in batches:
            ready = []
            for data in batch:
                try:
                    ready.append(prepared(data).to_bytes())
                except (OSError, ValueError):
                    ready.append(None)
            yield pd.Series(ready, dtype=object)

    wanted = images.join(ids, "image_id", "left_semi").select("image_id", "bytes")
    # Few rows, much work per row: adaptive execution would coalesce them into one task.
    return wanted.repartition(tasks, "image_id").select(
        "image_id", F.pandas_udf(prepare, "binary")(F.col("bytes")).alias("prepared"))


def pixel_check(pairs: DataFrame, images: DataFrame, neighbours: int, checkpoint: Callable[[DataFrame, str], DataFrame],
                right_images: DataFrame | None = None, ranked: tuple[str, ...] = ("left_id", "right_id")) -> DataFrame:
    """Every pair with `check` (udfs.verify.verify's score), `transform`, `inlier_share`, `overlays`
    and `geometry` (the check's evidence), null when it was not checked.

    Only a pair among the `neighbours` most similar candidates (per kind) of one of its images (the
    sides in `ranked`) is checked: in a dense region (synthetic scenes, tables of one template)
    every image has hundreds of look-alike candidates, and the work must stay ~neighbours x images.
    The images of the checked pairs are prepared once each (prepared_images; right ids from
    `right_images` when given, e.g. benchmark images) and checkpointed; a pair found by several
    signals is checked once. A pair whose image does not decode scores 0.
    """

    def scores(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from udfs.verify import Prepared, verify

        for batch in batches:
            ready: dict[str, Prepared] = {}

            def image(image_id: str, data: bytes | None) -> Prepared | None:
                if data is not None and image_id not in ready:
                    ready[image_id] = Prepared.from_bytes(data)
                return ready.get(image_id)

            found = []
            for left, left_prepared, right, right_prepared in batch.itertuples(index=False):
                a, b = image(left, left_prepared), image(right, right_prepared)
                match = None if a is None or b is None else verify(a, b)
                found.append((0.0, None, None, None, "undecodable") if match is None else
                             (match.score, match.transform, match.inlier_share, match.overlays, match.evidence))
            yield pd.DataFrame(found, columns=["score", "transform", "inlier_share", "overlays", "evidence"]).astype(
                {"overlays": "Int32"})

    roles = [pairs.select("kind", F.col(side).alias("image"),
                          F.col("right_id" if side == "left_id" else "left_id").alias("other"),
                          "similarity", "left_id", "right_id") for side in ranked]
    by_image = functools.reduce(DataFrame.unionByName, roles)
    order = Window.partitionBy("kind", "image").orderBy(F.col("similarity").desc(), F.col("other"))
    nearest = by_image.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= neighbours)
    wanted = nearest.select("left_id", "right_id").distinct()
    tasks = 4 * pairs.sparkSession.sparkContext.defaultParallelism
    side_ids = {side: wanted.select(F.col(side).alias("image_id")) for side in ("left_id", "right_id")}
    if right_images is None:
        ready = checkpoint(prepared_images(images, side_ids["left_id"].union(side_ids["right_id"]), tasks),
                           "prepared_images")
        left, right = ready, ready
    else:
        left = checkpoint(prepared_images(images, side_ids["left_id"], tasks), "prepared_images")
        right = checkpoint(prepared_images(right_images, side_ids["right_id"], tasks), "prepared_right_images")
    to_check = wanted \
        .join(left.select(F.col("image_id").alias("left_id"), F.col("prepared").alias("left_prepared")), "left_id") \
        .join(right.select(F.col("image_id").alias("right_id"), F.col("prepared").alias("right_prepared")), "right_id")
    check = F.pandas_udf(scores, "score double, transform string, inlier_share double, overlays int, evidence string")(
        F.struct("left_id", "left_prepared", "right_id", "right_prepared"))
    # An explicit task count spreads the checks (see prepared_images); grouping by left image lets a
    # batch decode each left image once.
    checked = to_check.repartition(tasks, "left_id").select("left_id", "right_id", check.alias("verified")).select(
        "left_id", "right_id", F.col("verified.score").alias("check"), "verified.transform", "verified.inlier_share",
        "verified.overlays", F.col("verified.evidence").alias("geometry"))
    return pairs.join(checked, ["left_id", "right_id"], "left")


def verified_pairs(pairs: DataFrame, images: DataFrame, settings: ImageMatchConf,
                   checkpoint: Callable[[DataFrame, str], DataFrame], right_images: DataFrame | None = None,
                   ranked: tuple[str, ...] = ("left_id", "right_id")) -> tuple[DataFrame, dict[str, int]]:
    """The certain pairs as they are (check, transform, inlier_share, overlays null) and the uncertain ones
    (needs_pixel_check) that pass the pixel check (>= verify_min; its verdict joins the evidence),
    with the check's counts: candidates, checked, passed.

    `pairs` and the checked pairs are checkpointed: the search behind `pairs` splits in two here,
    and the gated write reads the result again.
    """
    pairs = checkpoint(pairs, "candidate_pairs")
    uncertain = needs_pixel_check(settings)
    candidates = checkpoint(pixel_check(pairs.where(uncertain), images, settings.verify_neighbours, checkpoint,
                                        right_images, ranked), "checked_pairs")
    counts = candidates.agg(
        F.count(F.lit(1)).alias("candidates"), F.count("check").alias("checked"),
        F.count(F.when(F.col("check") >= settings.verify_min, 1)).alias("passed"),
    ).first().asDict()
    kept = candidates.where(F.col("check") >= settings.verify_min).select(
        "kind", "left_id", "right_id", "similarity",
        F.format_string("%s check=%.3f %s", "evidence", "check", "geometry").alias("evidence"),
        "check", "transform", "inlier_share", "overlays")
    return pairs.where(~uncertain).unionByName(kept, allowMissingColumns=True), counts


def image_pairs(hashes: DataFrame, vectors: DataFrame, images: DataFrame, settings: DedupConf,
                checkpoint: Callable[[DataFrame, str], DataFrame]) -> tuple[DataFrame, dict[str, int]]:
    """pHash and SSCD pairs with at least one new side, verified, and the pixel check's counts."""
    pairs = phash_pairs(hashes, settings.phash_radius)
    if not vectors.where("is_new").isEmpty():
        centers = sscd_buckets(vectors, settings.sscd_buckets)
        pairs = pairs.unionByName(sscd_pairs(vectors, settings.sscd_low, centers, settings.sscd_probes))
    return verified_pairs(pairs, images, settings, checkpoint)


def text_pairs(texts: DataFrame, settings: DedupConf) -> DataFrame:
    """Near-duplicate instructions (text_hash, text, is_new) by MinHash LSH; Spark computes the exact
    Jaccard of candidates. At least one side of a pair is new."""
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
    return ordered.select(*ordered_pair(Kind.TEXT, F.col("a"), F.col("b"), F.col("j"), F.format_string("jaccard=%.3f", "j")))
