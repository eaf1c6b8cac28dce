"""gold.difficulty rows: a small model's pass rate over k answers per question, and the subsets.

Each final answer is checked by rule against the dataset's answer (udfs/answers.py): pass rate =
correct / checkable answers; a free-form gold answer is `unverifiable`. The selection
(MMFineReason): questions with a pass rate of at least `drop_pass_rate_at_least` are in no
subset; of the rest, each subset holds the hardest fraction (lowest pass rate; ties split by a
hash of the key, so the fractions are exact and stable).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ops.teacher import generate, provenance_sampling
from jobs.runtime.stage import JobContext
from schemas.difficulty import Status
from schemas.generated import TURN_KEYS, FinishReason
from udfs.answers import CORRECT, NEEDS_JUDGE, UNVERIFIED, check_frame
from udfs.prompts import reasoning_problem, split_reasoning_frame

QUANTILE_ERROR = 1e-4  # approxQuantile: distributed, exact enough for subset boundaries


def difficulty_rows(turns: DataFrame, context: JobContext) -> DataFrame:
    config = context.config
    settings, prompt = config.teacher_model(config.difficulty.model), config.prompts[config.difficulty.prompt]
    k = config.difficulty.samples
    attempts = turns.withColumn("attempt", F.explode(F.sequence(F.lit(0), F.lit(k - 1))))
    split = F.pandas_udf(split_reasoning_frame, "reasoning string, final_answer string, reason string")
    check = F.pandas_udf(check_frame, "verdict string, reason string")
    generated = generate(attempts, context, settings, prompt, {"question": F.col("question"), "context": F.col("context")},
                         unparseable=reasoning_problem, seed_offset=F.col("attempt"))
    answered = generated.withColumn("final", split(F.col("out.text"))["final_answer"]).withColumn(
        "check", check(F.when(F.col("out.error").isNull(), F.col("final")), F.col("answer"), F.col("question")))
    checkable = F.col("out.error").isNull() & ~F.col("check.verdict").isin(NEEDS_JUDGE, UNVERIFIED)
    grouped = answered.groupBy(*TURN_KEYS, "source", "teacher_blind", "caption_used", "context_used").agg(
        F.array_sort(F.collect_list(F.struct("attempt", "final", F.col("out.text").alias("text"),
                                             F.col("out.finish_reason").alias("finish")))).alias("tries"),
        F.sum(checkable.cast("int")).cast("int").alias("checked"),
        F.sum((checkable & (F.col("check.verdict") == CORRECT)).cast("int")).cast("int").alias("passes"),
        F.sum(F.col("out.error").isNotNull().cast("int")).cast("int").alias("errors"),
        F.first("out.error", ignorenulls=True).alias("an_error"),
        F.sum(F.coalesce("out.tokens_in", F.lit(0))).cast("int").alias("tokens_in"),
        F.sum(F.coalesce("out.tokens_out", F.lit(0))).cast("int").alias("tokens_out"),
        F.sum(F.coalesce("out.calls", F.lit(0))).cast("int").alias("calls"),
    )
    finishes = F.transform("tries", lambda t: t["finish"])
    status = F.when(F.col("errors") == k, Status.FAILED).when(F.col("checked") == 0, Status.UNVERIFIABLE).otherwise(Status.OK)
    reason = (F.when(F.col("errors") == k, F.concat(F.lit("generation_failed: "), F.col("an_error")))
              .when(F.col("checked") == 0, F.lit("free_form_gold_answer")))
    return grouped.select(
        *TURN_KEYS, "source", status.alias("status"), reason.alias("reason"), F.lit(k).alias("k"), "checked", "passes",
        F.when(F.col("checked") > 0, F.col("passes") / F.col("checked")).alias("pass_rate"),
        F.transform("tries", lambda t: t["final"]).alias("answers"), F.array().cast("array<string>").alias("subsets"),
        F.lit(settings.name).alias("model"), F.lit(prompt.label).alias("prompt_version"),
        F.lit(provenance_sampling(settings)).alias("sampling"),
        F.to_json(F.transform("tries", lambda t: t["text"])).alias("raw_output"), "tokens_in", "tokens_out",
        F.when(F.array_contains(finishes, FinishReason.ERROR), FinishReason.ERROR)
        .when(F.array_contains(finishes, FinishReason.LENGTH), FinishReason.LENGTH)
        .otherwise(FinishReason.STOP).alias("finish_reason"),
        "calls", "teacher_blind", "caption_used", "context_used", F.current_timestamp().alias("generated_at"),
        F.lit(context.run_id).alias("run_id"),
    )


def with_subsets(rows: DataFrame, drop_at: float, subsets: dict[str, float]) -> DataFrame:
    """`subsets` per row: the hardest fraction of the questions below `drop_at`, for each named fraction.

    Order: pass rate, then a hash of the key (ties); the boundaries come from approxQuantile, so
    nothing is sorted in one place.
    """
    eligible = (F.col("status") == Status.OK) & (F.col("pass_rate") < drop_at)
    unit_hash = (F.abs(F.xxhash64(*TURN_KEYS, "model", "prompt_version")) % 1_000_000) / 1_000_000.0
    ordered = rows.withColumn("order_key", F.when(eligible, F.col("pass_rate") + 1e-3 * unit_hash))
    names, fractions = list(subsets), [subsets[n] for n in subsets]
    bounds = ordered.approxQuantile("order_key", fractions, QUANTILE_ERROR) if names else []
    members = [F.when(F.col("order_key") <= bound, F.lit(name)) for name, bound in zip(names, bounds)]
    chosen = F.filter(F.array(*members), lambda n: n.isNotNull()) if members else F.array().cast("array<string>")
    return ordered.withColumn("subsets", chosen.cast("array<string>")).drop("order_key")


# Subsets are recomputed as new questions arrive; a row whose subsets change is updated.
SUBSETS_CHANGED = {"update_when": "NOT (t.subsets <=> s.subsets)", "update_set": {"subsets": "s.subsets"}}
