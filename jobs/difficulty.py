"""difficulty: every eligible turn -> gold.difficulty: a small model's pass rate, and subsets.

The small model (`difficulty.model`, sampling at its temperature) answers each question
`difficulty.samples` (k) times, each answer checked by rule (jobs/ops/difficulty.py). Subsets
(`difficulty.subsets`: the hardest fractions of the questions below `drop_pass_rate_at_least`)
are recomputed over the table on every run, as new questions arrive; only rows whose subsets
change are written.
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from jobs.ops.commits import commit_pending
from jobs.ops.difficulty import SUBSETS_CHANGED, difficulty_rows, with_subsets
from jobs.ops.teacher import eligible_turns, not_done, with_visual_inputs
from jobs.runtime.gate import Batch
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import difficulty

STAGE = "difficulty"
DESCRIPTION = "Sample k answers per question from the small model, record the pass rate, select difficulty subsets."


def run(context: JobContext, report: StageReport) -> None:
    config, lake = context.config, context.lake
    settings, prompt = config.teacher_model(config.difficulty.model), config.prompts[config.difficulty.prompt]
    ours = (F.col("model") == settings.name) & (F.col("prompt_version") == prompt.label)
    pending = (eligible_turns(context).transform(not_done, lake.read_current(difficulty.CONTRACT).where(ours))
               .transform(with_visual_inputs, context, settings))
    commit_pending(context, report, difficulty.CONTRACT, pending, lambda turns: difficulty_rows(turns, context))
    stored = lake.read_current(difficulty.CONTRACT).where(ours).withColumn("stored_subsets", F.col("subsets"))
    selected = with_subsets(stored, config.difficulty.drop_pass_rate_at_least, config.difficulty.subsets)
    changed = selected.where(~F.col("subsets").eqNullSafe(F.col("stored_subsets")))
    report.writes += context.gate.commit(Batch(difficulty.CONTRACT, changed, **SUBSETS_CHANGED))
    current = lake.read_current(difficulty.CONTRACT).where(ours)
    report.histogram("pass_rate", "pass rate (%)", current.where(F.col("pass_rate").isNotNull()),
                     F.round(F.col("pass_rate") * 100), 10)
    sizes = current.select(F.explode("subsets").alias("subset")).groupBy("subset").count().collect()
    report.bars["subsets"] = ("questions", {r["subset"]: r["count"] for r in sizes})
    report.metrics.update({f"subset.{r['subset']}": r["count"] for r in sizes})


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
