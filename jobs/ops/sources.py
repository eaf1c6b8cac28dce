"""Reading sources: list their files, keep the new or changed ones, read records in executors, key them.

Files are listed with Spark's binaryFile source (paths and sizes only) and read in parallel
inside executors by the format adapters in udfs/readers.py, one file per task.
"""

from __future__ import annotations

import os
from functools import partial, reduce

import pyarrow.fs as pafs
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.runtime.config import ConfigError, SourceConfig
from schemas.bronze_records import READ_ROW
from schemas.silver_rejects import Reason
from udfs.readers import fetch_images_batches, local_path, read_files_batches

MAX_READ_TASKS = 20_000


def source_files(spark: SparkSession, sources: list[SourceConfig]) -> DataFrame:
    """(source, uri, root, file, size, modified_at) of every data file of `sources`, listed by Spark.

    `file` is the path relative to the source root: lineage that survives moving the data.
    """
    return reduce(DataFrame.unionByName, [_listed(spark, source) for source in sources])


def _listed(spark: SparkSession, source: SourceConfig) -> DataFrame:
    root = source_root(source.path)
    try:
        listing = (
            spark.read.format("binaryFile")
            .option("pathGlobFilter", source.file_pattern)
            .option("recursiveFileLookup", "true")
            .load(source.path)
            .select("path", "length", "modificationTime")
        )
    except AnalysisException as err:
        raise ConfigError(f"source `{source.name}`: cannot list {source.path}: {err.getMessage()}") from None
    # Spark lists local files as file:/path; the root is a plain path or a URI.
    path = F.regexp_replace("path", "^file:(//)?(?=/)", "") if local_path(source.path) is not None else F.col("path")
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
    """READ_ROW rows of every file in `files`, read in parallel (one file per task).

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
        partial(read_files_batches, sources=sources, fetch_images=True), READ_ROW
    )
    listed = file_list.where(is_json).repartition(tasks).mapInArrow(
        partial(read_files_batches, sources=sources, fetch_images=False), READ_ROW
    )
    fetched = listed.repartition(spread).mapInArrow(fetch_images_batches, READ_ROW)
    return containers.unionByName(fetched)


def mark_duplicates(rows: DataFrame, known_ids: DataFrame) -> DataFrame:
    """A key seen twice in `rows`, or among `known_ids` (sample_id), becomes a `duplicate_key` reject."""
    first = Window.partitionBy("sample_id").orderBy("file", "row_index")
    existing = known_ids.select("sample_id", F.lit(True).alias("_exists"))
    ranked = rows.withColumn(
        "_rank", F.when(F.col("sample_id").isNotNull(), F.row_number().over(first))
    ).join(existing, on="sample_id", how="left")
    duplicate = F.col("reason").isNull() & ((F.col("_rank") > 1) | F.col("_exists").isNotNull())
    return ranked.select(
        *[c for c in rows.columns if c not in ("reason", "detail")],
        F.when(duplicate, F.lit(Reason.DUPLICATE_KEY)).otherwise(F.col("reason")).alias("reason"),
        F.when(
            duplicate,
            F.concat(F.lit("key `"), F.col("source_key"), F.lit("` is already taken by an earlier row")),
        ).otherwise(F.col("detail")).alias("detail"),
    )


def bronze_rows(read: DataFrame, run_id: str) -> DataFrame:
    return read.where(F.col("reason").isNull()).select(
        "sample_id", "source", "subset", "source_key", "file", "row_index", "record", "images",
        F.current_timestamp().alias("ingested_at"),
        F.lit(run_id).alias("run_id"),
    )


def manifest_rows(files: DataFrame, read: DataFrame, run_id: str) -> DataFrame:
    """The files read, each with its rows read and rejected."""
    per_file = read.groupBy("source", "file").agg(
        F.count(F.lit(1)).alias("rows_read"),
        F.count("reason").alias("rows_rejected"),
    )
    return files.join(per_file, on=["source", "file"], how="left").select(
        "source", "file", "uri", "size", "modified_at",
        F.coalesce("rows_read", F.lit(0)).cast("long").alias("rows_read"),
        F.coalesce("rows_rejected", F.lit(0)).cast("long").alias("rows_rejected"),
        F.current_timestamp().alias("ingested_at"),
        F.lit(run_id).alias("run_id"),
    )
