"""A published version of gold.curated as files a training job reads: shards written by the executors
(udfs/exports.py), a manifest and a dataset card written by the driver from small aggregates."""

from __future__ import annotations

import json
import math
import posixpath
from dataclasses import asdict, dataclass, field

import pyarrow.fs as pafs
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from jobs.runtime.config import Config
from jobs.runtime.tables import Lake
from schemas import contamination, curated, curation_decisions, duplicate_groups, silver_samples
from schemas.turn_ratings import AXES
from udfs.exports import SUMMARY, TEMPORARY, filesystem, write_empty_shard, write_shards

MANIFEST = "finelake_export.json"
ARROW_BATCH_ROWS = 256


class ExportError(ValueError):
    """A refused export, said in one line."""


@dataclass
class Manifest:
    """What an export folder holds: enough to tell whether a new export would write the same files."""

    format: str
    table: str
    version: int
    subset: str | None
    shard_mb: int
    policy_hashes: list[str] = field(default_factory=list)
    rows: int = 0
    bytes: int = 0
    shards: list[dict] = field(default_factory=list)

    def same_export(self, other: dict) -> bool:
        mine = asdict(self)
        return all(other.get(k) == mine[k] for k in ("format", "table", "version", "subset", "shard_mb"))


def curated_rows(lake: Lake, version: int | None, subset: str | None) -> tuple[DataFrame, int]:
    """gold.curated at `version` (default: the latest), only `subset`'s samples when given."""
    if not lake.exists(curated.CONTRACT):
        raise ExportError(f"{lake.name(curated.CONTRACT)} does not exist yet: run `finelake run publish` first")
    latest = lake.latest_version(curated.CONTRACT)
    chosen = latest if version is None else version
    if not 0 <= chosen <= latest:
        raise ExportError(f"--version {version}: gold.curated has versions 0 to {latest}")
    rows = lake.read_version(curated.CONTRACT, chosen)
    if subset is not None:
        known = sorted(r[0] for r in rows.select(F.explode("subsets")).distinct().collect())
        if subset not in known:
            raise ExportError(f"--subset {subset}: no such subset in gold.curated v{chosen} "
                              f"(subsets: {', '.join(known) or 'none yet: run difficulty, then publish'})")
        rows = rows.where(F.array_contains("subsets", subset))
    return rows, chosen


def with_images(rows: DataFrame, images: DataFrame) -> DataFrame:
    """Each row with its images' bytes and formats, in the sample's order."""
    slots = rows.select("sample_id", F.posexplode("image_ids").alias("position", "image_id")).join(
        images.select("image_id", "bytes", "format"), "image_id")
    gathered = slots.groupBy("sample_id").agg(F.transform(
        F.array_sort(F.collect_list(F.struct("position", "image_id", "bytes", "format"))),
        lambda s: F.struct(s["image_id"].alias("image_id"), s["bytes"].alias("bytes"), s["format"].alias("format")),
    ).alias("images"))
    return rows.join(gathered, "sample_id", "left").withColumn("images", F.coalesce("images", F.array()))


def write_export(rows: DataFrame, fmt: str, root: str, shard_mb: int) -> list[dict]:
    """Shards of about `shard_mb` MB (a sample's images and text), a sample's shard by the hash of its id;
    written by the executors, one summary row per shard back to the driver."""
    size = F.aggregate("images", F.lit(0).cast("long"), lambda total, i: total + F.length(i["bytes"])) + F.length(
        F.to_json("turns"))
    # The size pass and the write read the joined rows once: kept on the executors' disks meanwhile
    # (a lost executor's part is read again from the same table versions).
    joined = rows.select("sample_id", "source", "category", "license", "subsets", "turns", "images",
                         size.alias("size"), (F.size("image_ids") - F.size("images")).alias("missing")
                         ).persist(StorageLevel.DISK_ONLY)
    try:
        measured = joined.agg(F.sum("size").alias("size"), F.count_if(F.col("missing") > 0).alias("missing"),
                              F.max_by("sample_id", "missing").alias("example")).first()
        if measured["missing"]:
            raise ExportError(f"{measured['missing']} samples reference images that silver.images does not hold "
                              f"(e.g. sample {measured['example']}); nothing was written")
        shards = max(1, math.ceil((measured["size"] or 0) / (shard_mb * 1024 * 1024)))
        placed = (joined.drop("size", "missing").withColumn("shard", F.pmod(F.xxhash64("sample_id"), F.lit(shards)).cast("int"))
                  .repartition(shards, "shard").sortWithinPartitions("shard", "sample_id"))
        # Arrow batches of a few hundred rows: a Python worker never holds thousands of images at once
        rows.sparkSession.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
        written = placed.mapInArrow(lambda batches: write_shards(batches, fmt, root, shards), from_arrow_schema(SUMMARY))
        summaries = {r["shard"]: r.asDict() for r in written.collect()}
    finally:
        joined.unpersist()
    for shard in sorted(set(range(shards)) - set(summaries)):
        summaries[shard] = write_empty_shard(fmt, root, shard, shards)
    fs, base = filesystem(root)
    fs.delete_dir(posixpath.join(base, TEMPORARY))
    return [summaries[shard] for shard in range(shards)]


