"""Export shards written where they run (an executor task), from Arrow batches of curated rows.

Each row: sample_id, source, category, license, subsets, turns (gold.curated's turn structs),
images (ordered {image_id, bytes, format}) and shard (its shard number). Rows arrive sorted by
(shard, sample_id), so a shard is written in one pass and closed when the next one starts.
Everything written is a function of the rows alone (fixed row groups, tar headers without times,
sorted JSON keys): the same curated version gives byte-identical shards.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas.turn_ratings import AXES

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
ROW_GROUP_ROWS = 100  # rows per parquet row group (images make rows large; HF's viewer reads row groups)
SUMMARY = pa.schema([("shard", pa.int32()), ("file", pa.string()), ("rows", pa.int64()), ("bytes", pa.int64())])
FORMATS = ("hf", "webdataset", "llava")
TEMPORARY = "_tmp"  # in the export folder: parts being written


def shard_name(fmt: str, shard: int, shards: int) -> str:
    """Where shard `shard` of `shards` goes, relative to the export folder."""
    stem = f"{shard:05d}-of-{shards:05d}"
    return {"hf": f"data/train-{stem}.parquet", "webdataset": f"train-{stem}.tar", "llava": f"llava-{stem}.json"}[fmt]


def filesystem(root: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and path for a local folder or a URI (s3://, gs://, abfss://, ...)."""
    return pafs.FileSystem.from_uri(root if "://" in root else f"file://{root}")


def image_name(image: dict[str, Any]) -> str:
    return f"{image['image_id']}.{EXTENSIONS.get(image['format'], 'img')}"


# ---------------------------------------------------------------- HF datasets parquet

def _value(dtype: str) -> dict:
    return {"dtype": dtype, "_type": "Value"}


HF_SCHEMA = pa.schema(
    [
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        ("texts", pa.list_(pa.struct([("user", pa.string()), ("assistant", pa.string())]))),
        ("source", pa.string()),
        ("sample_id", pa.string()),
        ("category", pa.string()),
        ("license", pa.string()),
        ("subsets", pa.list_(pa.string())),
        *[(f"{axis}_ratings", pa.list_(pa.int32())) for axis in AXES],
        *[(f"{axis}_min", pa.int32()) for axis in AXES],
    ],
    # the `datasets` library reads its features from here: images decode as PIL images
    metadata={"huggingface": json.dumps({"info": {"features": {
        "images": [{"_type": "Image"}],
        "texts": [{"user": _value("string"), "assistant": _value("string")}],
        **{c: _value("string") for c in ("source", "sample_id", "category", "license")},
        "subsets": [_value("string")],
        **{f"{axis}_ratings": [_value("int32")] for axis in AXES},
        **{f"{axis}_min": _value("int32") for axis in AXES},
    }}}, sort_keys=True)},
)


def hf_row(row: dict[str, Any]) -> dict[str, Any]:
    """A curated row as FineVision's columns: `images` ({bytes, path}), `texts` (user/assistant), ratings per turn."""
    turns = row["turns"]
    out = {
        "images": [{"bytes": image["bytes"], "path": image_name(image)} for image in row["images"]],
        "texts": [{"user": t["user"], "assistant": t["assistant"]} for t in turns],
        **{c: row[c] for c in ("source", "sample_id", "category", "license")},
        "subsets": list(row["subsets"]),
    }
    for axis in AXES:
        scores = [t[axis] for t in turns]
        out[f"{axis}_ratings"] = scores
        out[f"{axis}_min"] = min((s for s in scores if s is not None), default=None)
    return out


class _ParquetShard:
    def __init__(self, fs: pafs.FileSystem, path: str):
        self.stream = fs.open_output_stream(path)
        self.writer = pq.ParquetWriter(self.stream, HF_SCHEMA, compression="zstd")
        self.pending: list[dict] = []

    def add(self, row: dict[str, Any]) -> None:
        self.pending.append(hf_row(row))
        if len(self.pending) == ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.Table.from_pylist(self.pending, schema=HF_SCHEMA))
            self.pending = []

    def close(self) -> None:
        self._flush()
        self.writer.close()
        self.stream.close()


# ---------------------------------------------------------------- WebDataset

def sample_json(row: dict[str, Any], image_names: list[str]) -> bytes:
    """The metadata and turns of a sample, as stored next to its images."""
    record = {c: row[c] for c in ("sample_id", "source", "category", "license")}
    record["subsets"] = list(row["subsets"])
    record["images"] = image_names
    record["texts"] = [{"user": t["user"], "assistant": t["assistant"]} for t in row["turns"]]
    record["ratings"] = [{axis: t[axis] for axis in AXES} for t in row["turns"]]
    return json.dumps(record, ensure_ascii=False, sort_keys=True).encode()


