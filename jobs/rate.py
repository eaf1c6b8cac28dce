"""rate: every eligible turn -> gold.turn_ratings: FineVision's four 1-5 ratings.

The judge (`rate.model`) rates formatting, relevance, visual dependency and image-question
correspondence as one JSON object (constrained to the prompt's JSON schema where the backend
can). An answer that does not parse gets `rate.retries` repair requests; then the row is
stored as `unparseable` with the parser's reason code (which axes were missing or out of range).
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from jobs.ops.commits import commit_pending
from jobs.ops.ratings import rating_rows
from jobs.ops.teacher import eligible_turns, not_done, with_visual_inputs
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import turn_ratings
from schemas.turn_ratings import AXES, Status

STAGE = "rate"
DESCRIPTION = "Rate every eligible turn on four axes (1-5) with the judge model."


def run(context: JobContext, report: StageReport) -> None:
    config = context.config
    settings, prompt = config.teacher_model(config.rate.model), config.prompts[config.rate.prompt]
    ours = (F.col("model") == settings.name) & (F.col("prompt_version") == prompt.label)
    pending = (eligible_turns(context).transform(not_done, context.lake.read_current(turn_ratings.CONTRACT).where(ours))
               .transform(with_visual_inputs, context, settings))
    commit_pending(context, report, turn_ratings.CONTRACT, pending, lambda turns: rating_rows(turns, context))
    rated = context.lake.read_current(turn_ratings.CONTRACT).where((F.col("run_id") == context.run_id) & (F.col("status") == Status.OK))
    for axis in AXES:
        report.histogram(f"rating_{axis}", f"{axis} (1-5)", rated, F.col(axis), 1)


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
