"""gold.reasoning rows: a teacher's chain of thought and final answer per turn (distill: short; route: long)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ops.teacher import generate, provenance, status_and_reason
from jobs.runtime.stage import JobContext, StageReport
from schemas.generated import TURN_KEYS
from schemas.reasoning import Status, Teacher
from udfs.prompts import reasoning_problem, split_reasoning_frame


def reasoning_rows(turns: DataFrame, context: JobContext, role: str, prompt_name: str, teacher: Teacher) -> DataFrame:
    """Rows for turns (question, answer, image_ids, visual inputs) answered by the model of `role`."""
    config = context.config
    settings, prompt = config.teacher_model(role), config.prompts[prompt_name]
    split = F.pandas_udf(split_reasoning_frame, "reasoning string, final_answer string, reason string")
    generated = generate(turns, context, settings, prompt, {"question": F.col("question"), "context": F.col("context")},
                         unparseable=reasoning_problem)
    generated = generated.withColumn("parsed", split(F.col("out.text")))
    status, reason = status_and_reason(Status, Status.MALFORMED, F.col("parsed.reason"))
    return generated.select(
        *TURN_KEYS, "source", F.lit(teacher).alias("teacher"), "question", F.col("answer").alias("gold_answer"),
        status.alias("status"), reason.alias("reason"), F.col("parsed.reasoning").alias("reasoning"),
        F.col("parsed.final_answer").alias("final_answer"), *provenance(context, settings, prompt),
    )


def report_reasoning(report: StageReport, rows: DataFrame, teacher: Teacher) -> None:
    """This run's rows of `teacher`: how many are well formed (a bar per status), how many prompts held
    the images' content as text, and the distributions of reasoning length and tokens out."""
    ours = rows.where(F.col("teacher") == teacher)
    counted = ours.groupBy("status").agg(F.count("*").alias("n"), F.sum(F.col("context_used").cast("int")).alias("context"))
    counts = counted.collect()
    by_status = {r["status"]: r["n"] for r in counts}
    report.bars[f"reasoning_status_{teacher}"] = ("turns", by_status)
    report.metrics.update({f"reasoning.{teacher}.{status}": n for status, n in by_status.items()})
    report.metrics[f"reasoning.{teacher}.context_used"] = sum(r["context"] or 0 for r in counts)
    report.histogram(f"reasoning_length_{teacher}", "reasoning length (characters)", ours,
                     F.coalesce(F.length("reasoning"), F.lit(0)), 100)
    report.histogram(f"tokens_out_{teacher}", "tokens out per answer", ours, F.col("tokens_out"), 16)
