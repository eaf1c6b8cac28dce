"""gold.verdicts rows: is a teacher's final answer right? By rule where the gold answer allows it
(udfs/answers.py: multiple choice, numbers with units, fractions, percentages, yes/no), else by
the answer-fidelity judge, whose 1-5 score counts as correct at `verify.judge_pass` or more."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ops.teacher import generate, score_parsing
from jobs.runtime.stage import JobContext, StageReport
from schemas.reasoning import KEYS, Status
from schemas.verdicts import JUDGE_AXES, Method, Verdict
from udfs.answers import NEEDS_JUDGE, check_frame


def verdict_rows(answers: DataFrame, context: JobContext) -> DataFrame:
    """Verdicts for gold.reasoning rows: the rule first, the judge for what it leaves."""
    config = context.config
    rule = F.pandas_udf(check_frame, "verdict string, reason string")
    answer = F.when(F.col("status") != Status.FAILED, F.coalesce("final_answer", "raw_output"))
    ruled = context.checkpoint(answers.withColumn("rule", rule(answer, F.col("gold_answer"), F.col("question"))), "ruled")
    common = [*KEYS, "source", "model"]
    timestamps = [F.current_timestamp().alias("verified_at"), F.lit(context.run_id).alias("run_id")]
    no_answer = F.col("rule.reason") == "no_answer"
    by_rule = ruled.where(F.col("rule.verdict") != NEEDS_JUDGE).select(
        *common, F.col("rule.verdict").alias("verdict"),
        F.when(no_answer, Method.NONE).otherwise(Method.RULE).alias("method"),
        F.when(no_answer, F.coalesce("reason", F.lit("no_answer"))).otherwise(F.col("rule.reason")).alias("reason"),
        *[F.lit(None).cast(t).alias(c) for c, t in (("judge_model", "string"), ("judge_prompt_version", "string"),
                                                    ("judge_score", "int"), ("judge_output", "string"))],
        F.lit(0).alias("judge_calls"), *timestamps,
    )
    settings, prompt = config.teacher_model(config.verify.judge), config.prompts[config.verify.prompt]
    unparseable, scores = score_parsing(JUDGE_AXES)
    judged = generate(
        ruled.where(F.col("rule.verdict") == NEEDS_JUDGE), context, settings, prompt,
        {"question": F.col("question"), "reference": F.col("gold_answer"), "response": F.col("final_answer")},
        unparseable=unparseable, retries=config.verify.retries,
    ).withColumn("judgement", scores(F.col("out.text")))
    score, error = F.col("judgement.score"), F.col("out.error")
    by_judge = judged.select(
        *common,
        F.when(error.isNotNull() | score.isNull(), Verdict.UNVERIFIED)
        .when(score >= config.verify.judge_pass, Verdict.CORRECT).otherwise(Verdict.INCORRECT).alias("verdict"),
        F.lit(Method.JUDGE).alias("method"),
        F.when(error.isNotNull(), F.concat(F.lit("judge_failed: "), error))
        .when(score.isNull(), F.concat(F.lit("judge_unparseable: "), F.col("judgement.reason")))
        .otherwise(F.concat(F.lit("judge_score_"), score.cast("string"))).alias("reason"),
        F.lit(settings.name).alias("judge_model"), F.lit(prompt.label).alias("judge_prompt_version"),
        score.alias("judge_score"), F.col("out.text").alias("judge_output"),
        F.coalesce("out.calls", F.lit(0)).alias("judge_calls"), *timestamps,
    )
    return by_rule.unionByName(by_judge)


def unverified(answers: DataFrame, verdicts: DataFrame) -> DataFrame:
    """The reasoning rows without a verdict."""
    return answers.join(verdicts.select(*KEYS), list(KEYS), "left_anti")


def report_verified_rates(report: StageReport, rows: DataFrame) -> None:
    """Share of correct verdicts per source and per teacher."""
    correct = F.avg((F.col("verdict") == Verdict.CORRECT).cast("double"))
    for column in ("source", "teacher"):
        for row in rows.groupBy(column).agg(correct.alias("rate")).collect():
            report.metrics[f"verified_rate.{column}.{row[column]}"] = row["rate"]
    methods = rows.groupBy("method", "verdict").count().collect()
    report.bars["verdicts"] = ("verdicts by method", {f"{r['method']}:{r['verdict']}": r["count"] for r in methods})
