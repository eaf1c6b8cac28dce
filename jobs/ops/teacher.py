"""What the teacher stages share: which turns to work on, what a blind or sighted teacher gets,
the generation UDF, provenance columns, statuses and score parsing."""

from __future__ import annotations

import fnmatch
import itertools
import json
from collections.abc import Callable, Iterator
from enum import StrEnum

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.runtime.stage import JobContext
from schemas import contamination, duplicate_groups, silver_images, silver_samples
from schemas import captions as captions_table
from schemas.generated import TURN_KEYS
from udfs.generation import RESULT_TYPE, GenerationSettings, generate_batches
from udfs.prompts import PromptSpec, scores_frame, scores_problem

_GENERATIONS = itertools.count()  # names each generation's checkpoint


def eligible_turns(context: JobContext) -> DataFrame:
    """(sample_id, source, turn_index, question, answer, image_ids, image_text) of every sample of `teacher.sources`
    that is neither flagged as benchmark contamination nor a non-representative near-duplicate."""
    lake = context.lake
    samples = lake.read(silver_samples.CONTRACT)
    known = [row["source"] for row in samples.select("source").distinct().collect()]  # a partition column: few values
    wanted = [s for s in known if any(fnmatch.fnmatchcase(s, p) for p in context.config.teacher.sources)]
    leaked = lake.read(contamination.CONTRACT).select("sample_id").distinct()
    copies = lake.read(duplicate_groups.CONTRACT).where(~F.col("is_representative")).select("sample_id")
    kept = samples.where(F.col("source").isin(wanted)).join(leaked, "sample_id", "left_anti").join(copies, "sample_id", "left_anti")
    return kept.select("sample_id", "source", "image_ids", "image_text", F.posexplode("turns").alias("turn_index", "turn")).select(
        "sample_id", "source", F.col("turn_index").cast("int"), F.col("turn.user").alias("question"),
        F.col("turn.assistant").alias("answer"), "image_ids", "image_text",
    )


def not_done(turns: DataFrame, done: DataFrame, keys=TURN_KEYS) -> DataFrame:
    """`turns` without a row in `done` (the output table as committed, this job's commits included)."""
    return turns.join(done.select(*keys), list(keys), "left_anti")


def with_visual_inputs(rows: DataFrame, context: JobContext, settings: GenerationSettings,
                       keys: tuple[str, ...] = TURN_KEYS) -> DataFrame:
    """Adds `teacher_blind`, `images` (their bytes when the teacher can see) and `context`: what the
    prompt says of the images as text, i.e. the sample's `image_text` and, when the teacher is
    blind, the images' captions; `caption_used` and `context_used` record what it holds. Rows
    have `image_ids` and `image_text`."""
    keys = list(keys)
    own_text = F.coalesce(F.trim("image_text"), F.lit(""))
    with_count = rows.withColumn("teacher_blind", (F.size("image_ids") > 0) & F.lit(not settings.sees_images))
    refs = rows.select(*keys, F.posexplode("image_ids").alias("position", "image_id"))
    if settings.sees_images:
        images = context.lake.read(silver_images.CONTRACT).select("image_id", "bytes")
        found = refs.join(images, "image_id").groupBy(*keys).agg(
            F.array_sort(F.collect_list(F.struct("position", "bytes"))).alias("parts"))
        return (with_count.join(found, keys, "left")
                .withColumn("images", F.coalesce(F.transform("parts", lambda p: p["bytes"]), F.array().cast("array<binary>")))
                .withColumn("context", own_text).withColumn("caption_used", F.lit(False))
                .withColumn("context_used", F.length("context") > 0).drop("parts"))
    newest = Window.partitionBy("image_id").orderBy(F.col("generated_at").desc())
    captions = (context.lake.read(captions_table.CONTRACT).where(F.col("status") == captions_table.Status.OK)
                .withColumn("n", F.row_number().over(newest)).where("n = 1").select("image_id", "caption"))
    described = refs.join(captions, "image_id").groupBy(*keys).agg(
        F.array_sort(F.collect_list(F.struct("position", "caption"))).alias("parts"))
    text = F.concat_ws("\n", F.transform("parts", lambda p: F.concat(F.lit("Image "), (p["position"] + 1).cast("string"),
                                                                     F.lit(": "), p["caption"])))
    return (with_count.join(described, keys, "left")
            .withColumn("context", F.concat_ws("\n", F.when(F.length(own_text) > 0, own_text), text))
            .withColumn("caption_used", F.col("teacher_blind") & F.col("parts").isNotNull())
            .withColumn("context_used", F.length("context") > 0)
            .withColumn("images", F.array().cast("array<binary>")).drop("parts"))


