"""route: turns the short-CoT teacher got wrong -> the long-CoT teacher -> verified -> gold.routing.

HoneyPipe's routing: a turn whose short-teacher verdict is not `correct` is distilled again by
the long-CoT teacher (`route.model`, `route.prompt`; teacher `long` in gold.reasoning), that
answer is verified like any other, and gold.routing records the outcome of every verified turn:
short_correct, long_correct, failed_both (kept, marked; never silently dropped) or long_pending
(not routed yet, e.g. a run with a chunk budget).
"""

from __future__ import annotations

import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.distill import TURN_KEYS, distil
from jobs.runtime.stage import JobContext, StageReport, run_job
from jobs.verify import report_verified_rates, verify_pending
from schemas import reasoning, routing, silver_samples, verdicts

STAGE = "route"
DESCRIPTION = "Send what failed verification with the short-CoT teacher to the long-CoT teacher, verify, record outcomes."


def failed_short_turns(context: JobContext) -> DataFrame:
    """The turns to route, with what distillation needs: question, gold answer, image ids."""
    failed = context.lake.read(verdicts.CONTRACT).where((F.col("teacher") == "short") & (F.col("verdict") != "correct"))
    rows = context.lake.read(reasoning.CONTRACT).where(F.col("teacher") == "short").join(failed.select(*TURN_KEYS), TURN_KEYS)
    images = context.lake.read(silver_samples.CONTRACT).select("sample_id", "image_ids")
    return rows.join(images, "sample_id").select(*TURN_KEYS, "source", "question", F.col("gold_answer").alias("answer"),
                                                 "image_ids")


def outcomes(verdict_rows: DataFrame, run_id: str) -> DataFrame:
    """One routing outcome per turn the short teacher was verified on."""
    short = verdict_rows.where(F.col("teacher") == "short").select(*TURN_KEYS, "source", F.col("verdict").alias("short_verdict"))
    long = verdict_rows.where(F.col("teacher") == "long").select(*TURN_KEYS, F.col("verdict").alias("long_verdict"))
    joined = short.join(long, TURN_KEYS, "left")
    outcome = (F.when(F.col("short_verdict") == "correct", "short_correct")
               .when(F.col("long_verdict") == "correct", "long_correct")
               .when(F.col("long_verdict").isNotNull(), "failed_both").otherwise("long_pending"))
    chosen = F.when(outcome == "short_correct", "short").when(outcome == "long_correct", "long")
    return joined.select(*TURN_KEYS, "source", outcome.alias("outcome"), chosen.alias("chosen_teacher"), "short_verdict",
                         "long_verdict", F.current_timestamp().alias("routed_at"), F.lit(run_id).alias("run_id"))


def run(context: JobContext, report: StageReport) -> None:
    config = context.config
    verify_pending(context, report)  # short answers distilled since the last verify run
    distil(context, report, failed_short_turns(context), config.route.model, config.route.prompt, "long")
    verify_pending(context, report)  # the long teacher's answers
    verdict_rows = context.lake.read(verdicts.CONTRACT)
    write = context.gate.write(routing.CONTRACT, outcomes(verdict_rows, context.run_id),
                               update_when="NOT (t.outcome <=> s.outcome) OR NOT (t.long_verdict <=> s.long_verdict)",
                               update_set={c: f"s.{c}" for c in ("outcome", "chosen_teacher", "long_verdict", "routed_at", "run_id")})
    report.writes.append(write)
    counted = context.lake.read(routing.CONTRACT).groupBy("outcome").count().collect()
    report.bars["routing_outcomes"] = ("turns", {r["outcome"]: r["count"] for r in counted})
    report.metrics.update({f"routing.{r['outcome']}": r["count"] for r in counted})
    report_verified_rates(report, verdict_rows)


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
