"""embed: silver.images -> silver.image_embeddings (SSCD vectors), only images without a vector yet.

The model runs in an iterator pandas UDF, built once per Python worker (jobs/ops/embeddings.py);
on GPU clusters the torchscript backend runs on CUDA in fp16. A run that adds vectors also
logs the diversity of each source's embeddings (udfs.diversity) to MLflow.
"""

from __future__ import annotations

import logging
import sys

from pyspark.sql import functions as F

from jobs.ops.embeddings import diversity, embed, embedding_settings, pending_images, vector_rows
from jobs.ops.rejects import image_outcomes, rejects_batch
from jobs.runtime.gate import Batch, Conservation
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import image_embeddings, silver_images
from schemas.silver_rejects import Reason

STAGE = "embed"
DESCRIPTION = "Embed every image of silver.images that has no vector for the configured model."
log = logging.getLogger("finelake")


def run(context: JobContext, report: StageReport) -> None:
    lake, config = context.lake, context.config
    settings = embedding_settings(config)
    images = lake.read(silver_images.CONTRACT)
    pending = images.transform(pending_images, lake.read(image_embeddings.CONTRACT), settings.model_id)
    report.cover([settings.model_id])
    if pending.isEmpty():
        return
    results = context.checkpoint(embed(pending, settings, context.tasks(config.embed.partitions)), "vectors")
    # For this stage the "source" of an image is the embedding model.
    failed = F.when(F.col("error").isNotNull(), F.lit(Reason.EMBEDDING_FAILED))
    outcomes = results.transform(image_outcomes, F.col("model_id"), failed, F.col("error"))
    report.tally(outcomes, outcomes)
    writes = context.gate.commit(
        rejects_batch(outcomes, STAGE, context.run_id),
        Batch(image_embeddings.CONTRACT, results.transform(vector_rows, context.run_id), append=True),
        conservation=Conservation(report.rows_in, image_embeddings.CONTRACT, column="model_id"),
    )
    report.writes += writes
    report.expect_equal("vectors inserted vs images embedded", sum(c.kept for c in report.counts.values()),
                        writes[1].inserted)
    if writes[1].changed:
        vectors = lake.read_current(image_embeddings.CONTRACT).where(F.col("model_id") == settings.model_id)
        for row in diversity(vectors, images, context.parallelism).collect():
            report.metrics[f"diversity.effective_rank.{row['label']}"] = row["effective_rank"]
            report.metrics[f"diversity.participation_ratio.{row['label']}"] = row["participation_ratio"]
            log.info("diversity of %s (%d images): effective rank %.1f, participation ratio %.1f",
                     row["label"], row["n"], row["effective_rank"], row["participation_ratio"])


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