def webdataset_members(row: dict[str, Any]) -> list[tuple[str, bytes]]:
    """`{key}.jpg` (one image) or `{key}.{i}.jpg` (several), then `{key}.json`; the key is the sample id."""
    key, images = row["sample_id"], row["images"]
    suffixes = [EXTENSIONS.get(i["format"], "img") if len(images) == 1 else f"{n}.{EXTENSIONS.get(i['format'], 'img')}"
                for n, i in enumerate(images)]
    members = [(f"{key}.{suffix}", image["bytes"]) for suffix, image in zip(suffixes, images)]
    return members + [(f"{key}.json", sample_json(row, suffixes))]


class _TarShard:
    def __init__(self, fs: pafs.FileSystem, path: str):
        self.stream = fs.open_output_stream(path)
        self.tar = tarfile.open(fileobj=self.stream, mode="w|", format=tarfile.USTAR_FORMAT)

    def add(self, row: dict[str, Any]) -> None:
        for name, payload in webdataset_members(row):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = len(payload), 0, 0o644, 0, 0, "", ""
            self.tar.addfile(info, io.BytesIO(payload))

    def close(self) -> None:
        self.tar.close()
        self.stream.close()


# ---------------------------------------------------------------- LLaVA JSON

def llava_record(row: dict[str, Any]) -> dict[str, Any]:
    """LLaVA's format: `image` (a path under images/, or a list), `conversations` with one `<image>` per image."""
    names = [f"images/{image_name(i)}" for i in row["images"]]
    conversations = []
    for n, turn in enumerate(row["turns"]):
        tokens = "<image>\n" * len(names) if n == 0 else ""
        conversations += [{"from": "human", "value": tokens + turn["user"]}, {"from": "gpt", "value": turn["assistant"]}]
    record = {"id": row["sample_id"], "source": row["source"], "conversations": conversations}
    if names:
        record["image"] = names[0] if len(names) == 1 else names
    return record


class _LlavaShard:
    def __init__(self, fs: pafs.FileSystem, path: str, root: str):
        self.fs, self.root = fs, root
        fs.create_dir(posixpath.join(root, "images"), recursive=True)
        self.stream = fs.open_output_stream(path)
        self.first = True

    def add(self, row: dict[str, Any]) -> None:
        for image in row["images"]:
            _write_once(self.fs, self.root, posixpath.join("images", image_name(image)), image["bytes"])
        self.stream.write((b"[\n" if self.first else b",\n") + json.dumps(llava_record(row), ensure_ascii=False,
                                                                           sort_keys=True).encode())
        self.first = False

    def close(self) -> None:
        self.stream.write(b"\n]\n" if not self.first else b"[]\n")
        self.stream.close()


def _write_once(fs: pafs.FileSystem, root: str, name: str, payload: bytes) -> None:
    """An image named by its content hash: whoever writes it first writes the same bytes."""
    path = posixpath.join(root, name)
    if fs.get_file_info(path).type == pafs.FileType.File:
        return
    temporary = temporary_path(root, name)
    with fs.open_output_stream(temporary) as out:
        out.write(payload)
    fs.move(temporary, path)


def temporary_path(root: str, name: str) -> str:
    """Where `name` is written before it is moved into place: under TEMPORARY, which the export removes at the end
    (a task killed mid-write leaves its part there, never beside the shards)."""
    return posixpath.join(root, TEMPORARY, f"{name.replace('/', '_')}.{uuid.uuid4().hex}")


# ---------------------------------------------------------------- shards

