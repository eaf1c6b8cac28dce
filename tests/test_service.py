"""`finelake serve` on a lake of its own: a job and `finelake sql` run at the same time against it, then two
different stages at once (normalize reading the table ingest appends to), beeline reads their tables over JDBC,
and stopping the service stops both of its processes."""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pyspark

from tests.conftest import FINELAKE, free_port, set_flags


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def beeline(port: int, query: str) -> list[str]:
    """The csv2 lines (header first) of `query` run by the pyspark wheel's beeline over JDBC."""
    spark_home = Path(pyspark.__file__).parent
    result = subprocess.run(
        [str(spark_home / "bin" / "beeline"), "-u", f"jdbc:hive2://127.0.0.1:{port}/default", "--silent=true",
         "--outputformat=csv2", "-e", query],
        capture_output=True, text=True, timeout=300, env={**os.environ, "SPARK_HOME": str(spark_home)})
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    return [line for line in result.stdout.splitlines() if line.strip()]


def test_a_served_lake_takes_two_stages_sql_and_beeline_at_once(tmp_path, demo_root):
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
        # two different stages at once: normalize reads bronze.records while ingest appends another source to it
        stages = [subprocess.Popen([FINELAKE, "run", stage, *flags, "--set", f"ingest.sources=[{sources}]"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                  for stage, sources in (("normalize", "demo_cauldron, demo_hf_vqa"), ("ingest", "demo_hf_vqa"))]
        outputs = [stage.communicate(timeout=600)[0] for stage in stages]
        assert [stage.returncode for stage in stages] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
        assert "wrote silver.samples v1: +" in outputs[0], outputs[0][-3000:]
        appended = int(re.search(r"wrote bronze\.records v2: \+(\d+) rows", outputs[1]).group(1))
        counts = beeline(jdbc, "SELECT b.source, b.n, coalesce(s.n, 0) + coalesce(r.n, 0) AS accounted FROM "
                         "(SELECT source, count(*) AS n FROM bronze.records GROUP BY source) b LEFT JOIN "
                         "(SELECT source, count(*) AS n FROM silver.samples GROUP BY source) s ON s.source = b.source "
                         "LEFT JOIN (SELECT source, count(*) AS n FROM silver.rejects WHERE stage = 'normalize' "
                         "GROUP BY source) r ON r.source = b.source ORDER BY b.source")
        rows = {source: (int(n), int(accounted)) for source, n, accounted in (line.split(",") for line in counts[1:])}
        assert rows["demo_cauldron"] == (10, 10), counts  # every record normalized or rejected with a reason
        ingested, accounted = rows["demo_hf_vqa"]
        assert ingested == appended > 0, counts  # the concurrent append whole in bronze
        # normalize read one snapshot: the appended source wholly normalized or wholly pending, never a part
        assert accounted in (0, ingested), counts
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(120)
    assert server.returncode == 0
    assert not (lake / "service.json").exists() and not listening(jdbc) and not listening(metastore)
