"""The finelake command: help and config errors in a fresh process, run/sql/tables in this one (tables found
by name by another process: tests/test_teacher_resume.py)."""

import re
import subprocess

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


def test_a_stage_run_from_the_cli_is_queried_with_sql(make_lake, capsys):
    """`finelake run` then `finelake sql` by table name (across processes: tests/test_teacher_resume.py)."""
    flags = make_lake("clirun_").flags("ingest.sources=[demo_cauldron]")
    assert cli.main(["run", "ingest", *flags]) == 0
    assert "demo_cauldron" in (wrote := capsys.readouterr().out) and "wrote bronze.records v1: +10 rows" in wrote, wrote
    query = "SELECT source, count(*) AS n FROM clirun_bronze.records GROUP BY source"
    assert cli.main(["sql", query, *flags]) == 0
    assert re.search(r"\|\s*demo_cauldron\s*\|\s*10\s*\|", answer := capsys.readouterr().out), answer


def test_tables_and_sql_errors_in_process(make_lake, capsys):
    lake = make_lake("cli_")
    flags = lake.flags()
    assert cli.main(["tables", *flags]) == 0
    listing = capsys.readouterr().out
    assert "cli_silver.samples" in listing and "(not created yet)" in listing
    assert cli.main(["sql", "SELECT nope FROM cli_bronze.records", *flags]) == 2
    assert "cli_bronze" in capsys.readouterr().err
