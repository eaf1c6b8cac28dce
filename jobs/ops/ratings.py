"""gold.turn_ratings rows: FineVision's four 1-5 ratings of a turn, or the parser's reason code."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ops.teacher import generate, provenance, score_parsing, status_and_reason
from jobs.runtime.stage import JobContext
from schemas.generated import TURN_KEYS
from schemas.turn_ratings import AXES, Status


def rating_rows(turns: DataFrame, context: JobContext) -> DataFrame:
    config = context.config
    settings, prompt = config.teacher_model(config.rate.model), config.prompts[config.rate.prompt]
    unparseable, scores = score_parsing(AXES)
    generated = generate(
        turns, context, settings, prompt,
        {"question": F.col("question"), "answer": F.col("answer"), "context": F.col("context")},
        unparseable=unparseable, retries=config.rate.retries,
    ).withColumn("scores", scores(F.col("out.text")))
    status, reason = status_and_reason(Status, Status.UNPARSEABLE, F.col("scores.reason"))
    return generated.select(*TURN_KEYS, "source", status.alias("status"), reason.alias("reason"),
                            *[F.col(f"scores.{a}").alias(a) for a in AXES], *provenance(context, settings, prompt))
