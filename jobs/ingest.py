"""ingest: source files -> bronze.records (+ silver.rejects, bronze.ingested_files).

Files are listed with Spark's binaryFile source (paths and sizes only), compared with the
manifest of files already ingested, and read in parallel inside executors by the format
adapters in udfs/readers.py. Only new or changed files are read; rows MERGE on sample_id.
"""

from __future__ import annotations

import logging
import os
import sys
from functools import partial

import pyarrow.fs as pafs
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.utils import AnalysisException

from jobs.runtime.config import ConfigError, SourceConfig
from jobs.runtime.gate import Conservation
from jobs.runtime.stage import JobContext, StageReport, run_job, tally
from schemas import bronze_records, ingested_files, silver_rejects
from udfs.readers import INGEST_ROW, fetch_images_batches, local_path, read_files_batches

STAGE = "ingest"
DESCRIPTION = "Read the configured sources into bronze.records; unreadable rows go to silver.rejects."
INGEST_ROW_TYPE = from_arrow_schema(INGEST_ROW)
MAX_READ_TASKS = 20_000
log = logging.getLogger("finelake")


def list_source_files(context: JobContext, source: SourceConfig) -> DataFrame:
    """(source, uri, root, file, size, modified_at) of the source's data files, listed by Spark.

    `file` is the path relative to the source root: lineage that survives moving the data.
    """
    root = source_root(source.path)
    try:
        listing = (
            context.spark.read.format("binaryFile")
            .option("pathGlobFilter", source.file_pattern)
            .option("recursiveFileLookup", "true")
            .load(source.path)
            .select("path", "length", "modificationTime")
        )
    except AnalysisException as err:
        raise ConfigError(f"source `{source.name}`: cannot list {source.path}: {err.getMessage()}") from None
    # Spark lists local files as file:/path; the root is a plain path or a URI.
    is_local = local_path(source.path) is not None
    path = F.regexp_replace("path", "^file:(//)?(?=/)", "") if is_local else F.col("path")
    return listing.select(
        F.lit(source.name).alias("source"),
        F.col("path").alias("uri"),
        F.lit(root).alias("root"),
        F.substring(path, len(root.rstrip("/")) + 2, 1 << 20).alias("file"),
        F.col("length").alias("size"),
        F.col("modificationTime").alias("modified_at"),
    )


def source_root(path: str) -> str:
    """The folder files are named relative to: the path itself, or its parent for a single file."""
    local = local_path(path)
    if local is not None:
        return local if os.path.isdir(local) else os.path.dirname(local)
    filesystem, inner = pafs.FileSystem.from_uri(path)
    is_dir = filesystem.get_file_info(inner).type == pafs.FileType.Directory
    return path if is_dir else path.rsplit("/", 1)[0]


def pending_files(files: DataFrame, manifest: DataFrame) -> DataFrame:
    """Files not in the manifest with the same size and modification time."""
    seen = manifest.select("source", "uri", "size", "modified_at")
    return files.join(seen, on=["source", "uri", "size", "modified_at"], how="left_anti")


def read_records(files: DataFrame, file_count: int, sources: dict[str, SourceConfig], spread: int) -> DataFrame:
    """Read every pending file in parallel (one file per task) into INGEST_ROW rows.

    JSON sources list image files by path; their bytes are read after a round-robin repartition
    into `spread` partitions so one big JSON file does not read all its images in one task.
    Explicit partition counts: adaptive execution would otherwise coalesce the tiny file list
    into a single task.
    """
    json_names = [n for n, s in sources.items() if s.format == "llava_json"]
    is_json = F.col("source").isin(json_names) if json_names else F.lit(False)
    tasks = max(1, min(file_count, MAX_READ_TASKS))
    file_list = files.select("source", "uri", "file")
    containers = file_list.where(~is_json).repartition(tasks).mapInArrow(
        partial(read_files_batches, sources=sources, fetch_images=True), INGEST_ROW_TYPE
    )
    listed = file_list.where(is_json).repartition(tasks).mapInArrow(
        partial(read_files_batches, sources=sources, fetch_images=False), INGEST_ROW_TYPE
    )
    fetched = listed.repartition(spread).mapInArrow(fetch_images_batches, INGEST_ROW_TYPE)
    return containers.unionByName(fetched)