def generate(frame: DataFrame, context: JobContext, settings: GenerationSettings, prompt: PromptSpec,
             variables: dict[str, Column], unparseable: Callable[[str], str | None] | None = None,
             retries: int = 0, seed_offset: Column | None = None) -> DataFrame:
    """with_generation, checkpointed at once: whatever comes after (a shuffle, the gate) reads the
    stored outputs, so no lost executor makes Spark call the model for a row twice."""
    tasks = context.config.teacher.partitions or context.parallelism
    generated = with_generation(frame, settings, prompt, variables, context.config.teacher.max_input_chars, tasks,
                                unparseable, retries, seed_offset)
    return context.checkpoint(generated, f"generated-{next(_GENERATIONS)}")


def with_generation(frame: DataFrame, settings: GenerationSettings, prompt: PromptSpec, variables: dict[str, Column],
                    max_chars: int, tasks: int, unparseable: Callable[[str], str | None] | None = None,
                    retries: int = 0, seed_offset: Column | None = None) -> DataFrame:
    """`frame` plus `out` (RESULT_TYPE): the prompt rendered over `variables`, sent to the backend
    of `settings` in an iterator pandas UDF (one backend per Python worker) over `tasks` tasks."""
    names = list(variables)

    def build(row: dict, previous: str | None = None, prefill: str | None = None):
        images = row["images"] if row.get("images") is not None else []
        return prompt.request({name: row[name] or "" for name in names}, max_chars, list(images),
                              int(row["seed_offset"]), previous, prefill)

    def batches(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return generate_batches(frames, settings, build, unparseable, retries, prompt.closed if prompt.budget else None)

    inputs = F.struct(*[column.alias(name) for name, column in variables.items()],
                      (F.col("images") if "images" in frame.columns else F.array().cast("array<binary>")).alias("images"),
                      (seed_offset if seed_offset is not None else F.lit(0)).alias("seed_offset"))
    return frame.repartition(tasks).withColumn("out", F.pandas_udf(batches, RESULT_TYPE)(inputs))


def provenance_sampling(settings: GenerationSettings) -> str:
    return json.dumps(settings.sampling(), sort_keys=True)


def provenance(context: JobContext, settings: GenerationSettings, prompt: PromptSpec) -> list[Column]:
    """The generated-row columns of schemas/generated.py, from `out` and the visual-input flags."""
    return [
        F.lit(settings.name).alias("model"),
        F.lit(prompt.label).alias("prompt_version"),
        F.lit(provenance_sampling(settings)).alias("sampling"),
        F.col("out.text").alias("raw_output"),
        F.coalesce("out.tokens_in", F.lit(0)).alias("tokens_in"),
        F.coalesce("out.tokens_out", F.lit(0)).alias("tokens_out"),
        F.col("out.finish_reason").alias("finish_reason"),
        F.coalesce("out.calls", F.lit(0)).alias("calls"),
        F.col("teacher_blind"),
        F.col("caption_used"),
        F.col("context_used"),
        F.current_timestamp().alias("generated_at"),
        F.lit(context.run_id).alias("run_id"),
    ]


def status_and_reason(statuses: type[StrEnum], unparsed: StrEnum, parse_reason: Column) -> tuple[Column, Column]:
    """A generated row's status in its table's vocabulary: FAILED with the backend's error, else
    `unparsed` with the parser's reason, else OK with no reason."""
    error = F.col("out.error")
    status = F.when(error.isNotNull(), statuses.FAILED).when(parse_reason.isNotNull(), unparsed).otherwise(statuses.OK)
    reason = F.when(error.isNotNull(), F.concat(F.lit("generation_failed: "), error)).otherwise(parse_reason)
    return status, reason


def score_parsing(axes: tuple[str, ...]) -> tuple[Callable[[str], str | None], Callable[..., Column]]:
    """(unparseable, parse): the repair check `generate` takes, and the pandas UDF that turns output
    texts into a struct of the axes' scores and a reason (rate's four axes, the judge's score)."""

    def frame(texts: pd.Series) -> pd.DataFrame:
        return scores_frame(texts, axes)

    return scores_problem(axes), F.pandas_udf(frame, ", ".join(f"{a} int" for a in axes) + ", reason string")
