"""Source format adapters: one data file -> records as read, inside an executor.

Each adapter streams one file (a parquet file, a JSON/JSONL file, a WebDataset tar shard) and
yields `RawRecord`s: the record's fields, its image references (with bytes when the container
holds them) and lineage. A record or a file that cannot be read becomes a RawRecord with a reason
code instead of an exception, so the job goes on and the rejects table says what happened.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import posixpath
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from schemas import bronze_records
from schemas.contract import arrow_schema
from schemas.silver_rejects import Reason
from udfs.arrow import rows_of, to_batches
from udfs.mapping import TemplateError, readable_steps, render

IMAGE_EXTENSIONS = {"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff", "ppm", "pgm"}
PARQUET_BATCH_ROWS = 256

READ_ROW = arrow_schema(bronze_records.READ_ROW)



@dataclass
class ImageRef:
    path: str | None
    data: bytes | None = None


@dataclass
class RawRecord:
    row_index: int
    fields: dict[str, Any] | None = None
    images: list[ImageRef] = field(default_factory=list)
    source_key: str | None = None
    subset: str | None = None
    reason: str | None = None
    detail: str | None = None


def sample_id(source: str, subset: str, source_key: str) -> str:
    """Stable key of a sample: the same (source, subset, key in source) always gives the same id."""
    return hashlib.sha256(f"{source}\x1f{subset}\x1f{source_key}".encode()).hexdigest()[:32]


def local_path(uri: str) -> str | None:
    """The local filesystem path of a `file:` URI or a plain path, else None."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return parsed.path if parsed.scheme else uri
    return None


def open_input(uri: str) -> IO[bytes]:
    path = local_path(uri)
    if path is not None:
        return open(path, "rb")
    filesystem, inner = pafs.FileSystem.from_uri(uri)
    return filesystem.open_input_file(inner)


def read_bytes(uri: str) -> bytes | None:
    """The whole file, or None when it does not exist (a missing image is a reject, not a crash)."""
    try:
        with open_input(uri) as handle:
            return handle.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    except OSError as err:
        if "not found" in str(err).lower() or "no such file" in str(err).lower():
            return None
        raise


def resolve(root: str, reference: str) -> str:
    if urlparse(reference).scheme or reference.startswith("/"):
        return reference
    return posixpath.normpath(posixpath.join(root, reference)) if "://" not in root else f"{root.rstrip('/')}/{reference}"


def read_file(uri: str, relpath: str, source: Any) -> Iterator[RawRecord]:
    """All records of one data file of `source` (a SourceConfig), keyed and with image refs."""
    readers = {
        "hf_parquet": _parquet_rows,
        "cauldron_parquet": _parquet_rows,
        "llava_json": _json_rows,
        "webdataset": _tar_rows,
    }
    folder = posixpath.dirname(local_path(uri) or uri)
    image_root = (source.images.root if source.images and source.images.root else None) or folder
    row = -1
    steps = itertools.count()  # per-step GUI records: row_index counts steps through the file (a unique row each)
    try:
        for row, fields in readers[source.format](uri, source):
            if isinstance(fields, RawRecord):
                yield fields
            elif source.actions is not None and source.actions.per == "step":
                for record in _steps(row, fields, relpath, source, image_root):
                    record.row_index = next(steps)
                    yield record
            else:
                yield _keyed(row, fields, relpath, source, image_root)
    except Exception as err:  # noqa: BLE001 - a broken file must become a reject row, whatever broke
        yield RawRecord(
            row_index=row + 1,
            reason=Reason.UNREADABLE_FILE,
            detail=f"{relpath}: stopped after {row + 1} records: {type(err).__name__}: {err}"[:500],
        )


def template_context(fields: dict[str, Any], relpath: str, row: int, source: Any) -> dict[str, Any]:
    """What templates see: the record's fields plus `_file`, `_row` and `_key` (the default key)."""
    context = {**fields, "_file": relpath, "_row": row}
    if source.format == "webdataset":
        context["_key"] = f"{relpath}/{fields['_key']}"
    context.setdefault("_key", f"{relpath}:{row}")
    return context


