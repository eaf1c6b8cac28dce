"""`finelake serve`: one long-lived service that owns a local lake's catalog, so jobs, `finelake sql`,
notebooks and JDBC/ODBC clients (beeline, BI tools) work side by side.

The embedded Derby metastore admits one process. The service runs two processes on loopback:
Derby's network server over `lake/metastore_db` (`metastore_port`), and the Spark Thrift Server
from the pyspark wheel (HiveServer2 protocol, `jdbc_port`), itself a client of that Derby. While
`lake/service.json` names a live service, every finelake session on the lake reaches the
metastore through it (jobs.runtime.session). Derby's network server and client jars (pyspark
ships the embedded engine only) and Delta's jars for the Thrift Server's class path come from
Maven Central, checked against their published SHA-1 and cached in ~/.cache/finelake/jars.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from jobs.runtime.config import Config

SERVICE_FILE = "service.json"
DERBY_VERSION = "10.16.1.1"  # the embedded engine pyspark ships
MAVEN = "https://repo1.maven.org/maven2"
JAR_CACHE = Path.home() / ".cache" / "finelake" / "jars"
METASTORE_URL = "spark.hadoop.javax.jdo.option.ConnectionURL"
METASTORE_DRIVER = "spark.hadoop.javax.jdo.option.ConnectionDriverName"
CLIENT_DRIVER = "org.apache.derby.jdbc.ClientDriver"
STARTUP_SECONDS = 300


class ServiceError(RuntimeError):
    """The service cannot start, in one line."""


@dataclass(frozen=True)
class Service:
    pid: int
    host: str
    metastore_port: int
    jdbc_port: int
    client_jar: str
    since: str

    def metastore_url(self, lake: Path) -> str:
        return f"jdbc:derby://{self.host}:{self.metastore_port}/{lake}/metastore_db;create=true"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:hive2://{self.host}:{self.jdbc_port}/default"


def running_service(lake: Path) -> Service | None:
    """The live service of `lake`, or None (no file, or its process is gone)."""
    try:
        service = Service(**json.loads((lake / SERVICE_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return service if process_alive(service.pid) else None


def process_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def shared_metastore(conf: dict[str, str], lake: Path, service: Service) -> dict[str, str]:
    """`conf` with the metastore reached through the service's Derby network server."""
    classpath = conf.get("spark.driver.extraClassPath")
    return {**conf, METASTORE_URL: service.metastore_url(lake), METASTORE_DRIVER: CLIENT_DRIVER,
            "spark.driver.extraClassPath": os.pathsep.join(filter(None, [classpath, service.client_jar]))}


def maven_jar(group: str, artifact: str, version: str) -> Path:
    """A jar from Maven Central, checked against its .sha1 and cached."""
    name = f"{group}_{artifact}-{version}.jar"
    cached = JAR_CACHE / name
    if cached.is_file():
        return cached
    url = f"{MAVEN}/{group.replace('.', '/')}/{artifact}/{version}/{artifact}-{version}.jar"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            data = response.read()
        with urllib.request.urlopen(url + ".sha1", timeout=60) as response:
            expected = response.read().decode().split()[0]
    except OSError as err:
        raise ServiceError(f"could not fetch {url}: {err}") from None
    if hashlib.sha1(data).hexdigest() != expected:
        raise ServiceError(f"{url}: SHA-1 does not match the published one")
    JAR_CACHE.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(cached)
    return cached


def delta_packages() -> str:
    """The Maven coordinates delta-spark's pip package asks for (its own configure_spark_with_delta_pip,
    on a builder that is never started)."""
    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    return configure_spark_with_delta_pip(SparkSession.Builder())._options["spark.jars.packages"]


def _wait_for_port(host: str, port: int, process: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceError(f"{what} exited with {process.returncode} while starting; see {log}")
        with socket.socket() as probe:
            probe.settimeout(1)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(1)
    raise ServiceError(f"{what} did not open {host}:{port} in {STARTUP_SECONDS} s; see {log}")


def _free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) != 0


