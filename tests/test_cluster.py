"""Stages on a real Spark standalone cluster: a master and two workers on loopback started from pyspark's own
`spark-class`, jobs submitted with `spark-submit --master spark://...` exactly as the README tells a cluster user."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyspark
import pytest

from jobs.runtime.service import delta_packages
from tests.conftest import set_flags

pytestmark = pytest.mark.cluster
SPARK_HOME = Path(pyspark.__file__).parent
PROJECT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """(master URL, master log) of a master and two one-core workers, stopped at the end."""
    folder = tmp_path_factory.mktemp("cluster")
    environment = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "PYSPARK_PYTHON": sys.executable}
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    master_log = folder / "master.log"
    processes = [subprocess.Popen(
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
         "--webui-port", str(free_port())], stdout=master_log.open("w"), stderr=subprocess.STDOUT, env=environment)]
    for worker in range(2):
        processes.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", "1",
             "--memory", "2g", "--webui-port", str(free_port()), "--work-dir", str(folder / f"work{worker}")],
            stdout=(folder / f"worker{worker}.log").open("w"), stderr=subprocess.STDOUT, env=environment))
    deadline = time.monotonic() + 180
    while master_log.read_text().count("Registering worker") < 2:
        assert time.monotonic() < deadline, master_log.read_text()[-3000:]
        time.sleep(1)
    yield url, master_log
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(60)


def test_ingest_and_normalize_run_on_two_workers_as_the_readme_says(standalone, tmp_path, demo_root):
    url, master_log = standalone
    flags = set_flags(f"paths.lake={tmp_path / 'lake'}", f"paths.demo_sources={demo_root}", f"spark.master={url}",
                      "ingest.sources=[demo_cauldron]", "spark.conf.spark.executor.memory=1g")
    environment = {**os.environ, "SPARK_HOME": str(SPARK_HOME), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for stage, wrote in (("ingest", "wrote bronze.records v1: +10 rows"), ("normalize", "wrote silver.samples v1: +")):
        result = subprocess.run(
            [str(SPARK_HOME / "bin" / "spark-submit"), "--master", url, "--packages", delta_packages(),
             "--conf", f"spark.jars.ivySettings={PROJECT / 'conf' / 'ivysettings.xml'}",
             str(PROJECT / "jobs" / f"{stage}.py"), "--env", "local", *flags],
            capture_output=True, text=True, timeout=900, env=environment, cwd=PROJECT)
        assert result.returncode == 0 and wrote in result.stdout, (result.stdout + result.stderr)[-4000:]
    log = master_log.read_text()
    apps = re.findall(r"Launching executor (app-[\d-]+)/\d+ on worker (\S+)", log)
    assert len({app for app, _ in apps}) == 2, "one application per stage"
    assert all(len({worker for a, worker in apps if a == app}) == 2 for app, _ in apps), "executors on both workers"
