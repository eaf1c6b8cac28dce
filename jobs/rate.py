"""rate: every eligible turn -> gold.turn_ratings: FineVision's four 1-5 ratings.

The judge (`rate.model`) rates formatting, relevance, visual dependency and image-question
correspondence as one JSON object (constrained to the prompt's JSON schema where the backend
can). An answer that does not parse gets `rate.retries` repair requests; then the row is
stored as `unparseable` with the parser's reason code (which axes were missing or out of range).
"""

from __future__ import annotations

import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.runtime import teacher
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import turn_ratings
from schemas.turn_ratings import AXES

STAGE = "rate"
DESCRIPTION = "Rate every eligible turn on four axes (1-5) with the judge model."
TURN_KEYS = ["sample_id", "turn_index"]


def rating_rows(context: JobContext, chunk: DataFrame) -> DataFrame:
    config = context.config
    settings, prompt = config.teacher_model(config.rate.model), config.prompts[config.rate.prompt]
    unparseable, scores = teacher.score_parsing(AXES)
    generated = teacher.generate(
        chunk, settings, prompt, config.teacher.max_input_chars, teacher.partitions(context),
        {"question": F.col("question"), "answer": F.col("answer"), "caption": F.col("caption")},
        unparseable=unparseable, retries=config.rate.retries,
    ).withColumn("scores", scores(F.col("out.text")))
    status, reason = teacher.status_and_reason(F.col("out.error"), F.col("scores.reason"), "unparseable")
    return generated.select(*TURN_KEYS, "source", status.alias("status"), reason.alias("reason"),
                            *[F.col(f"scores.{a}").alias(a) for a in AXES], *teacher.provenance(context, settings, prompt))


def run(context: JobContext, report: StageReport) -> None:
    config = context.config
    settings, prompt = config.teacher_model(config.rate.model), config.prompts[config.rate.prompt]
    done = (context.lake.read_latest(turn_ratings.CONTRACT)
            .where((F.col("model") == settings.name) & (F.col("prompt_version") == prompt.label)).select(*TURN_KEYS))
    pending = teacher.with_visual_inputs(context, teacher.eligible_turns(context).join(done, TURN_KEYS, "left_anti"),
                                         settings, TURN_KEYS)
    teacher.write_in_chunks(context, report, turn_ratings.CONTRACT, pending, lambda chunk: rating_rows(context, chunk), TURN_KEYS)
    rated = context.lake.read(turn_ratings.CONTRACT).where(F.col("status") == "ok")
    for axis in AXES:
        report.histogram(f"rating_{axis}", f"{axis} (1-5)", rated, F.col(axis), 1)


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
