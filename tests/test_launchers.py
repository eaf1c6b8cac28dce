"""The launchers a user adapts, checked as far as is possible offline: databricks.yml (an Asset Bundle)
and scripts/dataproc_submit.sh. Every command line they run must parse with the `finelake` CLI, name a
real stage, and set only config keys that exist (the validation `--set` gets)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tomllib

import pytest
import yaml

from jobs import registry
from jobs.cli import parser
from jobs.runtime.config import ConfigError, load_config
from jobs.runtime.stage import job_parser
from tests.conftest import PROJECT

GPU_STAGES = {"embed", "caption", "rate", "distill", "verify", "route", "difficulty"}


def command_problem(argv: list[str]) -> str | None:
    """Why `finelake <argv>` would fail before doing anything (None: it parses and its config loads)."""
    try:
        args = parser().parse_args(argv)
        if args.command == "run":
            args = job_parser(args.stage, "").parse_args(args.stage_args)
        load_config(args.env, args.overrides, args.conf, check_sources=False)
    except SystemExit:
        return f"finelake {shlex.join(argv)}: the command line does not parse"
    except ConfigError as err:
        return str(err)
    return None


def bundle() -> dict:
    """databricks.yml with every ${var.x} replaced by its default, as `databricks bundle validate` resolves it."""
    text = (PROJECT / "databricks.yml").read_text()
    defaults = {name: str(v["default"]) for name, v in yaml.safe_load(text)["variables"].items()}
    resolved = re.sub(r"\$\{var\.([a-z_]+)\}", lambda m: defaults[m.group(1)], text)
    assert "${" not in resolved, "a variable without a default"
    return yaml.safe_load(resolved)


def test_the_check_catches_what_a_typo_breaks():
    assert command_problem(["run", "publish", "--env", "databricks"]) is None
    assert "not parse" in command_problem(["run", "pubish", "--env", "databricks"])
    assert "unknown key" in command_problem(["run", "publish", "--env", "databricks", "--set", "publish.polcy.x=1"])
    assert "not parse" in command_problem(["export", "--format", "csv", "--to", "x"])


def test_bundle_runs_every_stage_on_its_cluster_through_the_finelake_entry_point():
    doc = bundle()
    assert doc["bundle"]["name"] and {"dev", "prod"} <= set(doc["targets"])
    assert [a["type"] for a in doc["artifacts"].values()] == ["whl"]
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    (job,) = doc["resources"]["jobs"].values()
    clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
    assert all(c["data_security_mode"] == "SINGLE_USER" for c in clusters.values())
    assert clusters["gpu"]["spark_conf"]["spark.executor.resource.gpu.amount"] == "1"
    tasks = {t["task_key"]: t for t in job["tasks"]}
    order = [s.name for s in registry.STAGES]
    stages = {}
    for key, task in tasks.items():
        wheel = task["python_wheel_task"]
        assert wheel["package_name"] == project["name"] and wheel["entry_point"] in project["scripts"]
        assert any("whl" in library for library in task["libraries"])
        problem = command_problem([str(p) for p in wheel["parameters"]])
        assert problem is None, f"task {key}: {problem}"
        for dependency in task.get("depends_on", []):
            assert dependency["task_key"] in tasks, f"task {key} depends on a task that does not exist"
        if wheel["parameters"][0] == "run":
            stage = wheel["parameters"][1]
            stages[stage] = task
            assert task["job_cluster_key"] == ("gpu" if stage in GPU_STAGES else "cpu"), key
            earlier = [tasks[d["task_key"]]["python_wheel_task"]["parameters"][1] for d in task.get("depends_on", [])]
            assert all(order.index(e) < order.index(stage) for e in earlier), f"{key} runs before what it reads"
    assert set(stages) == set(order)  # every stage, once
    assert any(t["python_wheel_task"]["parameters"][0] == "export" for t in tasks.values())


def dataproc(*argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(PROJECT / "scripts" / "dataproc_submit.sh"), *argv], cwd=PROJECT,
                          env={**os.environ, "DRY_RUN": "1", "WHEEL": "dist/finelake-0.1.0-py3-none-any.whl", **env},
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("argv", [["run", "ingest"], ["run", "embed"], ["run", "publish"],
                                  ["export", "--format", "webdataset", "--to", "gs://b/exports/wds"]])
def test_dataproc_script_submits_a_finelake_command_with_delta_and_gpus_where_needed(argv):
    done = dataproc(*argv)
    assert done.returncode == 0, done.stderr
    words = shlex.split(done.stdout)
    assert words[:5] == ["gcloud", "dataproc", "batches", "submit", "pyspark"]
    properties = dict(p.split("=", 1) for p in words[words.index("--properties") + 1].split(","))
    assert re.fullmatch(r"io\.delta:delta-spark_2\.13:\d+\.\d+\.\d+", properties["spark.jars.packages"])
    assert properties["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    assert ("spark.executor.resource.gpu.amount" in properties) == (argv[0] == "run" and argv[1] in GPU_STAGES)
    assert words[words.index("--py-files") + 1].endswith(".whl")
    command = words[words.index("--") + 1:]
    assert command[:len(argv)] == argv and command_problem(command) is None
    assert (PROJECT / "scripts" / words[5].rsplit("/", 1)[-1]).is_file()


def test_dataproc_script_without_a_command_prints_its_usage():
    done = dataproc()
    assert done.returncode == 2 and "finelake" in done.stdout
