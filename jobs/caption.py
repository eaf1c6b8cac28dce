"""caption: every image of silver.images -> silver.captions: one dense caption per image and model.

A text-only model (the embedded default) cannot caption: its rows are stored with status
`blind` and no backend call, so the table says why there is no caption and a sighted model
(another `caption.model`) still captions every image later. Later stages put these captions
into the prompts of text-only teachers.
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from jobs.ops.captions import caption_rows
from jobs.ops.commits import commit_pending
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import captions, silver_images

STAGE = "caption"
DESCRIPTION = "Write one dense caption per image with the captioning model (blind models record why not)."


def run(context: JobContext, report: StageReport) -> None:
    config = context.config
    settings, prompt = config.teacher_model(config.caption.model), config.prompts[config.caption.prompt]
    done = (context.lake.read_current(captions.CONTRACT)
            .where((F.col("model") == settings.name) & (F.col("prompt_version") == prompt.label)).select("image_id"))
    pending = context.lake.read(silver_images.CONTRACT).select("image_id", "bytes").join(done, "image_id", "left_anti")
    commit_pending(context, report, captions.CONTRACT, pending, lambda images: caption_rows(images, context), label="model")


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
