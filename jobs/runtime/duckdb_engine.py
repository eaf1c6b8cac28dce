"""`finelake sql --engine duckdb`: read-only queries answered without a JVM, in a second or two.

Every Delta table under the lake's warehouse folder is read at its latest version (the published
one: a batch that failed its audit was never committed) by delta-rs (`deltalake`) as an Arrow
dataset, and shown to an in-memory DuckDB as a view named as in Spark (`silver.samples`). No
metastore is opened, so it answers while a job holds the lake and without `finelake serve`. The
dialect is DuckDB's: plain SELECTs read the same, functions differ (`list_contains`, not
`array_contains`). Exports and streamed rows are written by DuckDB itself (COPY), never collected.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
from deltalake import DeltaTable

from jobs.runtime.query import QueryError, first_line

COPY_FORMATS = {"csv": "FORMAT csv, HEADER", "json": "FORMAT json", "parquet": "FORMAT parquet"}
# DuckDB's types a CSV cell cannot hold as they are: bytes become base64, nested values JSON (as Spark's export)
NESTED_TYPES = ("STRUCT", "MAP", "UNION")


def connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view `<schema>.<table>` over every Delta table of `warehouse`."""
    connection = duckdb.connect()
    for log in sorted(warehouse.glob("*.db/*/_delta_log")):
        table, schema = log.parent, log.parent.parent.name.removesuffix(".db")
        try:
            dataset = DeltaTable(str(table)).to_pyarrow_dataset()
        except Exception as err:  # delta-rs raises its own error types, one per protocol problem
            raise QueryError(f"{schema}.{table.name}: the duckdb engine cannot read it ({first_line(err)}); "
                             "use --engine spark") from None
        hidden = f"delta_{schema}_{table.name}"
        connection.register(hidden, dataset)
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        connection.execute(f'CREATE VIEW "{schema}"."{table.name}" AS SELECT * FROM "{hidden}"')
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
        truncate: int) -> int | None:
    """Print or export the query's rows as `finelake sql` does with Spark; the rows exported (None for a table)."""
    statement = select_statement(query)
    try:
        result = connection.sql(statement)
        if fmt == "table":
            rows = 20 if limit is None else limit
            result.limit(rows).show(max_col_width=truncate or None, max_rows=rows)
            return None
        columns = ", ".join(_cell(name, str(kind)) if fmt == "csv" else f'"{name}"'
                            for name, kind in zip(result.columns, result.types))
        bounded = f" LIMIT {int(limit)}" if limit is not None else ""
        target = "/dev/stdout" if output is None else str(Path(output).absolute())
        if output is not None:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        copied = connection.execute(f"COPY (SELECT {columns} FROM ({statement}) AS result{bounded}) "
                                    f"TO '{_quoted(target)}' ({COPY_FORMATS[fmt]})").fetchone()
        return int(copied[0])
    except duckdb.Error as err:
        raise QueryError(_message(err)) from None


def _cell(name: str, kind: str) -> str:
    column = f'"{name}"'
    if kind == "BLOB":
        return f'base64({column}) AS "{name}"'
    if kind.endswith("]") or kind.startswith(NESTED_TYPES):
        return f'CAST(to_json({column}) AS VARCHAR) AS "{name}"'
    return column


def _quoted(path: str) -> str:
    return path.replace("'", "''")


def _message(err: BaseException) -> str:
    """DuckDB's error without its "Parser Error: " style prefix, in one line."""
    return first_line(err).split(": ", 1)[-1] if ": " in first_line(err) else first_line(err)