def serve(config: Config, lake: Path, host: str, metastore_port: int, jdbc_port: int) -> int:
    """Start Derby's network server and the Thrift Server, record them in lake/service.json, and
    stay until SIGINT or SIGTERM stops both."""
    import pyspark

    from jobs.runtime.session import hold_metastore, release_metastore

    if (other := running_service(lake)) is not None:
        raise ServiceError(f"the lake {lake} is already served by process {other.pid} ({other.jdbc_url})")
    for port in (metastore_port, jdbc_port):
        if not _free(host, port):
            raise ServiceError(f"{host}:{port} is in use; choose another with --metastore-port / --jdbc-port")
    lake.mkdir(parents=True, exist_ok=True)
    hold_metastore(lake)  # no job may hold the embedded metastore while the service takes it over
    packages = delta_packages()
    group, artifact, version = packages.split(",")[0].split(":")
    jars = {name: maven_jar("org.apache.derby", name, DERBY_VERSION) for name in ("derbynet", "derbyclient")}
    delta = [maven_jar(group, artifact, version), maven_jar("io.delta", "delta-storage", version)]
    spark_home = Path(pyspark.__file__).parent
    logs = lake / "service-logs"
    logs.mkdir(parents=True, exist_ok=True)
    engine = [str(spark_home / "jars" / f"{name}-{DERBY_VERSION}.jar") for name in ("derby", "derbyshared", "derbytools")]
    derby_log = logs / "derby.log"
    derby = subprocess.Popen(
        ["java", f"-Dderby.system.home={lake}", "-cp", os.pathsep.join([*engine, str(jars["derbynet"])]),
         "org.apache.derby.drda.NetworkServerControl", "start", "-h", host, "-p", str(metastore_port),
         "-noSecurityManager"], stdout=derby_log.open("w"), stderr=subprocess.STDOUT)
    thrift = None
    try:
        _wait_for_port(host, metastore_port, derby, "Derby's network server", derby_log)
        service = Service(os.getpid(), host, metastore_port, jdbc_port, str(jars["derbyclient"]),
                          datetime.datetime.now().isoformat(timespec="seconds"))
        conf = shared_metastore(dict(config.spark.conf), lake, service)
        conf["spark.driver.extraClassPath"] = os.pathsep.join([conf["spark.driver.extraClassPath"], *map(str, delta)])
        conf.setdefault("spark.jars.ivySettings", str(resources.files("conf") / "ivysettings.xml"))
        thrift_log = logs / "thrift-server.log"
        command = [str(spark_home / "bin" / "spark-submit"), "--class",
                   "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2", "--name", "finelake-serve",
                   "--master", config.spark.master or "local[*]", "--packages", packages,
                   *(arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")),
                   "--hiveconf", f"hive.server2.thrift.port={jdbc_port}",
                   "--hiveconf", f"hive.server2.thrift.bind.host={host}", "spark-internal"]
        environment = {**os.environ, "SPARK_HOME": str(spark_home), "PYSPARK_PYTHON": sys.executable}
        thrift = subprocess.Popen(command, stdout=thrift_log.open("w"), stderr=subprocess.STDOUT, env=environment)
        _wait_for_port(host, jdbc_port, thrift, "the Thrift Server", thrift_log)
        (lake / SERVICE_FILE).write_text(json.dumps(service.__dict__))
        release_metastore(lake)
        print(f"finelake serve: lake {lake}\n  JDBC/ODBC: {service.jdbc_url} (beeline -u {service.jdbc_url})\n"
              f"  metastore: derby://{host}:{metastore_port} (jobs and finelake sql on this lake use it)\n"
              f"  logs: {logs}\n  stop: Ctrl-C or kill {os.getpid()}", flush=True)
        stopped = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopped.append(True))
        while not stopped and thrift.poll() is None and derby.poll() is None:
            time.sleep(0.5)
        return 0 if stopped else 1
    finally:
        (lake / SERVICE_FILE).unlink(missing_ok=True)
        for process in (thrift, derby):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
        release_metastore(lake)
