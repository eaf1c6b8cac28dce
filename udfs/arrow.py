"""Rows of Python dicts <-> Arrow record batches, in bounded chunks (images make rows large)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa

MAX_ROWS_PER_BATCH = 256
MAX_BYTES_PER_BATCH = 64 << 20


def to_batches(rows: Iterable[dict[str, Any]], schema: pa.Schema, size_of=lambda row: 0) -> Iterator[pa.RecordBatch]:
    """Group rows into record batches of at most MAX_ROWS_PER_BATCH rows or MAX_BYTES_PER_BATCH bytes."""
    chunk: list[dict[str, Any]] = []
    chunk_bytes = 0
    for row in rows:
        chunk.append(row)
        chunk_bytes += size_of(row)
        if len(chunk) >= MAX_ROWS_PER_BATCH or chunk_bytes >= MAX_BYTES_PER_BATCH:
            yield pa.RecordBatch.from_pylist(chunk, schema=schema)
            chunk, chunk_bytes = [], 0
    if chunk:
        yield pa.RecordBatch.from_pylist(chunk, schema=schema)


def rows_of(batches: Iterable[pa.RecordBatch]) -> Iterator[dict[str, Any]]:
    for batch in batches:
        yield from batch.to_pylist()
