"""distill: every eligible turn -> gold.reasoning (teacher `short`): chain of thought and final answer.

Eligible: samples not flagged as benchmark contamination and not a near-duplicate's dropped
copy. The teacher answers the turn's question with the four-phase reasoning prompt; the row
keeps the reasoning (inside <think>), the final answer, the raw output, tokens in and out, the
finish reason, the model, the prompt version and the sampling parameters. A text-only teacher
gets the images' captions in the prompt and the row says it was blind. Resumable per chunk.
"""

from __future__ import annotations

import sys

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.runtime import teacher
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import reasoning
from udfs.prompts import split_reasoning_frame

STAGE = "distill"
DESCRIPTION = "Distil the short-CoT teacher's reasoning and final answer for every eligible turn."
TURN_KEYS = ["sample_id", "turn_index"]


def reasoning_rows(context: JobContext, chunk: DataFrame, role: str, prompt_name: str, teacher_name: str) -> DataFrame:
    """gold.reasoning rows for a chunk of turns (question, answer, image_ids, visual inputs) by teacher `role`."""
    config = context.config
    settings, prompt = config.teacher_model(role), config.prompts[prompt_name]
    split = F.pandas_udf(split_reasoning_frame, "reasoning string, final_answer string, reason string")
    generated = teacher.generate(chunk, settings, prompt, config.teacher.max_input_chars, teacher.partitions(context),
                                 {"question": F.col("question"), "caption": F.col("caption")})
    generated = generated.withColumn("parsed", split(F.col("out.text")))
    status, reason = teacher.status_and_reason(F.col("out.error"), F.col("parsed.reason"), "malformed")
    return generated.select(
        *TURN_KEYS, "source", F.lit(teacher_name).alias("teacher"), "question", F.col("answer").alias("gold_answer"),
        status.alias("status"), reason.alias("reason"), F.col("parsed.reasoning").alias("reasoning"),
        F.col("parsed.final_answer").alias("final_answer"), *teacher.provenance(context, settings, prompt),
    )


def distil(context: JobContext, report: StageReport, turns: DataFrame, role: str, prompt_name: str, teacher_name: str) -> int:
    """Generate the reasoning of `turns` that teacher `teacher_name` has no row for yet, chunk by chunk."""
    done = context.lake.read_latest(reasoning.CONTRACT).where(F.col("teacher") == teacher_name).select(*TURN_KEYS)
    pending = teacher.with_visual_inputs(context, turns.join(done, TURN_KEYS, "left_anti"),
                                         context.config.teacher_model(role), TURN_KEYS)
    return teacher.write_in_chunks(context, report, reasoning.CONTRACT, pending,
                                   lambda chunk: reasoning_rows(context, chunk, role, prompt_name, teacher_name), TURN_KEYS)


def report_lengths(report: StageReport, rows: DataFrame, teacher_name: str) -> None:
    ours = rows.where(F.col("teacher") == teacher_name)
    report.histogram(f"reasoning_length_{teacher_name}", "reasoning length (characters)", ours,
                     F.coalesce(F.length("reasoning"), F.lit(0)), 100)
    report.histogram(f"tokens_out_{teacher_name}", "tokens out per answer", ours, F.col("tokens_out"), 16)


def run(context: JobContext, report: StageReport) -> None:
    distil(context, report, teacher.eligible_turns(context), context.config.distill.model,
           context.config.distill.prompt, "short")
    report_lengths(report, context.lake.read(reasoning.CONTRACT), "short")


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
