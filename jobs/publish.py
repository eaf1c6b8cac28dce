"""publish: the curation tables -> gold.curated by `publish.policy`, gold.curation_decisions, SQL views.

The policy (jobs/ops/curation.py) leaves out non-representative near-duplicates, samples flagged
for the benchmarks it names, turns rated below its minimum per axis and (as it says) turns or
samples neither teacher verified; a verified turn carries its chosen teacher's `<think>...</think>`
and answer, and every sample its difficulty subsets. Every sample or turn left out has a decision
row with its rule and evidence; per source, samples in = curated + left out. A policy decides
over the whole corpus (a new duplicate group or benchmark changes old rows), so publish reads every
published source; it commits only the rows whose content, policy or decision changed, and
removes the rows and decisions that no longer hold in the same commit.
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from jobs.ops.curation import CURATED_CHANGED, DECISION_CHANGED, CurationInputs, curate, outcomes_of, pattern_match
from jobs.ops.rejects import every_column
from jobs.runtime.gate import Batch
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import (contamination, curated, curation_decisions, difficulty, duplicate_groups, reasoning, routing,
                     silver_samples, turn_ratings)
from schemas.views import VIEWS

STAGE = "publish"
DESCRIPTION = "Apply publish.policy: gold.curated (what to train on), gold.curation_decisions (what was left out, why), views."


def run(context: JobContext, report: StageReport) -> None:
    lake, settings = context.lake, context.config.publish
    in_scope = pattern_match("source", settings.sources)
    samples = lake.read(silver_samples.CONTRACT).where(in_scope)
    inputs = CurationInputs(samples, *(lake.read(c.CONTRACT) for c in (duplicate_groups, contamination, turn_ratings,
                                                                         routing, reasoning, difficulty)))
    decided = curate(inputs, settings.policy, context.run_id, dict(lake.reads))
    rows = context.checkpoint(decided.curated, "curated")
    decisions = context.checkpoint(decided.decisions, "decisions")
    report.tally(samples, outcomes_of(samples, decisions))

    def stale(contract, fresh):
        keys = contract.match_columns
        return lake.read_current(contract).where(in_scope).select(*keys).join(fresh.select(*keys), keys, "left_anti")

    report.writes += context.gate.commit(
        Batch(curated.CONTRACT, rows, update_when=CURATED_CHANGED, update_set=every_column(curated.CONTRACT),
              remove=stale(curated.CONTRACT, rows)),
        Batch(curation_decisions.CONTRACT, decisions, update_when=DECISION_CHANGED,
              update_set=every_column(curation_decisions.CONTRACT), remove=stale(curation_decisions.CONTRACT, decisions)),
    )
    for view in VIEWS:
        context.spark.sql(f"CREATE OR REPLACE VIEW {lake.schema_name(view.layer)}.{view.name} "
                          f"COMMENT '{view.description}' AS {view.sql(lake.schema_name)}")
    by_rule = {f"{r['scope']}: {r['rule']}": r["count"] for r in decisions.groupBy("scope", "rule").count().collect()}
    report.bars["left_out"] = ("samples or turns left out, by rule", by_rule)
    report.metrics.update({f"left_out.{k.replace(': ', '.')}": v for k, v in by_rule.items()})
    report.metrics["curated_turns"] = rows.select(F.sum(F.size("turns"))).first()[0] or 0
    report.histogram("turns_per_sample", "turns per curated sample", rows, F.size("turns"), width=1)


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
