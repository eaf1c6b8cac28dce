"""verify: gold.reasoning -> gold.verdicts: is each final answer right?

By rule where the gold answer allows it (udfs/answers.py: multiple choice, numbers with units,
separators, fractions and percentages, yes/no); free-form answers go to the answer-fidelity
judge (teacher role `verify.judge`, prompt `verify.prompt`), whose 1-5 score counts as correct
at `verify.judge_pass` or more. An unparseable judgement gets `verify.retries` repair requests,
then the verdict is `unverified` with the parser's reason. Every row gets a verdict and a reason.
"""

from __future__ import annotations

import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.runtime import teacher
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import reasoning, verdicts
from udfs.answers import NEEDS_JUDGE, check_frame

STAGE = "verify"
DESCRIPTION = "Verify every distilled final answer: by rule where possible, else by the fidelity judge."
KEYS = ["sample_id", "turn_index", "teacher"]
JUDGE_AXES = ("score",)


def verdict_rows(context: JobContext, chunk: DataFrame) -> DataFrame:
    """Verdicts for a chunk of gold.reasoning rows: the rule first, the judge for what it leaves."""
    config = context.config
    rule = F.pandas_udf(check_frame, "verdict string, reason string")
    answer = F.when(F.col("status") != "failed", F.coalesce("final_answer", "raw_output"))
    ruled = chunk.withColumn("rule", rule(answer, F.col("gold_answer"), F.col("question"))).localCheckpoint()
    common = [*KEYS, "source", "model"]
    timestamps = [F.current_timestamp().alias("verified_at"), F.lit(context.run_id).alias("run_id")]
    by_rule = ruled.where(F.col("rule.verdict") != NEEDS_JUDGE).select(
        *common, F.col("rule.verdict").alias("verdict"),
        F.when(F.col("rule.reason") == "no_answer", "none").otherwise("rule").alias("method"),
        F.when(F.col("rule.reason") == "no_answer", F.coalesce("reason", F.lit("no_answer")))
        .otherwise(F.col("rule.reason")).alias("reason"),
        *[F.lit(None).cast(t).alias(c) for c, t in (("judge_model", "string"), ("judge_prompt_version", "string"),
                                                    ("judge_score", "int"), ("judge_output", "string"))],
        F.lit(0).alias("judge_calls"), *timestamps,
    )
    settings, prompt = config.teacher_model(config.verify.judge), config.prompts[config.verify.prompt]
    unparseable, scores = teacher.score_parsing(JUDGE_AXES)
    judged = teacher.generate(
        ruled.where(F.col("rule.verdict") == NEEDS_JUDGE), settings, prompt, config.teacher.max_input_chars,
        teacher.partitions(context),
        {"question": F.col("question"), "reference": F.col("gold_answer"), "response": F.col("final_answer")},
        unparseable=unparseable, retries=config.verify.retries,
    ).withColumn("judgement", scores(F.col("out.text")))
    score = F.col("judgement.score")
    by_judge = judged.select(
        *common,
        F.when(F.col("out.error").isNotNull() | score.isNull(), "unverified")
        .when(score >= config.verify.judge_pass, "correct").otherwise("incorrect").alias("verdict"),
        F.lit("judge").alias("method"),
        F.when(F.col("out.error").isNotNull(), F.concat(F.lit("judge_failed: "), F.col("out.error")))
        .when(score.isNull(), F.concat(F.lit("judge_unparseable: "), F.col("judgement.reason")))
        .otherwise(F.concat(F.lit("judge_score_"), score.cast("string"))).alias("reason"),
        F.lit(settings.name).alias("judge_model"), F.lit(prompt.label).alias("judge_prompt_version"),
        score.alias("judge_score"), F.col("out.text").alias("judge_output"),
        F.coalesce("out.calls", F.lit(0)).alias("judge_calls"), *timestamps,
    )
    return by_rule.unionByName(by_judge)


def verify_pending(context: JobContext, report: StageReport) -> int:
    """Verdicts for every published gold.reasoning row that has none yet (short and long teachers)."""
    done = context.lake.read_latest(verdicts.CONTRACT).select(*KEYS)
    pending = context.lake.read(reasoning.CONTRACT).join(done, KEYS, "left_anti")
    return teacher.write_in_chunks(context, report, verdicts.CONTRACT, pending, lambda chunk: verdict_rows(context, chunk),
                                   KEYS, outcome=F.when(F.col("verdict") != "correct", F.col("verdict")))


def report_verified_rates(report: StageReport, rows: DataFrame) -> None:
    """Share of correct verdicts per source and per teacher, over the published table."""
    correct = F.avg((F.col("verdict") == "correct").cast("double"))
    for column in ("source", "teacher"):
        for row in rows.groupBy(column).agg(correct.alias("rate")).collect():
            report.metrics[f"verified_rate.{column}.{row[column]}"] = row["rate"]
    methods = rows.groupBy("method", "verdict").count().collect()
    report.bars["verdicts"] = ("verdicts by method", {f"{r['method']}:{r['verdict']}": r["count"] for r in methods})


def run(context: JobContext, report: StageReport) -> None:
    verify_pending(context, report)
    report_verified_rates(report, context.lake.read(verdicts.CONTRACT))


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
