"""Stages on a real Spark standalone cluster: a master and two workers on loopback started from pyspark's own
`spark-class`, jobs submitted with `spark-submit --master spark://...` exactly as the README tells a cluster user."""

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyspark
import pytest

from jobs import cli
from jobs.runtime.service import delta_packages
from tests.conftest import attach, free_port, on_lake, set_flags

pytestmark = pytest.mark.cluster
SPARK_HOME = Path(pyspark.__file__).parent
PROJECT = Path(__file__).resolve().parents[1]


def start(spark_class: str, role: str, *arguments: str, log: Path) -> subprocess.Popen:
    """A master or worker JVM in a process group of its own: a worker's executors are its children, so killing the
    group is losing the machine."""
    environment = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "PYSPARK_PYTHON": sys.executable}
    return subprocess.Popen([spark_class, f"org.apache.spark.deploy.{role}", *arguments], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, env=environment, start_new_session=True)


@dataclass
class Standalone:
    url: str
    master_log: Path
    workers: list[subprocess.Popen]
    work_dirs: list[Path]


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """A master and two one-core workers, stopped at the end."""
    folder = tmp_path_factory.mktemp("cluster")
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    master_log = folder / "master.log"
    master = start(spark_class, "master.Master", "--host", "127.0.0.1", "--port", str(port),
                   "--webui-port", str(free_port()), log=master_log)
    work_dirs = [folder / f"work{worker}" for worker in range(2)]
    workers = [start(spark_class, "worker.Worker", url, "--host", "127.0.0.1", "--cores", "1", "--memory", "2g",
                     "--webui-port", str(free_port()), "--work-dir", str(work_dir), log=folder / f"{work_dir.name}.log")
               for work_dir in work_dirs]
    deadline = time.monotonic() + 180
    while master_log.read_text().count("Registering worker") < 2:
        assert time.monotonic() < deadline, master_log.read_text()[-3000:]
        time.sleep(1)
    yield Standalone(url, master_log, workers, work_dirs)
    for process in (master, *workers):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in (master, *workers):
        process.wait(60)


def submit(cluster: Standalone, stage: str, lake: Path, demo_root: Path) -> subprocess.Popen:
    """`spark-submit --master spark://... jobs/<stage>.py` as the README's "Running on a cluster" says."""
    flags = set_flags(f"paths.lake={lake}", f"paths.demo_sources={demo_root}", f"spark.master={cluster.url}",
                      "ingest.sources=[demo_cauldron]", "spark.conf.spark.executor.memory=1g")
    environment = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.Popen(
        [str(SPARK_HOME / "bin" / "spark-submit"), "--master", cluster.url, "--packages", delta_packages(),
         "--conf", f"spark.jars.ivySettings={PROJECT / 'conf' / 'ivysettings.xml'}",
         str(PROJECT / "jobs" / f"{stage}.py"), "--env", "local", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment, cwd=PROJECT)


def finished(job: subprocess.Popen, wrote: str) -> str:
    """The job's stderr, once it exited 0 having printed `wrote`."""
    out, err = job.communicate(timeout=900)
    assert job.returncode == 0 and wrote in out, (out + err)[-4000:]
    return err


def python_daemon_started(group: int) -> bool:
    """Whether an executor in the process group has started PySpark's Python worker daemon (a group of its own): it
    does so for its first task that runs Python (a UDF of the stage), so a kill then loses that task in flight."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"pyspark.daemon" in Path(f"/proc/{pid}/cmdline").read_bytes():
                parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                if os.getpgid(parent) == group:
                    return True
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue
    return False


def tasks_in_flight(work_dir: Path, before: set[Path]) -> list[str]:
    """The tasks (TID) an executor of a new application in this work dir started and never finished."""
    log = "".join(path.read_text(errors="ignore")
                  for app in set(work_dir.glob("app-*")) - before for path in app.glob("*/stderr"))
    done = set(re.findall(r"Finished task \S+ in stage \S+ \(TID (\d+)\)", log))
    return [tid for tid in re.findall(r"Running task \S+ in stage \S+ \(TID (\d+)\)", log) if tid not in done]


def test_stages_run_on_two_workers_and_a_lost_worker_changes_no_row(standalone, spark, base_overrides, tmp_path,
                                                                     demo_root, capsys):
    """ingest, then normalize submitted as the README says, each an application with executors on both workers.
    Once normalize's executor on the second worker runs a Python task, that worker and its executor are SIGKILLed:
    the task is lost in flight, the job finishes on the other worker, and silver.samples and silver.images equal,
    key for key and value for value, what normalize writes from the same bronze table in this process's local Spark."""
    lake = tmp_path / "lake"
    finished(submit(standalone, "ingest", lake, demo_root), "wrote bronze.records v1: +10 rows")
    doomed, work_dir = standalone.workers[1], standalone.work_dirs[1]
    before = set(work_dir.glob("app-*"))
    job = submit(standalone, "normalize", lake, demo_root)
    deadline = time.monotonic() + 600
    while not (python_daemon_started(doomed.pid) and tasks_in_flight(work_dir, before)):
        assert job.poll() is None and time.monotonic() < deadline, "normalize ended before a UDF ran on the worker"
        time.sleep(0.1)
    os.killpg(doomed.pid, signal.SIGKILL)
    log = finished(job, "wrote silver.samples v1: +")
    assert "Lost executor" in log, log[-3000:]
    assert tasks_in_flight(work_dir, before), "the killed executor was running a task"
    apps = re.findall(r"Launching executor (app-[\d-]+)/\d+ on worker (\S+)", standalone.master_log.read_text())
    assert len({app for app, _ in apps}) == 2, "one application per stage"
    assert all(len({worker for a, worker in apps if a == app}) == 2 for app, _ in apps), "executors on both workers"

    attach(spark, lake / "warehouse", "cluster_")
    attach(spark, lake / "warehouse", "reference_", schema_glob="bronze")
    local = [*on_lake(base_overrides, lake), "catalog.schema_prefix=reference_", "ingest.sources=[demo_cauldron]"]
    assert cli.main(["run", "normalize", *set_flags(*local)]) == 0
    capsys.readouterr()
    for table in ("samples", "images"):
        output, reference = (spark.table(f"{prefix}silver.{table}").drop("normalized_at", "run_id")
                             for prefix in ("cluster_", "reference_"))
        assert reference.count() > 0
        assert output.exceptAll(reference).count() == 0 and reference.exceptAll(output).count() == 0, table
