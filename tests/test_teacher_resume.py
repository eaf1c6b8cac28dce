"""Resumability of the teacher stages across processes: `rate` in a child process (its own lake
and Derby metastore, tests/resume_child.py), SIGKILLed while a commit waits on a loopback judge,
then finished by `finelake run rate` in a second process, which finds the first one's tables by
their names in the lake's metastore."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import FINELAKE, set_flags
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


COMMIT_ROWS = 2


def test_a_killed_run_loses_at_most_one_commit_and_regenerates_nothing(base_overrides, tmp_path):
    """`rate` in a separate process on its own lake, killed (SIGKILL) while the commit after its first
    one waits on the judge; the CLI in a second process finishes, in one commit. The judge's
    requests count every turn once plus at most the killed commit: teacher.commit_rows (2) rows."""
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
        killed_requests = len(judge.requests)
        assert first.returncode == -signal.SIGKILL and 1 <= stored < TURNS
        resume = [FINELAKE, "run", "rate", *set_flags(*overrides, f"teacher.commit_rows={TURNS}")]
        second = subprocess.run(resume, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stderr[-3000:]
        assert re.search(rf"wrote gold\.turn_ratings v\d+: \+{TURNS - stored} rows", second.stdout), second.stdout
    assert len(judge.requests) - killed_requests == TURNS - stored  # nothing stored was asked again
    assert killed_requests - stored <= COMMIT_ROWS  # lost: at most the commit in flight
    assert committed_rows(store) == TURNS
