"""SSCD embeddings in an iterator pandas UDF, and the diversity of a set of vectors.

Each Python worker builds the backend once (udfs.embedding.backend_for) and streams Arrow
batches through it. On GPU clusters the torchscript backend runs on CUDA in fp16; give each
task a GPU share with Spark's resource scheduling (see conf/databricks.yaml, conf/dataproc.yaml).
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.runtime.config import Config
from udfs.diversity import MEASURE_SCHEMA, PARTIAL_SCHEMA, measure, partial_sums
from udfs.embedding import EmbeddingSettings, embed_series


def embedding_settings(config: Config) -> EmbeddingSettings:
    return EmbeddingSettings(**config.embed.model_dump(exclude={"partitions"}))


def pending_images(images: DataFrame, embeddings: DataFrame, model_id: str) -> DataFrame:
    """(image_id, bytes) of the images without a vector of `model_id`."""
    done = embeddings.where(F.col("model_id") == model_id).select("image_id")
    return images.select("image_id", "bytes").join(done, "image_id", "left_anti")


def embed(images: DataFrame, settings: EmbeddingSettings, tasks: int) -> DataFrame:
    """(image_id, model_id, vector, framed_vector, error): a vector per image of (image_id, bytes) and of the
    picture framed inside it (or null), or why there is none."""

    def vectors(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        return embed_series(batches, settings)

    udf = F.pandas_udf(vectors, "vector array<float>, framed_vector array<float>, error string")
    embedded = images.repartition(tasks).select("image_id", udf(F.col("bytes")).alias("out"))
    return embedded.select("image_id", F.lit(settings.model_id).alias("model_id"), "out.vector", "out.framed_vector",
                           "out.error")


def vector_rows(results: DataFrame, run_id: str) -> DataFrame:
    """silver.image_embeddings rows of the images that have a vector."""
    return results.where(F.col("error").isNull()).select(
        "image_id", "model_id", F.size("vector").alias("dim"), "vector", "framed_vector",
        F.current_timestamp().alias("embedded_at"), F.lit(run_id).alias("run_id"),
    )


def image_views(vectors: DataFrame) -> DataFrame:
    """One row per view of an image, its other columns kept: `vector` is the whole image's, then the
    framed picture's where there is one. A search over views lets a framed copy meet its original."""
    framed = vectors.where(F.col("framed_vector").isNotNull()).withColumn("vector", F.col("framed_vector"))
    return vectors.unionByName(framed).drop("framed_vector")


def diversity(vectors: DataFrame, images: DataFrame, tasks: int) -> DataFrame:
    """(label, n, effective_rank, participation_ratio) per source and over all images ("all").

    Workers reduce their vectors to per-label sums; only `tasks` partial sums per label
    (each dim x dim) meet in one task, which takes the eigenvalues.
    """
    sources = images.select("image_id", F.explode(F.array_distinct(F.transform("source_refs", lambda r: r["source"])))
                            .alias("label"))
    labelled = vectors.join(sources, "image_id").select("label", "vector").unionByName(
        vectors.select(F.lit("all").alias("label"), "vector"))
    partials = labelled.repartition(tasks).mapInPandas(
        lambda batches: (partial_sums(batch) for batch in batches), PARTIAL_SCHEMA)
    return partials.groupBy("label").applyInPandas(measure, MEASURE_SCHEMA)