def _steps(row: int, fields: dict[str, Any], relpath: str, source: Any, image_root: str) -> Iterator[RawRecord]:
    """A GUI episode -> a record per step: the episode's other fields, `_step` (its index), `_action`
    (its raw action), `_step_fields` (the whole step, when the action is one of its fields: its
    screenshot, its size) and `_history` (the steps before it, as canonical actions); keys end in `#<step>`."""
    spec = source.actions
    steps = fields.get(spec.steps)
    if not isinstance(steps, list) or not steps:
        yield RawRecord(row_index=row, reason=Reason.MALFORMED_RECORD,
                        detail=f"record {row}: `{spec.steps}` is {type(steps).__name__}, expected a non-empty list of steps")
        return
    episode = {k: v for k, v in fields.items() if k != spec.steps}
    actions = [step.get(spec.action) if spec.action and isinstance(step, dict) else step for step in steps]
    readable = readable_steps(template_context(episode, relpath, row, source), spec, actions)
    for number, (step, action) in enumerate(zip(steps, actions)):
        fields_of_step = {"_step_fields": step} if spec.action else {}
        yield _keyed(row, {**episode, "_step": number, "_action": action, **fields_of_step, "_history": readable[:number]},
                     relpath, source, image_root)


def _keyed(row: int, fields: dict[str, Any], relpath: str, source: Any, image_root: str) -> RawRecord:
    context = template_context(fields, relpath, row, source)
    record = RawRecord(row_index=row)
    try:
        record.subset = render(source.subset, context, "subset")
        record.source_key = render(source.key, context, "key") if source.key else context["_key"]
        if "_step" in fields:
            record.source_key += f"#{fields['_step']}"
        record.images = _images(fields, context, source, image_root)
    except TemplateError as err:
        record.reason, record.detail = Reason.TEMPLATE_ERROR, str(err)
    except _BadImageField as err:
        record.reason, record.detail = Reason.MALFORMED_RECORD, str(err)
    record.fields = fields
    return record


class _BadImageField(ValueError):
    pass


def _images(fields: dict[str, Any], context: dict[str, Any], source: Any, root: str) -> list[ImageRef]:
    if "__images__" in fields:
        return [ImageRef(path=name, data=data) for name, data in fields.pop("__images__")]
    spec = source.images
    if spec is None:
        return []
    if spec.template is not None:
        counts = range(spec.count) if spec.count else [None]
        paths = [render(spec.template, {**context, "i": i}, "images.template") for i in counts]
        refs = [ImageRef(path=resolve(root, p.strip())) for p in paths]
    else:
        # An absent image field is a text-only record (LLaVA mixes them in); normalise decides.
        refs = list(_image_values(fields.get(spec.column), root, spec.column))
        if spec.column in fields:
            fields[spec.column] = [ref.path or f"<{len(ref.data or b'')} bytes>" for ref in refs]
    return refs


def _image_values(value: Any, root: str, where: str) -> Iterator[ImageRef]:
    if value is None:
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            yield from _image_values(item, root, f"{where}[{i}]")
    elif isinstance(value, dict) and ("bytes" in value or "path" in value):
        data, path = value.get("bytes"), value.get("path")
        if data is not None:
            yield ImageRef(path=path, data=bytes(data))
        elif path:
            yield ImageRef(path=resolve(root, path))
        else:
            raise _BadImageField(f"`{where}` has neither bytes nor a path")
    elif isinstance(value, (bytes, bytearray)):
        yield ImageRef(path=None, data=bytes(value))
    elif isinstance(value, str):
        yield ImageRef(path=resolve(root, value))
    else:
        raise _BadImageField(f"`{where}` is {type(value).__name__}: expected a path, bytes or {{bytes, path}}")


# ---------------------------------------------------------------- container formats


