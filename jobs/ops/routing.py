"""HoneyPipe's routing: turns the short teacher got wrong go to the long teacher; every verified
turn gets an outcome (short_correct, long_correct, failed_both, long_pending)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from schemas.generated import TURN_KEYS
from schemas.reasoning import Teacher
from schemas.routing import Outcome
from schemas.verdicts import Verdict


def failed_short_turns(verdicts: DataFrame, reasoning: DataFrame, samples: DataFrame) -> DataFrame:
    """The turns to route, with what distillation needs: question, gold answer, image ids and text."""
    failed = verdicts.where((F.col("teacher") == Teacher.SHORT) & (F.col("verdict") != Verdict.CORRECT))
    rows = reasoning.where(F.col("teacher") == Teacher.SHORT).join(failed.select(*TURN_KEYS), list(TURN_KEYS))
    return rows.join(samples.select("sample_id", "image_ids", "image_text"), "sample_id").select(
        *TURN_KEYS, "source", "question", F.col("gold_answer").alias("answer"), "image_ids", "image_text")


def outcomes(verdicts: DataFrame, run_id: str) -> DataFrame:
    """One routing outcome per turn the short teacher was verified on."""
    short = verdicts.where(F.col("teacher") == Teacher.SHORT).select(*TURN_KEYS, "source",
                                                                     F.col("verdict").alias("short_verdict"))
    long = verdicts.where(F.col("teacher") == Teacher.LONG).select(*TURN_KEYS, F.col("verdict").alias("long_verdict"))
    outcome = (F.when(F.col("short_verdict") == Verdict.CORRECT, Outcome.SHORT_CORRECT)
               .when(F.col("long_verdict") == Verdict.CORRECT, Outcome.LONG_CORRECT)
               .when(F.col("long_verdict").isNotNull(), Outcome.FAILED_BOTH).otherwise(Outcome.LONG_PENDING))
    chosen = F.when(outcome == Outcome.SHORT_CORRECT, Teacher.SHORT).when(outcome == Outcome.LONG_CORRECT, Teacher.LONG)
    return short.join(long, list(TURN_KEYS), "left").select(
        *TURN_KEYS, "source", outcome.alias("outcome"), chosen.alias("chosen_teacher"), "short_verdict", "long_verdict",
        F.current_timestamp().alias("routed_at"), F.lit(run_id).alias("run_id"))


# A stored outcome changes when the long teacher's verdict arrives.
OUTCOME_CHANGED = {
    "update_when": "NOT (t.outcome <=> s.outcome) OR NOT (t.long_verdict <=> s.long_verdict)",
    "update_set": {c: f"s.{c}" for c in ("outcome", "chosen_teacher", "long_verdict", "routed_at", "run_id")},
}
