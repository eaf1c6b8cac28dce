"""distill: every eligible turn -> gold.reasoning (teacher `short`): chain of thought and final answer.

Eligible: samples not flagged as benchmark contamination and not a near-duplicate's dropped
copy. The teacher answers the turn's question with the four-phase reasoning prompt; the row
keeps the reasoning (inside <think>), the final answer, the raw output, tokens in and out, the
finish reason, the model, the prompt version and the sampling parameters. A text-only teacher
gets the images' captions in the prompt and the row says it was blind. Committed as it goes.
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from jobs.ops.commits import commit_pending
from jobs.ops.reasoning import reasoning_rows, report_reasoning
from jobs.ops.teacher import eligible_turns, not_done, with_visual_inputs
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import reasoning
from schemas.reasoning import Teacher

STAGE = "distill"
DESCRIPTION = "Distil the short-CoT teacher's reasoning and final answer for every eligible turn."


def run(context: JobContext, report: StageReport) -> None:
    role, prompt = context.config.distill.model, context.config.distill.prompt
    done = context.lake.read_current(reasoning.CONTRACT).where(F.col("teacher") == Teacher.SHORT)
    pending = (eligible_turns(context).transform(not_done, done)
               .transform(with_visual_inputs, context, context.config.teacher_model(role)))
    commit_pending(context, report, reasoning.CONTRACT, pending,
                   lambda turns: reasoning_rows(turns, context, role, prompt, Teacher.SHORT))
    report_reasoning(report, context.lake.read_current(reasoning.CONTRACT).where(F.col("run_id") == context.run_id),
                   Teacher.SHORT)


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