def _parquet_rows(uri: str, source: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    with open_input(uri) as handle:
        parquet = pq.ParquetFile(handle)
        row = 0
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for fields in batch.to_pylist():
                yield row, fields
                row += 1


def _json_rows(uri: str, source: Any) -> Iterator[tuple[int, dict[str, Any] | RawRecord]]:
    with open_input(uri) as handle:
        text = handle.read().decode("utf-8-sig")
    layout = source.records
    if layout == "auto":
        layout = "jsonl" if uri.endswith(".jsonl") or _looks_like_jsonl(text) else "json"
    if layout == "jsonl":
        for row, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                fields = json.loads(line)
            except json.JSONDecodeError as err:
                yield row, RawRecord(row_index=row, reason=Reason.MALFORMED_RECORD, detail=f"line {row + 1}: {err}")
                continue
            if not isinstance(fields, dict):
                yield row, RawRecord(row_index=row, reason=Reason.MALFORMED_RECORD, detail=f"line {row + 1}: not a JSON object")
                continue
            yield row, fields
        return
    document = json.loads(text)
    expected = {"json_array": list, "json_object": dict}.get(layout, (list, dict))
    if not isinstance(document, expected):
        raise ValueError(f"the document is a JSON {type(document).__name__}, records: {layout} expects otherwise")
    if isinstance(document, dict):
        items = [({**value, "_key": key} if isinstance(value, dict) else value) for key, value in document.items()]
    else:
        items = document
    for row, fields in enumerate(items):
        if not isinstance(fields, dict):
            yield row, RawRecord(row_index=row, reason=Reason.MALFORMED_RECORD, detail=f"item {row}: not a JSON object")
        else:
            yield row, fields


def _looks_like_jsonl(text: str) -> bool:
    first, _, rest = text.lstrip().partition("\n")
    if not rest.strip() or not first.strip().startswith("{"):
        return False
    try:
        json.loads(first)
        return True
    except json.JSONDecodeError:
        return False


def _tar_rows(uri: str, source: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """WebDataset convention: consecutive members sharing a basename prefix form one sample."""
    row = -1
    current_key, fields, images = None, {}, []
    with open_input(uri) as handle, tarfile.open(fileobj=handle, mode="r|*") as archive:
        for member in archive:
            if not member.isfile():
                continue
            directory, base = posixpath.split(member.name)
            stem, _, extension = base.partition(".")
            key = posixpath.join(directory, stem)
            if key != current_key:
                if current_key is not None:
                    row += 1
                    yield row, _wds_fields(current_key, fields, images)
                current_key, fields, images = key, {}, []
            payload = archive.extractfile(member).read()
            suffix = extension.rsplit(".", 1)[-1].lower()
            if suffix in IMAGE_EXTENSIONS:
                images.append((member.name, payload))
            elif suffix == "json":
                fields.update(json.loads(payload))
            else:
                fields[extension] = payload.decode("utf-8", errors="replace")
    if current_key is not None:
        yield row + 1, _wds_fields(current_key, fields, images)


def _wds_fields(key: str, fields: dict[str, Any], images: list[tuple[str, bytes]]) -> dict[str, Any]:
    return {**fields, "_key": key, "__images__": sorted(images)}


def record_json(fields: dict[str, Any]) -> str:
    """The record as read, as JSON; binary values become a size note so bronze stays readable."""
    return json.dumps(fields, ensure_ascii=False, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_files_batches(files: Any, sources: dict[str, Any], fetch_images: bool) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: rows of (source, uri, file) -> READ_ROW batches (`file`: path below the source root).

    With `fetch_images`, path-only images are read here; otherwise they are left for
    `fetch_images_batches` after a repartition (one big JSON file lists many images).
    """

    def rows() -> Iterator[dict[str, Any]]:
        for item in rows_of(files):
            source = sources[item["source"]]
            for record in read_file(item["uri"], item["file"], source):
                yield _ingest_row(source.name, item["file"], record, fetch_images)

    yield from to_batches(rows(), READ_ROW, size_of=_row_bytes)


def fetch_images_batches(batches: Any) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: READ_ROW batches with path-only images -> the same rows with bytes read."""

    def rows() -> Iterator[dict[str, Any]]:
        for row in rows_of(batches):
            row["images"] = [_with_bytes(image, fetch=True) for image in row["images"] or []]
            yield row

    yield from to_batches(rows(), READ_ROW, size_of=_row_bytes)


def _ingest_row(source: str, relpath: str, record: RawRecord, fetch: bool) -> dict[str, Any]:
    keyed = record.source_key is not None and record.subset is not None
    return {
        "source": source,
        "subset": record.subset,
        "source_key": record.source_key,
        "sample_id": sample_id(source, record.subset, record.source_key) if keyed else None,
        "file": relpath,
        "row_index": record.row_index,
        "record": record_json(record.fields) if record.fields is not None else None,
        "images": [_with_bytes({"path": i.path, "bytes": i.data, "sha256": None}, fetch) for i in record.images],
        "reason": record.reason,
        "detail": record.detail,
    }


def _with_bytes(image: dict[str, Any], fetch: bool) -> dict[str, Any]:
    if image["bytes"] is None and image["path"] and fetch:
        image["bytes"] = read_bytes(image["path"])
    if image["bytes"] is not None and image["sha256"] is None:
        image["sha256"] = hashlib.sha256(image["bytes"]).hexdigest()
    return image


def _row_bytes(row: dict[str, Any]) -> int:
    return sum(len(i["bytes"] or b"") for i in row["images"] or [])
