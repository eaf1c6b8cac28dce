"""route: turns the short-CoT teacher got wrong -> the long-CoT teacher -> verified -> gold.routing.

HoneyPipe's routing: a turn whose short-teacher verdict (from verify) is not `correct` is
distilled again by the long-CoT teacher (`route.model`, `route.prompt`; teacher `long` in
gold.reasoning), that answer is verified like any other, and gold.routing records the outcome
of every verified turn: short_correct, long_correct, failed_both (kept, marked; never silently
dropped) or long_pending (not routed yet, e.g. a run with a commit budget). Route owns the
`long` partitions of gold.reasoning and gold.verdicts; distill and verify own `short`.
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from jobs.ops.commits import commit_pending
from jobs.ops.reasoning import reasoning_rows
from jobs.ops.routing import OUTCOME_CHANGED, failed_short_turns, outcomes
from jobs.ops.teacher import not_done, with_visual_inputs
from jobs.ops.verdicts import report_verified_rates, unverified, verdict_rows
from jobs.runtime.gate import Batch
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import reasoning, routing, silver_samples, verdicts
from schemas.reasoning import Teacher
from schemas.verdicts import Verdict

STAGE = "route"
DESCRIPTION = "Send what failed verification with the short-CoT teacher to the long-CoT teacher, verify, record outcomes."


def run(context: JobContext, report: StageReport) -> None:
    lake, role, prompt = context.lake, context.config.route.model, context.config.route.prompt
    long = F.col("teacher") == Teacher.LONG
    to_route = failed_short_turns(lake.read(verdicts.CONTRACT), lake.read(reasoning.CONTRACT), lake.read(silver_samples.CONTRACT))
    pending = (to_route.transform(not_done, lake.read_current(reasoning.CONTRACT).where(long))
               .transform(with_visual_inputs, context, context.config.teacher_model(role)))
    commit_pending(context, report, reasoning.CONTRACT, pending, lambda turns: reasoning_rows(turns, context, role, prompt, Teacher.LONG))
    answers = lake.read_current(reasoning.CONTRACT).where(long).transform(unverified, lake.read_current(verdicts.CONTRACT).where(long))
    commit_pending(context, report, verdicts.CONTRACT, answers, lambda rows: verdict_rows(rows, context),
                   outcome=F.when(F.col("verdict") != Verdict.CORRECT, F.col("verdict")))
    verdict_rows_now = lake.read_current(verdicts.CONTRACT)
    report.writes += context.gate.commit(Batch(routing.CONTRACT, outcomes(verdict_rows_now, context.run_id), **OUTCOME_CHANGED))
    counted = lake.read_current(routing.CONTRACT).groupBy("outcome").count().collect()
    report.bars["routing_outcomes"] = ("turns", {r["outcome"]: r["count"] for r in counted})
    report.metrics.update({f"routing.{r['outcome']}": r["count"] for r in counted})
    report_verified_rates(report, verdict_rows_now)


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
