"""`finelake sql --engine duckdb`: read-only queries answered without a JVM, in seconds.

Every Delta table under the lake's warehouse folder is read at its latest version (the published
one: a batch that failed its audit was never committed) by delta-rs (`deltalake`) as an Arrow
dataset, and shown to an in-memory DuckDB as a view named as in Spark (`silver.samples`). No
metastore is opened, so it answers while a job holds the lake and without `finelake serve`. The
dialect is DuckDB's: plain SELECTs read the same, functions differ (`list_contains`, not
`array_contains`). Rows leave DuckDB as Arrow batches and are written as Spark's engine writes
them: CSV cells hold bytes as base64 and nested values as JSON (struct fields that are null left
out), JSON lines leave null fields out, the table cuts cells at --truncate characters.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import IO, Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from deltalake import DeltaTable

from jobs.runtime.query import QueryError, first_line

BATCH_ROWS = 10_000


def connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view `<schema>.<table>` over every Delta table of `warehouse` it can read; a
    table it cannot (e.g. one a job is creating right now) is named on stderr and left out."""
    connection = duckdb.connect()
    for number, log in enumerate(sorted(warehouse.glob("*.db/*/_delta_log"))):
        table, schema = log.parent, log.parent.parent.name.removesuffix(".db")
        try:
            dataset = DeltaTable(str(table)).to_pyarrow_dataset()
        except Exception as err:  # delta-rs raises its own error types, one per protocol problem
            print(f"finelake sql: {schema}.{table.name} left out: {first_line(err)}", file=sys.stderr)
            continue
        hidden = f"delta_table_{number}"
        connection.register(hidden, dataset)
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {_identifier(schema)}")
        connection.execute(f"CREATE VIEW {_identifier(schema)}.{_identifier(table.name)} AS SELECT * FROM {hidden}")
    return connection


def select_statement(query: str) -> str:
    """The query's one SELECT statement (WITH, FROM-first, VALUES, SHOW and DESCRIBE are SELECTs to DuckDB)."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as err:
        raise QueryError(f"syntax error: {_message(err)}") from None
    if len(statements) != 1:
        raise QueryError(f"one statement at a time, found {len(statements)}")
    if statements[0].type != duckdb.StatementType.SELECT:
        raise QueryError(f"`{statements[0].type.name}` statements are not reads; the duckdb engine only reads")
    return statements[0].query


def run(connection: duckdb.DuckDBPyConnection, query: str, fmt: str, output: Path | None, limit: int | None,
        truncate: int) -> int:
    """Print or export the query's rows as `finelake sql` does with Spark; the number of rows written."""
    statement = select_statement(query)
    try:
        result = connection.sql(statement)
        repeated = sorted({name for name in result.columns if result.columns.count(name) > 1})
        if repeated:
            raise QueryError(f"duplicate column names {', '.join(repeated)}: give them distinct aliases")
        rows = 20 if fmt == "table" and limit is None else limit
        batches = (result.limit(rows) if rows is not None else result).to_arrow_reader(BATCH_ROWS)
        if fmt == "table":
            return _show(batches.read_all(), truncate)
        if output is None:
            sys.stdout.flush()
            return _write(batches, fmt, sys.stdout.buffer)
        output = Path(output).absolute()
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("wb") as sink:
            return _write(batches, fmt, sink)
    except duckdb.Error as err:
        raise QueryError(_message(err)) from None


def _write(batches: pa.RecordBatchReader, fmt: str, sink: IO[bytes]) -> int:
    count = 0
    if fmt == "parquet":
        with pq.ParquetWriter(sink, batches.schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
                count += batch.num_rows
        return count
    if fmt == "json":
        for batch in batches:
            sink.write("".join(json.dumps(spark_json(row), separators=(",", ":")) + "\n"
                               for row in batch.to_pylist()).encode())
            count += batch.num_rows
        sink.flush()
        return count
    cells = pa.schema([pa.field(f.name, pa.string()) if _json_in_csv(f.type) else f for f in batches.schema])
    with pa_csv.CSVWriter(sink, cells) as writer:  # writes the header even when no row follows
        for batch in batches:
            writer.write_batch(pa.record_batch([_csv_cells(column) for column in batch.columns], schema=cells))
            count += batch.num_rows
    sink.flush()
    return count


def spark_json(value: Any) -> Any:
    """A value as Spark's JSON writer encodes it: bytes as base64, struct fields and columns that are null left
    out, maps (Arrow's lists of key-value pairs) as objects."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {key: spark_json(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        if value and all(isinstance(item, tuple) and len(item) == 2 for item in value):
            return {str(key): spark_json(item) for key, item in value}
        return [spark_json(item) for item in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _json_in_csv(kind: pa.DataType) -> bool:
    """Whether a CSV cell holds the value as text Spark's CSV export would: bytes (base64) and nested values (JSON)."""
    return pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_nested(kind)


def _csv_cells(column: pa.Array) -> pa.Array:
    if not _json_in_csv(column.type):
        return column
    return pa.array([_text(value, separators=(",", ":")) for value in column.to_pylist()], pa.string())


def _text(value: Any, separators: tuple[str, str] | None = None) -> str | None:
    """Bytes as base64, nested values as JSON (Spark's encoding), anything else as it prints."""
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(spark_json(value), separators=separators)
    return spark_json(value) if isinstance(value, bytes) else str(value)


def _show(table: pa.Table, truncate: int) -> int:
    """Spark's show(): a +---+ grid, cells cut to `truncate` characters (0: whole) and right-aligned when cut."""
    def text(value: Any) -> str:
        shown = "null" if value is None else _text(value)
        return shown if not truncate or len(shown) <= truncate else shown[:max(truncate - 3, 0)] + "..."

    header = table.schema.names
    rows = [[text(value) for value in row.values()] for row in table.to_pylist()]
    widths = [max([3, len(name), *(len(row[i]) for row in rows)]) for i, name in enumerate(header)]
    line = "+" + "+".join("-" * width for width in widths) + "+"
    align = (lambda cell, width: cell.rjust(width)) if truncate else (lambda cell, width: cell.ljust(width))
    print(line)
    for cells in (header, *rows):
        print("|" + "|".join(align(cell, width) for cell, width in zip(cells, widths)) + "|")
        if cells is header:
            print(line)
    print(line)
    return len(rows)


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _message(err: BaseException) -> str:
    """DuckDB's error without its "Parser Error: " style prefix, in one line."""
    line = first_line(err)
    return line.split(": ", 1)[1] if ": " in line else line
