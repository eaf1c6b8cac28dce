"""Rejects: a stage's rows with a reason code become its rows of silver.rejects."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.runtime.gate import Batch
from schemas import silver_rejects


def reject_rows(outcomes: DataFrame, stage: str, run_id: str) -> DataFrame:
    """The rows of `outcomes` with a reason (source, file, row_index, sample_id, source_key, reason, detail)."""
    return outcomes.where(F.col("reason").isNotNull()).select(
        F.lit(stage).alias("stage"), "source", "file", "row_index", "sample_id", "source_key", "reason", "detail",
        F.current_timestamp().alias("rejected_at"),
        F.lit(run_id).alias("run_id"),
    )


def rejects_batch(outcomes: DataFrame, stage: str, run_id: str) -> Batch:
    """Rejects MERGE as upserts: a row rejected again (a changed file re-read) belongs to this run."""
    return Batch(silver_rejects.CONTRACT, reject_rows(outcomes, stage, run_id),
                 update_when="t.run_id <> s.run_id", update_set=every_column(silver_rejects.CONTRACT))


def every_column(contract) -> dict[str, str]:
    """An update that takes every column of the new row."""
    return {c: f"s.`{c}`" for c in contract.schema.fieldNames()}


def image_outcomes(images: DataFrame, source: Column, reason: Column, detail: Column) -> DataFrame:
    """Outcomes of a stage that works on images (by id), in the shape reject_rows takes: `file` holds
    the image id, `source` what the stage counts the image under (a model, a table)."""
    return images.select(
        source.alias("source"), F.col("image_id").alias("file"), F.lit(0).cast("long").alias("row_index"),
        F.lit(None).cast("string").alias("sample_id"), F.lit(None).cast("string").alias("source_key"),
        reason.alias("reason"), detail.alias("detail"),
    )
