"""embed: silver.images -> silver.image_embeddings (SSCD vectors), only images without a vector yet.

The model runs in an iterator pandas UDF: each Python worker builds the backend once
(udfs.embedding.backend_for) and streams Arrow batches through it. On GPU clusters the
torchscript backend runs on CUDA in fp16; give each task a GPU share with Spark's resource
scheduling (see conf/databricks.yaml, conf/dataproc.yaml). A run that adds vectors also logs
the diversity of each source's embeddings (udfs.diversity) to MLflow.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ingest import reject_rows, write_rejects
from jobs.runtime.config import Config
from jobs.runtime.gate import Conservation
from jobs.runtime.stage import JobContext, StageReport, run_job, tally
from schemas import image_embeddings, silver_images
from udfs.diversity import MEASURE_SCHEMA, PARTIAL_SCHEMA, measure, partial_sums
from udfs.embedding import EmbeddingSettings, embed_series

STAGE = "embed"
DESCRIPTION = "Embed every image of silver.images that has no vector for the configured model."
log = logging.getLogger("finelake")


def embedding_settings(config: Config) -> EmbeddingSettings:
    return EmbeddingSettings(**config.embed.model_dump(exclude={"partitions"}))


def pending_images(images: DataFrame, embeddings: DataFrame, model_id: str) -> DataFrame:
    done = embeddings.where(F.col("model_id") == model_id).select("image_id")
    return images.select("image_id", "bytes").join(done, "image_id", "left_anti")


def embed(images: DataFrame, settings: EmbeddingSettings, partitions: int) -> DataFrame:
    """(image_id, model_id, vector, error): a vector per image, or why there is none."""

    def vectors(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
        return embed_series(batches, settings)

    result_type = "vector array<float>, error string"
    embedded = images.repartition(partitions).select(
        "image_id", F.pandas_udf(vectors, result_type)(F.col("bytes")).alias("out")
    )
    return embedded.select("image_id", F.lit(settings.model_id).alias("model_id"), "out.vector", "out.error")


def diversity(vectors: DataFrame, images: DataFrame, partitions: int) -> DataFrame:
    """(label, n, effective_rank, participation_ratio) per source and over all images ("all").

    Workers reduce their vectors to per-label sums; only `partitions` partial sums per label
    (each dim x dim) meet in one task, which takes the eigenvalues.
    """
    sources = images.select("image_id", F.explode(F.array_distinct(F.transform("source_refs", lambda r: r["source"])))
                            .alias("label"))
    labelled = vectors.join(sources, "image_id").select("label", "vector").unionByName(
        vectors.select(F.lit("all").alias("label"), "vector"))
    partials = labelled.repartition(partitions).mapInPandas(
        lambda batches: (partial_sums(batch) for batch in batches), PARTIAL_SCHEMA)
    return partials.groupBy("label").applyInPandas(measure, MEASURE_SCHEMA)


def log_diversity(report: StageReport, vectors: DataFrame, images: DataFrame, partitions: int) -> None:
    for row in diversity(vectors, images, partitions).collect():
        report.metrics[f"diversity.effective_rank.{row['label']}"] = row["effective_rank"]
        report.metrics[f"diversity.participation_ratio.{row['label']}"] = row["participation_ratio"]
        log.info("diversity of %s (%d images): effective rank %.1f, participation ratio %.1f",
                 row["label"], row["n"], row["effective_rank"], row["participation_ratio"])


def run(context: JobContext, report: StageReport) -> None:
    lake, config = context.lake, context.config
    settings = embedding_settings(config)
    partitions = config.embed.partitions or 4 * context.spark.sparkContext.defaultParallelism
    pending = pending_images(lake.read(silver_images.CONTRACT), lake.read(image_embeddings.CONTRACT), settings.model_id)
    results = embed(pending, settings, partitions).persist()
    try:
        # For this stage the "source" of a row is the embedding model.
        outcomes = results.select(
            F.col("model_id").alias("source"),
            F.when(F.col("error").isNotNull(), F.lit("embedding_failed")).alias("reason"),
            F.col("error").alias("detail"),
            F.col("image_id").alias("file"),
            F.lit(0).cast("long").alias("row_index"),
            F.lit(None).cast("string").alias("sample_id"),
            F.lit(None).cast("string").alias("source_key"),
        )
        tally(report, [settings.model_id], outcomes, outcomes)
        report.writes.append(write_rejects(context, reject_rows(outcomes, STAGE, context.run_id)))
        vectors = results.where(F.col("error").isNull()).select(
            "image_id", "model_id", F.size("vector").alias("dim"), "vector",
            F.current_timestamp().alias("embedded_at"), F.lit(context.run_id).alias("run_id"),
        )
        write = context.gate.write(
            image_embeddings.CONTRACT, vectors,
            conservation=Conservation(STAGE, {s: c.rows_in for s, c in report.counts.items()}, column="model_id"),
        )
        report.writes.append(write)
        report.expect_equal("vectors inserted vs images embedded", sum(c.kept for c in report.counts.values()),
                            write.inserted)
        if write.changed:
            log_diversity(report, lake.read_version(image_embeddings.CONTRACT, write.version)
                          .where(F.col("model_id") == settings.model_id), lake.read(silver_images.CONTRACT),
                          context.spark.sparkContext.defaultParallelism)
    finally:
        results.unpersist()


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
