"""Teacher work committed as it is done, sized for a cluster: what a killed run loses is one commit.

The pending rows (inputs without an output row) are found once per run and staged to scratch
with their place (Spark partition, row) so that any slice of them is read back without
recomputing the search. Commits then take consecutive slices: the first `FIRST_ROWS_PER_CORE`
rows per core, each next one sized from the measured rate to take `teacher.commit_seconds`,
never more than `teacher.commit_rows`. Each slice is generated (the outputs checkpointed as
they come), audited and appended as one Delta commit. A run stopped at any point keeps every
commit before it; the next run finds only what is missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.runtime.gate import Batch
from jobs.runtime.stage import JobContext, StageReport
from schemas.contract import TableContract

log = logging.getLogger("finelake")
GENERATION_TOTALS = ("tokens_in", "tokens_out", "calls", "judge_calls")
FIRST_ROWS_PER_CORE = 32


@dataclass(frozen=True)
class Part:
    part: int
    first_row: int
    rows: int


def slices(parts: list[Part], start: int, size: int) -> list[tuple[int, int, int]]:
    """(part, first row id, end row id) covering positions [start, start + size) of the staged rows in order."""
    found, offset = [], 0
    for part in parts:
        low, high = max(start, offset), min(start + size, offset + part.rows)
        if low < high:
            found.append((part.part, part.first_row + low - offset, part.first_row + high - offset))
        offset += part.rows
    return found


def next_size(done: int, seconds: float, commit_rows: int, commit_seconds: float, first: int) -> int:
    """Rows for the next commit: `first` before any rate is known, then what takes ~commit_seconds."""
    if not done or seconds <= 0:
        return max(1, min(commit_rows, first))
    return max(1, min(commit_rows, int(done / seconds * commit_seconds)))


def commit_pending(context: JobContext, report: StageReport, contract: TableContract, pending: DataFrame,
                   produce: Callable[[DataFrame], DataFrame], label: str = "source",
                   outcome: Column | None = None) -> int:
    """Generate and append `pending` commit by commit; returns the rows written this run.

    `produce` turns a slice of pending rows into table rows; the report counts them per `label`
    column as kept, or under `outcome` (default: the row's status when it is not ok).
    """
    teacher = context.config.teacher
    name = contract.name
    outcome = outcome if outcome is not None else F.when(F.col("status") != "ok", F.col("status"))
    staged = context.checkpoint(pending.withColumns({"_part": F.spark_partition_id(), "_row": F.monotonically_increasing_id()}),
                                f"pending-{name}")
    parts = [Part(r["_part"], r["first"], r["rows"]) for r in
             staged.groupBy("_part").agg(F.min("_row").alias("first"), F.count(F.lit(1)).alias("rows")).orderBy("_part").collect()]
    total = sum(p.rows for p in parts)
    totals = dict.fromkeys(GENERATION_TOTALS, 0)
    written, commits, busy = 0, 0, 0.0
    if total:
        log.info("%s: %d pending rows; commits of at most %d rows or ~%.0f s", contract.logical_name, total,
                 teacher.commit_rows, teacher.commit_seconds)
    while written < total and not (teacher.max_commits and commits == teacher.max_commits):
        size = next_size(written, busy, teacher.commit_rows, teacher.commit_seconds, FIRST_ROWS_PER_CORE * context.parallelism)
        started = time.monotonic()
        where = reduce(Column.__or__, [(F.col("_part") == p) & (F.col("_row") >= low) & (F.col("_row") < high)
                                       for p, low, high in slices(parts, written, size)])
        rows = context.checkpoint(produce(staged.where(where).drop("_part", "_row")), f"{name}-{commits}")
        stats = rows.agg(F.count(F.lit(1)).alias("rows"),
                         *[F.sum(c).alias(c) for c in GENERATION_TOTALS if c in rows.columns]).first().asDict()
        report.tally(rows.select(F.col(label).alias("source")), rows.select(F.col(label).alias("source"), outcome.alias("reason")))
        report.writes += context.gate.commit(Batch(contract, rows, append=True))
        context.gate.cleanup()  # the commit's staged copy; the run's checkpoints go at its end
        commits += 1
        written += size
        busy += time.monotonic() - started
        for key in totals:
            totals[key] += stats.get(key) or 0
        log.info("%s: commit %d: %d rows (%d of %d this run), %d tokens out, %.2f rows/s", contract.logical_name, commits,
                 stats["rows"], min(written, total), total, totals["tokens_out"], min(written, total) / busy)
    written = min(written, total)
    report.metrics.update({f"{name}.pending": total, f"{name}.written": written, f"{name}.commits": commits,
                           f"{name}.left_for_next_run": total - written, f"{name}.seconds": round(busy, 3)})
    report.metrics.update({f"{name}.{key}": value for key, value in totals.items() if value})
    if written and busy > 0:
        report.metrics[f"{name}.rows_per_s"] = written / busy
        report.metrics[f"{name}.tokens_per_s"] = totals["tokens_out"] / busy
    return written