def mark_duplicates(rows: DataFrame, bronze: DataFrame) -> DataFrame:
    """A key seen twice in this batch, or already in bronze, becomes a `duplicate_key` reject."""
    first = Window.partitionBy("sample_id").orderBy("file", "row_index")
    existing = bronze.select("sample_id", F.lit(True).alias("_exists"))
    ranked = rows.withColumn(
        "_rank", F.when(F.col("sample_id").isNotNull(), F.row_number().over(first))
    ).join(existing, on="sample_id", how="left")
    duplicate = F.col("reason").isNull() & ((F.col("_rank") > 1) | F.col("_exists").isNotNull())
    return ranked.select(
        *[c for c in rows.columns if c not in ("reason", "detail")],
        F.when(duplicate, F.lit("duplicate_key")).otherwise(F.col("reason")).alias("reason"),
        F.when(
            duplicate,
            F.concat(F.lit("key `"), F.col("source_key"), F.lit("` is already taken by an earlier row")),
        ).otherwise(F.col("detail")).alias("detail"),
    )


def bronze_rows(rows: DataFrame, run_id: str) -> DataFrame:
    return rows.where(F.col("reason").isNull()).select(
        "sample_id", "source", "subset", "source_key", "file", "row_index", "record", "images",
        F.current_timestamp().alias("ingested_at"),
        F.lit(run_id).alias("run_id"),
    )


def reject_rows(rows: DataFrame, stage: str, run_id: str) -> DataFrame:
    return rows.where(F.col("reason").isNotNull()).select(
        F.lit(stage).alias("stage"), "source", "file", "row_index", "sample_id", "source_key", "reason", "detail",
        F.current_timestamp().alias("rejected_at"),
        F.lit(run_id).alias("run_id"),
    )


def every_column(contract) -> dict[str, str]:
    return {c: f"s.`{c}`" for c in contract.schema.fieldNames()}


def write_rejects(context: JobContext, rejects: DataFrame):
    """Rejects MERGE as upserts: a row rejected again (a changed file re-read) belongs to this run."""
    return context.gate.write(
        silver_rejects.CONTRACT, rejects, update_when="t.run_id <> s.run_id", update_set=every_column(silver_rejects.CONTRACT)
    )


def manifest_rows(files: DataFrame, rows: DataFrame, run_id: str) -> DataFrame:
    per_file = rows.groupBy("source", "file").agg(
        F.count(F.lit(1)).alias("rows_read"),
        F.count("reason").alias("rows_rejected"),
    )
    return (
        files.join(per_file, on=["source", "file"], how="left")
        .select(
            "source", "file", "uri", "size", "modified_at",
            F.coalesce("rows_read", F.lit(0)).cast("long").alias("rows_read"),
            F.coalesce("rows_rejected", F.lit(0)).cast("long").alias("rows_rejected"),
            F.current_timestamp().alias("ingested_at"),
            F.lit(run_id).alias("run_id"),
        )
    )


def run(context: JobContext, report: StageReport) -> None:
    lake, config = context.lake, context.config
    sources = {s.name: s for s in context.config.selected_sources()}
    listed = None
    for source in sources.values():
        files = list_source_files(context, source)
        listed = files if listed is None else listed.unionByName(files)
    files = pending_files(listed, lake.read(ingested_files.CONTRACT)).persist()
    counts = {r["source"]: r["count"] for r in files.groupBy("source").count().collect()}
    log.info("ingest: %d new or changed files (%s)", sum(counts.values()),
             ", ".join(f"{s}={counts.get(s, 0)}" for s in sources))
    spread = config.ingest.fetch_partitions or int(context.spark.conf.get("spark.sql.shuffle.partitions"))
    records = read_records(files, sum(counts.values()), sources, spread)
    rows = mark_duplicates(records, lake.read(bronze_records.CONTRACT)).persist()
    try:
        tally(report, list(sources), rows, rows)
        report.writes.append(write_rejects(context, reject_rows(rows, STAGE, context.run_id)))
        bronze_write = context.gate.write(
            bronze_records.CONTRACT, bronze_rows(rows, context.run_id),
            conservation=Conservation(STAGE, {s: c.rows_in for s, c in report.counts.items()}),
        )
        report.writes.append(bronze_write)
        report.expect_equal("bronze rows inserted vs records kept", sum(c.kept for c in report.counts.values()),
                            bronze_write.inserted)
        report.writes.append(
            context.gate.write(
                ingested_files.CONTRACT,
                manifest_rows(files, rows, context.run_id),
                update_when="t.size <> s.size OR t.modified_at <> s.modified_at",
                update_set=every_column(ingested_files.CONTRACT),
            )
        )
    finally:
        rows.unpersist()
        files.unpersist()


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
