"""silver.captions rows: one caption per image from the captioning model, or why there is none."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ops.teacher import generate, provenance
from jobs.runtime.stage import JobContext
from schemas.captions import Status

def no_output():
    """The generation result of a row no model was asked about."""
    return F.struct(*[F.lit(None).cast(t).alias(n) for n, t in (
        ("text", "string"), ("tokens_in", "int"), ("tokens_out", "int"), ("finish_reason", "string"),
        ("error", "string"), ("calls", "int"))])


def caption_rows(images: DataFrame, context: JobContext) -> DataFrame:
    """(image_id, bytes) -> captions. A text-only model cannot caption: its rows are `blind`, with no call."""
    config = context.config
    settings, prompt = config.teacher_model(config.caption.model), config.prompts[config.caption.prompt]
    if not settings.sees_images:
        described = images.withColumn("out", no_output())
        status, reason = F.lit(Status.BLIND), F.lit("teacher_cannot_see_images")
    else:
        described = generate(images.withColumn("images", F.array("bytes")), context, settings, prompt, {})
        empty = F.length(F.trim(F.coalesce("out.text", F.lit("")))) == 0
        status = F.when(F.col("out.error").isNotNull() | empty, Status.FAILED).otherwise(Status.OK)
        reason = F.when(F.col("out.error").isNotNull(), F.concat(F.lit("generation_failed: "), F.col("out.error"))) \
            .when(empty, F.lit("empty_caption"))
    return described.withColumn("teacher_blind", F.lit(not settings.sees_images)).withColumn(
        "caption_used", F.lit(False)).withColumn("context_used", F.lit(False)).select(
        "image_id", status.alias("status"), reason.alias("reason"),
        F.when(status == Status.OK, F.trim("out.text")).alias("caption"), *provenance(context, settings, prompt),
    )
