"""`finelake sql`: read-only queries over the lake, printed as a table or exported as CSV, JSON or Parquet.

A query is parsed before it runs: a syntax error, an unknown table or column, and a statement that
would change the lake (unless writes are allowed) end with one line naming the problem. Exports
are written by one executor task into a single file (never collected on the driver); printing to
the terminal streams rows through the driver, a partition at a time.
"""

from __future__ import annotations

import csv
import re
import shutil
import sys
import tempfile
from pathlib import Path

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, BinaryType, MapType, StructType

FORMATS = ("table", "csv", "json", "parquet")
# statements a query may start with; anything else (INSERT, MERGE, CREATE, DROP, SET, ...) changes something
READ_STATEMENTS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "VALUES", "TABLE", "FROM")
# nodes of a parsed plan that write, whatever the statement starts with (WITH ... INSERT INTO ...)
WRITE_PLANS = ("Insert", "Merge", "Update", "Delete", "Create", "Replace", "Drop", "Alter", "Truncate", "Overwrite",
               "AppendData", "Cache", "Refresh", "Set", "Reset", "Add", "Use")


class QueryError(ValueError):
    """A query that cannot run, in one line."""


def first_line(err: BaseException | str) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def parse(spark: SparkSession, query: str, allow_writes: bool = False) -> DataFrame:
    """The query's DataFrame, analysed (tables and columns resolved) but not run."""
    keyword = _first_keyword(query)
    try:
        plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(query)
    except Exception as err:  # py4j wraps Spark's ParseException
        raise QueryError(f"syntax error: {_java_message(err)}") from None
    nodes = re.findall(r"^[\s|:+\-]*'?([A-Za-z]+)", str(plan.treeString()), re.MULTILINE)
    if not allow_writes and (keyword not in READ_STATEMENTS or any(node.startswith(WRITE_PLANS) for node in nodes)):
        raise QueryError(f"`{keyword or query[:20]}` statements change the lake; finelake sql only reads "
                         "(pass --allow-writes to run it)")
    try:
        return spark.sql(query)
    except PySparkException as err:
        raise QueryError(first_line(err)) from None


def _first_keyword(query: str) -> str:
    words = re.sub(r"--[^\n]*|/\*.*?\*/", " ", query, flags=re.DOTALL).replace("(", " ").split()
    return words[0].upper() if words else ""


def _java_message(err: Exception) -> str:
    java = getattr(err, "java_exception", None)
    return first_line(str(java.getMessage()) if java is not None else err)


def flat(frame: DataFrame) -> DataFrame:
    """Binary columns as base64 and nested ones as JSON text: what a CSV cell can hold."""
    columns = []
    for field in frame.schema.fields:
        column = F.col(f"`{field.name}`")
        if isinstance(field.dataType, BinaryType):
            column = F.base64(column)
        elif isinstance(field.dataType, (ArrayType, MapType, StructType)):
            column = F.to_json(column)
        columns.append(column.alias(field.name))
    return frame.select(*columns)


def export(frame: DataFrame, fmt: str, output: Path) -> int:
    """Write `frame` to the single file `output` (one task writes it) and return its row count."""
    output = Path(output).absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".finelake-sql-", dir=output.parent))
    try:
        out = (flat(frame) if fmt == "csv" else frame).coalesce(1).write.mode("overwrite")
        target = str(staging / "result")
        if fmt == "csv":
            out.option("header", True).option("escape", '"').csv(target)
        elif fmt == "json":
            out.json(target)
        else:
            out.parquet(target)
        parts = sorted(Path(target).glob("part-*"))
        if len(parts) != 1:
            raise QueryError(f"expected one file from the export, found {len(parts)}")
        shutil.move(str(parts[0]), output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return spark_rows(frame.sparkSession, fmt, output)


def spark_rows(spark: SparkSession, fmt: str, path: Path) -> int:
    reader = spark.read.option("header", True) if fmt == "csv" else spark.read
    return getattr(reader, fmt)(str(path)).count()


def stream(frame: DataFrame, fmt: str, limit: int | None) -> int:
    """Print rows as CSV (a header first) or JSON lines (Spark's encoding, as in an export), a
    partition at a time; the count printed."""
    out = sys.stdout
    frame = frame.limit(limit) if limit is not None else frame
    count = 0
    if fmt == "json":
        for line in frame.toJSON().toLocalIterator():
            out.write(line + "\n")
            count += 1
        return count
    rows = flat(frame)
    writer = csv.writer(out)
    writer.writerow(rows.columns)
    for row in rows.toLocalIterator():
        writer.writerow(["" if v is None else v for v in row])
        count += 1
    return count
