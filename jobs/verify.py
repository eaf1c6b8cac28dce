"""verify: gold.reasoning (teacher `short`) -> gold.verdicts: is each final answer right?

By rule where the gold answer allows it; free-form answers go to the answer-fidelity judge
(teacher role `verify.judge`, prompt `verify.prompt`), whose 1-5 score counts as correct at
`verify.judge_pass` or more (jobs/ops/verdicts.py). An unparseable judgement gets
`verify.retries` repair requests, then the verdict is `unverified` with the parser's reason.
The long teacher's answers are verified by route, which owns them.
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from jobs.ops.commits import commit_pending
from jobs.ops.verdicts import report_verified_rates, unverified, verdict_rows
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import reasoning, verdicts
from schemas.reasoning import Teacher
from schemas.verdicts import Verdict

STAGE = "verify"
DESCRIPTION = "Verify every distilled final answer: by rule where possible, else by the fidelity judge."


def run(context: JobContext, report: StageReport) -> None:
    short = F.col("teacher") == Teacher.SHORT
    pending = context.lake.read(reasoning.CONTRACT).where(short).transform(
        unverified, context.lake.read_current(verdicts.CONTRACT).where(short))
    commit_pending(context, report, verdicts.CONTRACT, pending, lambda answers: verdict_rows(answers, context),
                   outcome=F.when(F.col("verdict") != Verdict.CORRECT, F.col("verdict")))
    report_verified_rates(report, context.lake.read_current(verdicts.CONTRACT))


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
