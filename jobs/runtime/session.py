"""The SparkSession for an environment: built for `local`, borrowed from the platform otherwise."""

from __future__ import annotations

import atexit
import datetime
import json
import logging
import os
import sys
from importlib import resources
from pathlib import Path

from pyspark.sql import SparkSession

from jobs.runtime.config import Config
from jobs.runtime.service import METASTORE_URL, process_alive, running_service, shared_metastore
from udfs.readers import local_path

log = logging.getLogger("finelake")
HOLDER = "metastore_db.holder"  # in the lake folder: the process that holds the embedded metastore


class LakeInUse(RuntimeError):
    """Another live process holds the lake's embedded (one-process) metastore."""


def get_session(config: Config) -> SparkSession:
    """Reuse an active session (spark-submit, notebooks, tests); else build one from config.

    On Databricks and Dataproc (`spark.managed: true`) the platform's session and catalog are used
    as they are. Locally the builder adds Delta's jars (resolved from Maven Central by Ivy and
    cached), the Delta extensions and a Hive metastore in the lake folder, so tables persist
    across processes.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        check_cluster_conf(active, config)
        return active
    builder = SparkSession.builder.appName("finelake")
    if config.spark.managed:
        session = builder.getOrCreate()
        check_cluster_conf(session, config)
        return session
    # Python workers must run the interpreter that has finelake installed, not whatever `python3` is.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    lake = local_path(config.paths.lake)
    conf = dict(config.spark.conf)
    if lake:
        Path(lake).mkdir(parents=True, exist_ok=True)
        if (service := running_service(Path(lake))) is not None:
            log.info("the lake is served by process %d: metastore at %s:%d", service.pid, service.host, service.metastore_port)
            conf = shared_metastore(conf, Path(lake), service)
        elif conf.get(METASTORE_URL, "").startswith("jdbc:derby:;"):
            hold_metastore(Path(lake))
    if config.spark.master:
        builder = builder.master(config.spark.master)
    for key, value in conf.items():
        builder = builder.config(key, value)
    if "spark.jars.ivySettings" not in config.spark.conf:
        builder = builder.config("spark.jars.ivySettings", str(resources.files("conf") / "ivysettings.xml"))
    from delta import configure_spark_with_delta_pip

    log.info("starting local Spark (%s) with Delta; lake at %s", config.spark.master, config.paths.lake)
    # The JVM inherits stdout and Ivy prints to it; stdout carries results (finelake sql --format csv)
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        session = configure_spark_with_delta_pip(builder).getOrCreate()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    session.sparkContext.setLogLevel("ERROR")
    return session


def check_cluster_conf(session: SparkSession, config: Config) -> None:
    """Warn about cluster settings (GPU scheduling, Delta) the platform session lacks; never change them."""
    differing = {
        key: session.conf.get(key, None)
        for key, wanted in config.spark.cluster_conf.items()
        if session.conf.get(key, None) != wanted
    }
    for key, found in differing.items():
        log.warning("cluster setting %s is %r, config expects %r (set it when creating the cluster)",
                    key, found, config.spark.cluster_conf[key])


def hold_metastore(lake: Path) -> None:
    """Record this process as the one holding the lake's embedded Derby metastore, or raise LakeInUse
    naming the live process that holds it (Derby itself would fail with a page of stack trace)."""
    holder = lake / HOLDER
    mine = json.dumps({"pid": os.getpid(), "command": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])[:160],
                       "since": datetime.datetime.now().isoformat(timespec="seconds")})
    for _ in range(2):
        try:
            with os.fdopen(os.open(holder, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "w") as out:
                out.write(mine)
            atexit.register(release_metastore, lake)
            return
        except FileExistsError:
            try:
                other = json.loads(holder.read_text())
            except (OSError, ValueError):
                other = {}
            if other.get("pid") == os.getpid():
                return
            if process_alive(other.get("pid")):
                raise LakeInUse(
                    f"the lake {lake} is in use by process {other['pid']} (`{other.get('command', '?')}`, since "
                    f"{other.get('since', '?')}): its embedded metastore admits one process at a time; "
                    "run this when that one has finished, or share the lake with `finelake serve` (a query "
                    "answers now with `finelake sql --engine duckdb`)") from None
            holder.unlink(missing_ok=True)  # left by a process that died
    raise LakeInUse(f"the lake {lake}: another process claimed it just now; try again")


def release_metastore(lake: Path) -> None:
    """Drop this process's record as the lake's metastore holder (no-op when another holds it)."""
    holder = lake / HOLDER
    try:
        if json.loads(holder.read_text()).get("pid") == os.getpid():
            holder.unlink()
    except (OSError, ValueError):
        pass