def write_shards(batches: Iterable[pa.RecordBatch], fmt: str, root: str, shards: int) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: write the shards whose rows these batches hold; one SUMMARY row per shard.

    A shard is written under TEMPORARY and moved into place when complete, so a task that dies
    leaves no half shard in the export (its retry writes the whole shard again)."""
    fs, base = filesystem(root)
    fs.create_dir(posixpath.join(base, TEMPORARY), recursive=True)
    current, writer, temporary, rows = None, None, "", 0

    def finish() -> pa.RecordBatch:
        writer.close()
        return _placed(fs, base, fmt, current, shards, temporary, rows)

    try:
        for batch in batches:
            for offset in range(0, batch.num_rows, ROW_GROUP_ROWS):  # a slice of rows in Python at a time
                for row in batch.slice(offset, ROW_GROUP_ROWS).to_pylist():
                    if row["shard"] != current:
                        if writer is not None:
                            yield finish()
                        current, rows = row["shard"], 0
                        temporary = temporary_path(base, shard_name(fmt, current, shards))
                        writer = _open(fs, base, fmt, temporary)
                    writer.add(row)
                    rows += 1
        if writer is not None:
            yield finish()
    except BaseException:
        if temporary and fs.get_file_info(temporary).type == pafs.FileType.File:
            fs.delete_file(temporary)
        raise


def write_empty_shard(fmt: str, root: str, shard: int, shards: int) -> dict[str, Any]:
    """A shard number no sample hashed to still gets its file: `-of-N` promises N files."""
    fs, base = filesystem(root)
    fs.create_dir(posixpath.join(base, TEMPORARY), recursive=True)
    temporary = temporary_path(base, shard_name(fmt, shard, shards))
    _open(fs, base, fmt, temporary).close()
    return _placed(fs, base, fmt, shard, shards, temporary, 0).to_pylist()[0]


def _open(fs: pafs.FileSystem, base: str, fmt: str, temporary: str):
    if fmt == "hf":
        return _ParquetShard(fs, temporary)
    if fmt == "webdataset":
        return _TarShard(fs, temporary)
    return _LlavaShard(fs, temporary, base)


def _placed(fs: pafs.FileSystem, base: str, fmt: str, shard: int, shards: int, temporary: str, rows: int) -> pa.RecordBatch:
    name = shard_name(fmt, shard, shards)
    final = posixpath.join(base, name)
    fs.create_dir(posixpath.dirname(final), recursive=True)
    fs.move(temporary, final)
    return pa.RecordBatch.from_pylist([{"shard": shard, "file": name, "rows": rows, "bytes": fs.get_file_info(final).size}],
                                      schema=SUMMARY)


# ---------------------------------------------------------------- the dataset card

def dataset_card(figures: dict[str, Any], manifest: dict[str, Any]) -> str:
    """README.md of an export: a YAML header the Hub and `datasets` read, then what is inside and how it was made."""
    fmt = manifest["format"]
    licenses = sorted({s["license"] for s in figures["sources"]})
    header = ["---", f"pretty_name: {json.dumps(figures['name'])}", "license: other",
              f"license_details: {json.dumps('; '.join(licenses))}", "task_categories:", "- image-text-to-text",
              "tags:", "- vision-language", "- finelake"]
    if fmt == "hf":
        header += ["configs:", "- config_name: default", "  data_files:", "  - split: train", "    path: data/train-*.parquet"]
    header.append("---")
    total = sum(s["samples"] for s in figures["sources"])
    lines = [
        f"# {figures['name']}", "",
        f"Exported by finelake from `{manifest['table']}` version {manifest['version']}"
        + (f", subset `{manifest['subset']}`" if manifest["subset"] else "")
        + f": {manifest['rows']} samples in {len(manifest['shards'])} {fmt} shards ({manifest['bytes'] / 1e6:.1f} MB).",
        "The same version exports to the same bytes: reproduce it with "
        f"`finelake export --format {fmt} --version {manifest['version']}"
        + (f" --subset {manifest['subset']}" if manifest["subset"] else "") + " --to PATH`.", "",
        "## Sources", "",
        "| source | licence | category | samples | turns | images | turns with reasoning |", "|---|---|---|---:|---:|---:|---:|",
        *[f"| {s['source']} | {s['license']} | {s['category']} | {s['samples']} | {s['turns']} | {s['images']} | "
          f"{s['with_reasoning']} |" for s in figures["sources"]],
        f"| **all** | | | **{total}** | | | |", "",
        "## What the policy left out", "",
        f"Of {figures['silver_samples']} normalised samples, {total} are in this export. Every sample or turn left out "
        "has a row in `gold.curation_decisions` with its rule and evidence.", "",
        "| scope | rule | rows |", "|---|---|---:|",
        *[f"| {scope} | {rule} | {n} |" for scope, rule, n in figures["decisions"]], "",
        "## Benchmark contamination", "",
        "Samples flagged per benchmark (gold.contamination; image: SSCD/pHash near-duplicates of a benchmark image, "
        "text: shared word n-grams with a benchmark question), and their share of the normalised samples.", "",
        "| benchmark | flagged samples | rate |", "|---|---:|---:|",
        *[f"| {c['benchmark']} | {c['samples']} | {c['rate']:.4%} |" for c in figures["contamination"]], "",
        "## Deduplication", "",
        f"{figures['duplicate_groups']} near-duplicate groups of two or more samples; {figures['duplicate_copies']} "
        "non-representative copies (left out when the policy's `duplicates.drop_copies` is on).", "",
        "## Quality (turn ratings, 1-5)", "",
        "| axis | mean | rated turns |", "|---|---:|---:|",
        *[f"| {axis} | {mean:.2f} | {n} |" if mean is not None else f"| {axis} | - | {n} |"
          for axis, (mean, n) in figures["quality"].items()], "",
        "## The policy", "", f"Hash `{', '.join(manifest['policy_hashes'])}`:", "", "```json",
        json.dumps(figures["policy"], indent=2, sort_keys=True), "```", "",
    ]
    return "\n".join(header + lines)
