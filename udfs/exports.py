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
        self.extra_bytes = 0  # the images this shard wrote (an image shared with another shard is written once)

    def add(self, row: dict[str, Any]) -> None:
        for image in row["images"]:
            self.extra_bytes += _write_once(self.fs, posixpath.join(self.root, "images", image_name(image)), image["bytes"])
        self.stream.write((b"[\n" if self.first else b",\n") + json.dumps(llava_record(row), ensure_ascii=False,
                                                                           sort_keys=True).encode())
        self.first = False

    def close(self) -> None:
        self.stream.write(b"\n]\n" if not self.first else b"[]\n")
        self.stream.close()


def _write_once(fs: pafs.FileSystem, path: str, payload: bytes) -> int:
    """An image named by its content hash: whoever writes it first writes the same bytes. Returns the bytes written."""
    if fs.get_file_info(path).type == pafs.FileType.File:
        return 0
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    with fs.open_output_stream(temporary) as out:
        out.write(payload)
    fs.move(temporary, path)
    return len(payload)


# ---------------------------------------------------------------- shards

def write_shards(batches: Iterable[pa.RecordBatch], fmt: str, root: str, shards: int) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: write the shards whose rows these batches hold; one SUMMARY row per shard.

    A shard is written under a temporary name and moved into place when complete, so a task
    that dies leaves no half shard behind (its retry writes the whole shard again)."""
    fs, base = filesystem(root)
    current, writer, temporary, rows = None, None, "", 0

    def finish() -> pa.RecordBatch:
        writer.close()
        final = posixpath.join(base, shard_name(fmt, current, shards))
        fs.move(temporary, final)
        size = fs.get_file_info(final).size + getattr(writer, "extra_bytes", 0)
        return pa.RecordBatch.from_pylist([{"shard": current, "file": shard_name(fmt, current, shards), "rows": rows,
                                            "bytes": size}], schema=SUMMARY)

    for batch in batches:
        for row in batch.to_pylist():
            if row["shard"] != current:
                if writer is not None:
                    yield finish()
                current, rows = row["shard"], 0
                temporary = posixpath.join(base, f"{shard_name(fmt, current, shards)}.{uuid.uuid4().hex}.tmp")
                fs.create_dir(posixpath.dirname(temporary), recursive=True)
                writer = {"hf": lambda: _ParquetShard(fs, temporary), "webdataset": lambda: _TarShard(fs, temporary),
                          "llava": lambda: _LlavaShard(fs, temporary, base)}[fmt]()
            writer.add(row)
            rows += 1
    if writer is not None:
        yield finish()


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
