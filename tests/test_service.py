"""`finelake serve` on a lake of its own: a job and `finelake sql` run at the same time against it, beeline
reads the job's table over JDBC, and stopping the service stops both of its processes."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pyspark

from tests.conftest import FINELAKE, set_flags


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_a_served_lake_takes_a_job_sql_and_beeline_at_once(tmp_path, demo_root):
    lake = tmp_path / "lake"
    flags = set_flags(f"paths.lake={lake}", f"paths.demo_sources={demo_root}", "spark.master=local[1]",
                      "spark.conf.spark.driver.memory=1g")
    jdbc, metastore = free_port(), free_port()
    server = subprocess.Popen([FINELAKE, "serve", "--jdbc-port", str(jdbc), "--metastore-port", str(metastore), *flags],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 400
        while not (lake / "service.json").exists():
            assert server.poll() is None, server.stdout.read()
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(1)
        job = subprocess.Popen([FINELAKE, "run", "ingest", *flags, "--set", "ingest.sources=[demo_cauldron]"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        query = subprocess.run([FINELAKE, "sql", "SHOW DATABASES", "--format", "csv", *flags], capture_output=True,
                               text=True, timeout=600)
        assert query.returncode == 0 and "default" in query.stdout.split(), query.stderr[-2000:]
        output, _ = job.communicate(timeout=600)
        assert job.returncode == 0 and "wrote bronze.records v1: +10 rows" in output, output[-3000:]
        spark_home = Path(pyspark.__file__).parent
        beeline = subprocess.run(
            [str(spark_home / "bin" / "beeline"), "-u", f"jdbc:hive2://127.0.0.1:{jdbc}/default", "--silent=true",
             "--outputformat=csv2", "-e", "SELECT source, count(*) AS n FROM bronze.records GROUP BY source"],
            capture_output=True, text=True, timeout=300, env={**os.environ, "SPARK_HOME": str(spark_home)})
        assert "demo_cauldron,10" in beeline.stdout.split(), beeline.stdout + beeline.stderr[-2000:]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(120)
    assert server.returncode == 0
    assert not (lake / "service.json").exists() and not listening(jdbc) and not listening(metastore)