def prepare_folder(root: str, manifest: Manifest, overwrite: bool) -> bool:
    """False when `root` already holds this very export; raises when it holds something else
    (unless `overwrite`, which empties it first)."""
    fs, base = filesystem(root)
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.NotFound or (
            info.type == pafs.FileType.Directory and not fs.get_file_info(pafs.FileSelector(base))):
        fs.create_dir(base, recursive=True)
        return True
    if info.type != pafs.FileType.Directory:
        raise ExportError(f"--to {root}: is a file, not a folder")
    existing = fs.get_file_info(posixpath.join(base, MANIFEST))
    if existing.type == pafs.FileType.File and not overwrite:
        with fs.open_input_stream(existing.path) as handle:
            if manifest.same_export(json.loads(handle.read())):
                return False
    if not overwrite:
        raise ExportError(f"--to {root}: the folder is not empty; nothing was written (choose an empty folder, "
                          "or add --overwrite to replace what it holds)")
    fs.delete_dir_contents(base)
    return True


def write_text(root: str, name: str, text: str) -> None:
    fs, base = filesystem(root)
    with fs.open_output_stream(posixpath.join(base, name)) as out:
        out.write(text.encode())


def card_figures(lake: Lake, rows: DataFrame, config: Config) -> dict:
    """The dataset card's figures: small aggregates over the exported rows and the curation tables."""
    sources = [r.asDict() for r in rows.groupBy("source").agg(
        F.first("license").alias("license"), F.first("category").alias("category"), F.count(F.lit(1)).alias("samples"),
        F.sum(F.size("turns")).alias("turns"), F.sum(F.size("image_ids")).alias("images"),
        F.sum(F.size(F.filter("turns", lambda t: t["reasoning_teacher"].isNotNull()))).alias("with_reasoning"),
        F.collect_set("policy_hash").alias("policy_hashes"),
    ).orderBy("source").collect()]
    quality = rows.select(F.explode("turns").alias("t")).agg(
        *[F.struct(F.avg(f"t.{axis}"), F.count(f"t.{axis}")).alias(axis) for axis in AXES]).first()
    samples = lake.read_current(silver_samples.CONTRACT).count()
    flagged = lake.read_current(contamination.CONTRACT).groupBy("benchmark").agg(
        F.countDistinct("sample_id").alias("samples")).orderBy("benchmark").collect()
    groups = lake.read_current(duplicate_groups.CONTRACT).agg(
        F.countDistinct(F.when(F.col("group_size") > 1, F.col("group_id"))).alias("groups"),
        F.count_if(~F.col("is_representative")).alias("copies")).first()
    decisions = lake.read_current(curation_decisions.CONTRACT).groupBy("scope", "rule").count().orderBy("scope", "rule").collect()
    return {
        "name": config.publish.name,
        "sources": sources,
        "silver_samples": samples,
        "contamination": [{"benchmark": r["benchmark"], "samples": r["samples"],
                           "rate": r["samples"] / samples if samples else 0.0} for r in flagged],
        "duplicate_groups": groups["groups"], "duplicate_copies": groups["copies"],
        "decisions": [(r["scope"], r["rule"], r["count"]) for r in decisions],
        "quality": {axis: tuple(quality[axis]) for axis in AXES},
        "policy_hashes": sorted({h for source in sources for h in source.pop("policy_hashes")}),
        "policy": config.publish.policy.model_dump(mode="json"),
    }
