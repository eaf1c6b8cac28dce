"""Resumability of the teacher stages across processes: `rate` in a child process (its own lake
and Derby metastore, tests/resume_child.py), SIGKILLed while a commit waits on a loopback judge,
then finished by `finelake run rate` in this process, whose catalog attaches the killed
process's Delta tables by their locations: all it resumes from is what the Delta logs hold."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobs import cli
from tests.conftest import set_flags
from tests.local_openai_server import LocalOpenAIServer
from tests.test_teacher import BUDGETS, TURNS, served

def committed_rows(table_folder: Path) -> int:
    """Rows added by the table's commits after its creation, read from the Delta log (no Spark)."""
    rows = 0
    for commit in sorted((table_folder / "_delta_log").glob("*.json"))[1:]:
        for line in commit.read_text().splitlines():
            add = json.loads(line).get("add")
            if add and add.get("stats"):
                rows += json.loads(add["stats"])["numRecords"]
    return rows


def attach(spark, warehouse: Path, prefix: str) -> None:
    """Every Delta table under `warehouse` (<schema>.db/<table>) as `<prefix><schema>.<table>` of this session's catalog."""
    for log in sorted(warehouse.glob("*.db/*/_delta_log")):
        table, schema = log.parent, log.parent.parent.name.removesuffix(".db")
        spark.sql(f"CREATE SCHEMA IF NOT EXISTS {prefix}{schema}")
        spark.sql(f"CREATE TABLE {prefix}{schema}.{table.name} USING DELTA LOCATION '{table}'")


COMMIT_ROWS = 2


def settled_count(judge: LocalOpenAIServer, quiet_s: float = 1.0) -> int:
    """The judge's request count once no request of the killed process is still being read: a request
    sent just before the kill can reach the server's handler thread after it, and would otherwise be
    counted against the resumed run."""
    count, since = len(judge.requests), time.monotonic()
    while time.monotonic() - since < quiet_s or judge.in_flight:
        time.sleep(0.05)
        if len(judge.requests) != count:
            count, since = len(judge.requests), time.monotonic()
    return count


def test_a_killed_run_loses_at_most_one_commit_and_regenerates_nothing(spark, base_overrides, tmp_path, capsys):
    """`rate` in a separate process on its own lake, killed (SIGKILL) while the commit after its first
    one waits on the judge; the CLI in this process finishes, in one commit. The judge's requests
    count every turn once plus at most the killed commit: teacher.commit_rows (2) rows."""
    scores = '{"formatting": 4, "relevance": 4, "visual_dependency": 3, "image_correspondence": 5}'
    lake = tmp_path / "lake"
    store = lake / "warehouse" / "gold.db" / "turn_ratings"
    with LocalOpenAIServer(reply=scores, delay_s=0.5) as judge:
        overrides = [o for o in base_overrides if not o.startswith("paths.lake=")] + [
            f"paths.lake={lake}", *BUDGETS, f"teacher.commit_rows={COMMIT_ROWS}", "rate.model=served_judge",
            f"teacher.models.served_judge={served('served-judge', judge.url, concurrency=1)}"]
        command = [sys.executable, "-m", "tests.resume_child", *overrides]
        first = subprocess.Popen(command, cwd=Path(__file__).parents[1], start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and first.poll() is None:
            stored = committed_rows(store) if store.is_dir() else 0
            if stored and len(judge.requests) > stored:  # a commit made, the next one in flight
                break
            time.sleep(0.1)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        stored = committed_rows(store)
        killed_requests = settled_count(judge)
        assert first.returncode == -signal.SIGKILL and 1 <= stored < TURNS
        attach(spark, lake / "warehouse", "resumed_")
        capsys.readouterr()
        assert cli.main(["run", "rate", *set_flags(*overrides, "catalog.schema_prefix=resumed_",
                                                   f"teacher.commit_rows={TURNS}")]) == 0
        printed = capsys.readouterr().out
        assert re.search(rf"wrote gold\.turn_ratings v\d+: \+{TURNS - stored} rows", printed), printed
    assert len(judge.requests) - killed_requests == TURNS - stored  # nothing stored was asked again
    assert killed_requests - stored <= COMMIT_ROWS  # lost: at most the commit in flight
    assert committed_rows(store) == TURNS
