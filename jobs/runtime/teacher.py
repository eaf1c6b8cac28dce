"""What the teacher stages share: which turns to work on, prompt inputs, the generation UDF, and
resumable chunked writes.

Resumability: the pending rows (inputs without an output row in the table's latest version,
published or not) are split into chunks of `teacher.chunk_rows` by a hash of their keys; each
chunk is generated, checkpointed and MERGEd as its own Delta commit. A run killed mid-way keeps
every committed chunk and the next run generates only what is missing. The quality gate then
validates the table's latest version once and publishes it, so readers see only checked data.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import time
from collections.abc import Callable, Iterator

import pandas as pd

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.runtime.stage import JobContext, StageReport, tally
from schemas import contamination, duplicate_groups, silver_images, silver_samples
from schemas import captions as captions_table
from schemas.contract import TableContract
from udfs.generation import RESULT_TYPE, GenerationSettings, generate_batches
from udfs.prompts import PromptSpec, parse_scores, scores_frame

log = logging.getLogger("finelake")
GENERATION_TOTALS = ("tokens_in", "tokens_out", "calls", "judge_calls")


def eligible_turns(context: JobContext) -> DataFrame:
    """(sample_id, source, turn_index, question, answer, image_ids) of every sample of `teacher.sources`
    that is neither flagged as benchmark contamination nor a non-representative near-duplicate."""
    lake = context.lake
    samples = lake.read(silver_samples.CONTRACT)
    known = [row["source"] for row in samples.select("source").distinct().collect()]  # a partition column: few values
    wanted = [s for s in known if any(fnmatch.fnmatchcase(s, p) for p in context.config.teacher.sources)]
    samples = samples.where(F.col("source").isin(wanted))
    leaked = lake.read(contamination.CONTRACT).select("sample_id").distinct()
    copies = lake.read(duplicate_groups.CONTRACT).where(~F.col("is_representative")).select("sample_id")
    kept = samples.join(leaked, "sample_id", "left_anti").join(copies, "sample_id", "left_anti")
    return kept.select("sample_id", "source", "image_ids", F.posexplode("turns").alias("turn_index", "turn")).select(
        "sample_id", "source", F.col("turn_index").cast("int"), F.col("turn.user").alias("question"),
        F.col("turn.assistant").alias("answer"), "image_ids",
    )


def with_visual_inputs(context: JobContext, rows: DataFrame, settings: GenerationSettings, keys: list[str]) -> DataFrame:
    """Adds `teacher_blind`, `caption_used`, `caption` (the images' captions when the teacher is
    blind, else "") and `images` (their bytes when it can see) to rows with `image_ids`."""
    with_count = rows.withColumn("teacher_blind", (F.size("image_ids") > 0) & F.lit(not settings.sees_images))
    refs = rows.select(*keys, F.posexplode("image_ids").alias("position", "image_id"))
    if settings.sees_images:
        images = context.lake.read(silver_images.CONTRACT).select("image_id", "bytes")
        found = refs.join(images, "image_id").groupBy(*keys).agg(
            F.array_sort(F.collect_list(F.struct("position", "bytes"))).alias("parts"))
        return (with_count.join(found, keys, "left")
                .withColumn("images", F.coalesce(F.transform("parts", lambda p: p["bytes"]), F.array().cast("array<binary>")))
                .withColumn("caption", F.lit("")).withColumn("caption_used", F.lit(False)).drop("parts"))
    newest = Window.partitionBy("image_id").orderBy(F.col("generated_at").desc())
    captions = (context.lake.read(captions_table.CONTRACT).where(F.col("status") == "ok")
                .withColumn("n", F.row_number().over(newest)).where("n = 1").select("image_id", "caption"))
    described = refs.join(captions, "image_id").groupBy(*keys).agg(
        F.array_sort(F.collect_list(F.struct("position", "caption"))).alias("parts"))
    text = F.concat_ws("\n", F.transform("parts", lambda p: F.concat(F.lit("Image "), (p["position"] + 1).cast("string"),
                                                                     F.lit(": "), p["caption"])))
    return (with_count.join(described, keys, "left")
            .withColumn("caption", F.coalesce(text, F.lit("")))
            .withColumn("caption_used", F.col("teacher_blind") & F.col("parts").isNotNull())
            .withColumn("images", F.array().cast("array<binary>")).drop("parts"))


def generate(frame: DataFrame, settings: GenerationSettings, prompt: PromptSpec, max_chars: int, partitions: int,
             variables: dict[str, Column], unparseable: Callable[[str], str | None] | None = None,
             retries: int = 0, seed_offset: Column | None = None) -> DataFrame:
    """`frame` plus `out` (RESULT_TYPE): the prompt rendered over `variables`, sent to the backend
    of `settings` in an iterator pandas UDF (one backend per Python worker)."""
    names = list(variables)

    def build(row: dict, previous: str | None):
        images = row["images"] if row.get("images") is not None else []
        return prompt.request({name: row[name] or "" for name in names}, max_chars, list(images),
                              int(row["seed_offset"]), previous)

    def batches(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        return generate_batches(frames, settings, build, unparseable, retries)

    inputs = F.struct(*[column.alias(name) for name, column in variables.items()],
                      (F.col("images") if "images" in frame.columns else F.array().cast("array<binary>")).alias("images"),
                      (seed_offset if seed_offset is not None else F.lit(0)).alias("seed_offset"))
    return frame.repartition(partitions).withColumn("out", F.pandas_udf(batches, RESULT_TYPE)(inputs))


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
        F.current_timestamp().alias("generated_at"),
        F.lit(context.run_id).alias("run_id"),
    ]


def partitions(context: JobContext) -> int:
    return context.config.teacher.partitions or context.spark.sparkContext.defaultParallelism


def write_in_chunks(context: JobContext, report: StageReport, contract: TableContract, pending: DataFrame,
                    produce: Callable[[DataFrame], DataFrame], chunk_keys: list[str], label: str = "source",
                    outcome: Column | None = None, publish: bool = True) -> int:
    """Generate and MERGE `pending` chunk by chunk (one Delta commit each), then gate the table once.

    `produce` turns a chunk of pending rows into table rows; the report counts them per `label`
    column as kept, or under `outcome` (default: the row's status when it is not ok). Returns
    the rows written this run.
    """
    teacher = context.config.teacher
    chunk_rows = teacher.chunk_rows
    outcome = outcome if outcome is not None else F.when(F.col("status") != "ok", F.col("status"))
    pending = pending.localCheckpoint()
    total = pending.count()
    chunks = max(1, math.ceil(total / chunk_rows))
    todo = min(chunks, teacher.max_chunks) if teacher.max_chunks else chunks
    numbered = pending.withColumn("chunk", F.pmod(F.xxhash64(*chunk_keys), F.lit(chunks)))
    written, started = 0, time.monotonic()
    totals = dict.fromkeys(GENERATION_TOTALS, 0)
    if total:
        log.info("%s: %d pending rows in %d chunks of ~%d; this run: %d", contract.logical_name, total, chunks, chunk_rows, todo)
    committed = 0
    for chunk in range(chunks if total else 0):
        if committed == todo:
            break
        rows = produce(numbered.where(F.col("chunk") == chunk).drop("chunk")).localCheckpoint()
        sums = [F.sum(c).alias(c) for c in GENERATION_TOTALS if c in rows.columns]
        stats = rows.agg(F.count(F.lit(1)).alias("rows"), *sums).first().asDict()
        if not stats["rows"]:  # hash chunks of a few rows can be empty; they do not count against max_chunks
            continue
        committed += 1
        tally(report, [], rows.select(F.col(label).alias("source")),
              rows.select(F.col(label).alias("source"), outcome.alias("reason")))
        context.lake.merge(contract, rows)
        written += stats["rows"]
        for name in totals:
            totals[name] += stats.get(name) or 0
        elapsed = time.monotonic() - started
        log.info("%s: chunk %d/%d committed: %d rows (%d of %d this run), %d tokens out, %.2f rows/s",
                 contract.logical_name, committed, todo, stats["rows"], written, total, totals["tokens_out"], written / elapsed)
    elapsed = time.monotonic() - started
    prefix = contract.name
    report.metrics.update({f"{prefix}.pending": total, f"{prefix}.written": written, f"{prefix}.chunks": committed if total else 0,
                           f"{prefix}.left_for_next_run": total - written, f"{prefix}.seconds": round(elapsed, 3)})
    report.metrics.update({f"{prefix}.{name}": value for name, value in totals.items() if value})
    if written and elapsed > 0:
        report.metrics[f"{prefix}.rows_per_s"] = written / elapsed
        report.metrics[f"{prefix}.tokens_per_s"] = totals["tokens_out"] / elapsed
    if publish:
        publish_latest(context, contract)
    return written


def publish_latest(context: JobContext, contract: TableContract) -> None:
    """Gate the newest data version when it is not published yet (this run's chunks, or a killed run's)."""
    latest = context.lake.latest_data_version(contract)
    if latest > context.lake.published_version(contract):
        context.gate.check(contract, latest)


def status_and_reason(error: Column, parse_reason: Column, unparsed: str) -> tuple[Column, Column]:
    """`failed` with the backend's error, else `unparsed` with the parser's reason, else ok (reason null)."""
    status = F.when(error.isNotNull(), "failed").when(parse_reason.isNotNull(), unparsed).otherwise("ok")
    reason = F.when(error.isNotNull(), F.concat(F.lit("generation_failed: "), error)).otherwise(parse_reason)
    return status, reason



def score_parsing(axes: tuple[str, ...]) -> tuple[Callable[[str], str | None], Callable[..., Column]]:
    """(unparseable, parse): the repair check `generate` takes, and the pandas UDF that turns output
    texts into a struct of the axes' scores and a reason (rate's four axes, the judge's score)."""

    def unparseable(text: str) -> str | None:
        return parse_scores(text, axes)[1]

    def frame(texts: pd.Series) -> pd.DataFrame:
        return scores_frame(texts, axes)

    return unparseable, F.pandas_udf(frame, ", ".join(f"{a} int" for a in axes) + ", reason string")
