"""Resumability of the teacher stages across processes: `distill` in a child process (its own lake
and Derby metastore, tests/resume_child.py), SIGKILLed while a commit waits on a loopback teacher,
then finished by `finelake run distill` in this process, whose catalog attaches the killed
process's Delta tables by their locations: all it resumes from is what the Delta logs hold."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from jobs import cli, registry
from tests.conftest import attach, on_lake, set_flags
from tests.local_openai_server import LocalOpenAIServer, text_of
from tests.test_teacher import BUDGETS, TURNS, served, write_silver

def committed_rows(table_folder: Path) -> int:
    """Rows added by the table's commits after its creation, read from the Delta log (no Spark)."""
    rows = 0
    for commit in sorted((table_folder / "_delta_log").glob("*.json"))[1:]:
        for line in commit.read_text().splitlines():
            add = json.loads(line).get("add")
            if add and add.get("stats"):
                rows += json.loads(add["stats"])["numRecords"]
    return rows


COMMIT_ROWS = 2


def settled_count(server: LocalOpenAIServer, quiet_s: float = 1.0) -> int:
    """The server's request count once no request of the killed process is still being read: a request
    sent just before the kill can reach the server's handler thread after it, and would otherwise be
    counted against the resumed run."""
    count, since = len(server.requests), time.monotonic()
    while time.monotonic() - since < quiet_s or server.in_flight:
        time.sleep(0.05)
        if len(server.requests) != count:
            count, since = len(server.requests), time.monotonic()
    return count


def answer_of(body: dict) -> str:
    """A well-formed reasoning reply that differs with the prompt, so a row's values name the turn it answers."""
    prompt = text_of(body["messages"][-1]["content"])
    return f"<think>Prompt {hashlib.md5(prompt.encode()).hexdigest()[:12]}.</think>\nAnswer: {len(prompt) % 97}"


def teacher_overrides(url: str) -> list[str]:
    return [*BUDGETS, "distill.model=served_teacher",
            f"teacher.models.served_teacher={served('served-teacher', url, concurrency=1)}"]


def comparable(table):
    """The table's rows without what differs from run to run by design (when and by which run)."""
    return table.drop("generated_at", "run_id")


def test_a_driver_killed_mid_distill_resumes_to_the_clean_run_s_table(spark, make_lake, base_overrides, tmp_path,
                                                                      capsys):
    """`distill` in a separate process on its own lake, killed (SIGKILL, the driver and its Python workers) while
    the commit after its first one waits on the teacher; the CLI in this process finishes in one commit. The
    teacher's requests count every turn once plus at most the killed commit (teacher.commit_rows rows), and
    gold.reasoning then equals, row for row and value for value, a clean uninterrupted run's."""
    lake = tmp_path / "lake"
    store = lake / "warehouse" / "gold.db" / "reasoning"
    with LocalOpenAIServer(reply=answer_of, delay_s=0.5) as teacher:
        overrides = [*on_lake(base_overrides, lake), *teacher_overrides(teacher.url),
                     f"teacher.commit_rows={COMMIT_ROWS}"]
        command = [sys.executable, "-m", "tests.resume_child", "distill", *overrides]
        first = subprocess.Popen(command, cwd=Path(__file__).parents[1], start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and first.poll() is None:
            stored = committed_rows(store) if store.is_dir() else 0
            if stored and len(teacher.requests) > stored:  # a commit made, the next one in flight
                break
            time.sleep(0.1)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        stored = committed_rows(store)
        killed_requests = settled_count(teacher)
        assert first.returncode == -signal.SIGKILL and 1 <= stored < TURNS
        attach(spark, lake / "warehouse", "resumed_")
        capsys.readouterr()
        assert cli.main(["run", "distill", *set_flags(*overrides, "catalog.schema_prefix=resumed_",
                                                      f"teacher.commit_rows={TURNS}")]) == 0
        printed = capsys.readouterr().out
        assert re.search(rf"wrote gold\.reasoning v\d+: \+{TURNS - stored} rows", printed), printed
        resumed_requests = len(teacher.requests) - killed_requests

        clean = make_lake("clean_distill_")
        write_silver(clean)
        assert registry.BY_NAME["distill"].main(clean.flags(*teacher_overrides(teacher.url))) == 0
    print(f"teacher requests: killed run {killed_requests} ({stored} rows stored), resumed run {resumed_requests}")
    assert resumed_requests == TURNS - stored  # nothing stored was asked again
    assert killed_requests - stored <= COMMIT_ROWS  # lost: at most the commit in flight
    assert committed_rows(store) == TURNS
    resumed, reference = comparable(spark.table("resumed_gold.reasoning")), comparable(clean.table("gold", "reasoning"))
    assert reference.count() == TURNS and reference.where("status = 'ok'").count() == TURNS
    assert resumed.exceptAll(reference).count() == 0 and reference.exceptAll(resumed).count() == 0
