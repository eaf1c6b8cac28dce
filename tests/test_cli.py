"""The finelake command: help and config errors in a fresh process, run/sql/tables in this one (tables found
by name by another process: tests/test_teacher_resume.py)."""

import contextlib
import io
import json
import os
import re
import subprocess

import pandas as pd
import pytest

from jobs import cli
from tests.conftest import FINELAKE, set_flags


def test_help_matches_the_commands():
    result = subprocess.run([FINELAKE, "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("run", "sql", "tables", "demo"):
        assert command in result.stdout
    stage_help = subprocess.run([FINELAKE, "run", "ingest", "--help"], capture_output=True, text=True)
    assert "--set KEY=VALUE" in stage_help.stdout and "--env {local,databricks,dataproc}" in stage_help.stdout


def test_bad_config_exits_2_and_names_the_key(tmp_path, demo_root):
    flags = set_flags(f"paths.lake={tmp_path}", f"paths.demo_sources={demo_root}", "normalize.image.max_side=huge")
    result = subprocess.run([FINELAKE, "run", "ingest", *flags], capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    assert "--set normalize.image.max_side=huge: normalize.image.max_side" in result.stderr


@pytest.fixture(scope="module")
def ingested(make_lake) -> tuple[list[str], str]:
    """The flags of a lake that `finelake run ingest` wrote demo_cauldron's 10 records into, and what it printed."""
    flags = make_lake("clirun_").flags("ingest.sources=[demo_cauldron]")
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert cli.main(["run", "ingest", *flags]) == 0
    return flags, printed.getvalue()


def test_a_stage_run_from_the_cli_is_queried_with_sql_and_exported(ingested, capsys, tmp_path):
    """`finelake run` then `finelake sql` by table name (across processes: tests/test_teacher_resume.py);
    exports that pandas reads with the table's rows, nested values and all; writes refused."""
    flags, wrote = ingested
    assert "demo_cauldron" in wrote and "wrote bronze.records v1: +10 rows" in wrote, wrote
    query = "SELECT source, count(*) AS n FROM clirun_bronze.records GROUP BY source"
    assert cli.main(["sql", query, *flags]) == 0
    assert re.search(r"\|\s*demo_cauldron\s*\|\s*10\s*\|", answer := capsys.readouterr().out), answer

    table = "clirun_bronze.records"
    for fmt, read in (("csv", pd.read_csv), ("json", lambda path: pd.read_json(path, lines=True)),
                      ("parquet", pd.read_parquet)):
        output = tmp_path / f"records.{fmt}"
        assert cli.main(["sql", f"SELECT * FROM {table}", "--format", fmt, "--output", str(output), *flags]) == 0
        assert f"wrote 10 rows to {output}" in capsys.readouterr().err
        frame = read(output)
        assert len(frame) == 10 and "source" in frame.columns and set(frame["source"]) == {"demo_cauldron"}, fmt
    assert cli.main(["sql", f"SELECT * FROM {table} ORDER BY 1", "--format", "json", "--limit", "3", *flags]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(json.loads(line)["source"] == "demo_cauldron" for line in lines)
    assert cli.main(["sql", f"SELECT source FROM {table}", "--format", "csv", *flags]) == 0
    assert capsys.readouterr().out.split() == ["source"] + ["demo_cauldron"] * 10

    for statement in (f"INSERT INTO {table} SELECT * FROM {table}", f"DROP TABLE {table}",
                      f"WITH again AS (SELECT * FROM {table}) INSERT INTO {table} SELECT * FROM again"):
        assert cli.main(["sql", statement, *flags]) == 2
        err = capsys.readouterr().err
        assert "finelake sql only reads" in err and len(err.strip().splitlines()) == 1, err
    assert cli.main(["sql", f"SELECT count(*) AS n FROM {table}", "--format", "csv", *flags]) == 0
    assert capsys.readouterr().out.split() == ["n", "10"], "the refused statements changed nothing"


def test_the_duckdb_engine_answers_like_spark_without_a_jvm_while_this_process_holds_the_lake(ingested, tmp_path,
                                                                                             capfd):
    """`--engine duckdb` in a fresh process on this session's lake (its metastore held here): the same CSV
    export as Spark's, cell for cell; JSON lines and Parquet that pandas reads; a printed table; one-line
    errors for writes, syntax and unknown tables."""
    flags, _ = ingested
    query = "SELECT sample_id, source, record, images FROM clirun_bronze.records ORDER BY sample_id"
    by_spark, by_duckdb = tmp_path / "spark.csv", tmp_path / "duckdb.csv"
    assert cli.main(["sql", query, "--format", "csv", "--output", str(by_spark), *flags]) == 0
    duck = subprocess.run([FINELAKE, "sql", query, "--engine", "duckdb", "--format", "csv", "--output", str(by_duckdb),
                           *flags], capture_output=True, text=True, timeout=300)
    assert duck.returncode == 0 and f"wrote 10 rows to {by_duckdb}" in duck.stderr, duck.stderr
    pd.testing.assert_frame_equal(pd.read_csv(by_duckdb), pd.read_csv(by_spark))  # nested bytes as base64 in both
    capfd.readouterr()

    engine = ["--engine", "duckdb", *flags]
    for fmt, read in (("json", lambda path: pd.read_json(path, lines=True)), ("parquet", pd.read_parquet)):
        output = tmp_path / f"records.{fmt}"
        assert cli.main(["sql", "SELECT * FROM clirun_bronze.records", "--format", fmt, "--output", str(output),
                         *engine]) == 0
        assert len(frame := read(output)) == 10 and set(frame["source"]) == {"demo_cauldron"}, fmt
    assert cli.main(["sql", "SELECT source, count(*) AS n FROM clirun_bronze.records GROUP BY source", *engine]) == 0
    assert re.search(r"\|\s*demo_cauldron\s*\|\s*10\s*\|", shown := capfd.readouterr().out), shown
    assert cli.main(["sql", "SELECT record FROM clirun_bronze.records", "--truncate", "12", "--limit", "2",
                     *engine]) == 0
    cells = [line.strip("|") for line in capfd.readouterr().out.splitlines() if line.startswith("|")][1:]
    assert len(cells) == 2 and all(len(cell) == 12 and cell.endswith("...") for cell in cells), cells
    assert cli.main(["sql", "SELECT source, count(*) AS n FROM clirun_bronze.records GROUP BY source;", "--format",
                     "csv", *engine]) == 0
    assert capfd.readouterr().out.split() == ['"source","n"', '"demo_cauldron",10']
    for statement, expected in (("INSERT INTO clirun_bronze.records SELECT * FROM clirun_bronze.records", "only reads"),
                                ("SELEC 1", "syntax error"),
                                ("SELECT * FROM clirun_bronze.nothing_here", "nothing_here"),
                                ("SELECT 1 AS a, 2 AS a", "duplicate column names a")):
        assert cli.main(["sql", statement, *engine]) == 2
        err = capfd.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err
    assert cli.main(["sql", "SELECT 1", "--allow-writes", *engine]) == 2
    assert "--allow-writes needs --engine spark" in capfd.readouterr().err


def test_sql_errors_are_one_line_and_a_query_needs_no_ingest_sources(make_lake, capsys):
    flags = make_lake("clirun_").flags("ingest.sources=[no_such_source]")
    for query, expected in (("SELEC 1", "syntax error"), ("SELECT * FROM clirun_bronze.nothing_here", "nothing_here"),
                            ("SELECT nope FROM VALUES (1) AS t(x)", "nope")):
        assert cli.main(["sql", query, *flags]) == 2
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1, err
    assert cli.main(["sql", "SELECT 1 AS one", "--format", "parquet", *flags]) == 2
    assert "--format parquet needs --output PATH" in capsys.readouterr().err
    assert cli.main(["sql", "SELECT 1 AS one", "--format", "json", *flags]) == 0  # ingest.sources is not checked
    assert json.loads(capsys.readouterr().out) == {"one": 1}
    assert cli.main(["run", "ingest", *flags]) == 2  # a stage still checks it
    assert "no_such_source" in capsys.readouterr().err


def test_tables_and_sql_errors_in_process(make_lake, capsys):
    lake = make_lake("cli_")
    flags = lake.flags()
    assert cli.main(["tables", *flags]) == 0
    listing = capsys.readouterr().out
    assert "cli_silver.samples" in listing and "(not created yet)" in listing
    assert cli.main(["sql", "SELECT nope FROM cli_bronze.records", *flags]) == 2
    assert "cli_bronze" in capsys.readouterr().err


def test_a_process_on_a_lake_another_one_holds_is_refused_in_one_line(base_overrides):
    """This test process holds its lake's embedded metastore (conftest's session); a second process
    on the same lake says who holds it, in one line, and starts no JVM."""
    result = subprocess.run([FINELAKE, "sql", "SELECT 1", *set_flags(*base_overrides)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"is in use by process {os.getpid()}" in result.stderr and "pytest" in result.stderr, result.stderr
    assert "finelake serve" in result.stderr and "--engine duckdb" in result.stderr
