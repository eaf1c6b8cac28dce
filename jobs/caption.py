"""caption: every image of silver.images -> silver.captions: one dense caption per image and model.

A text-only model (the embedded default) cannot caption: its rows are stored with status
`blind` and no backend call, so the table says why there is no caption and a sighted model
(another `caption.model`) still captions every image later. Later stages put these captions
into the prompts of text-only teachers.
"""

from __future__ import annotations

import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.runtime import teacher
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import captions, silver_images

STAGE = "caption"
DESCRIPTION = "Write one dense caption per image with the captioning model (blind models record why not)."


def caption_rows(context: JobContext, chunk: DataFrame) -> DataFrame:
    config = context.config
    settings, prompt = config.teacher_model(config.caption.model), config.prompts[config.caption.prompt]
    if not settings.sees_images:
        blind = F.struct(*[F.lit(None).cast(t).alias(n) for n, t in
                           (("text", "string"), ("tokens_in", "int"), ("tokens_out", "int"), ("finish_reason", "string"),
                            ("error", "string"), ("calls", "int"))])
        described = chunk.withColumn("out", blind)
        status, reason = F.lit("blind"), F.lit("teacher_cannot_see_images")
    else:
        described = teacher.generate(chunk.withColumn("images", F.array("bytes")), settings, prompt,
                                     config.teacher.max_input_chars, teacher.partitions(context), {})
        empty = F.length(F.trim(F.coalesce("out.text", F.lit("")))) == 0
        status = F.when(F.col("out.error").isNotNull() | empty, "failed").otherwise("ok")
        reason = F.when(F.col("out.error").isNotNull(), F.concat(F.lit("generation_failed: "), F.col("out.error"))) \
            .when(empty, F.lit("empty_caption"))
    return described.withColumn("teacher_blind", F.lit(not settings.sees_images)).withColumn("caption_used", F.lit(False)).select(
        "image_id", status.alias("status"), reason.alias("reason"),
        F.when(status == "ok", F.trim("out.text")).alias("caption"), *teacher.provenance(context, settings, prompt),
    )


def run(context: JobContext, report: StageReport) -> None:
    config = context.config
    settings, prompt = config.teacher_model(config.caption.model), config.prompts[config.caption.prompt]
    done = (context.lake.read_latest(captions.CONTRACT)
            .where((F.col("model") == settings.name) & (F.col("prompt_version") == prompt.label)).select("image_id"))
    pending = context.lake.read(silver_images.CONTRACT).select("image_id", "bytes").join(done, "image_id", "left_anti")
    teacher.write_in_chunks(context, report, captions.CONTRACT, pending, lambda chunk: caption_rows(context, chunk),
                            ["image_id"], label="model")


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
