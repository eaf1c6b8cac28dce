"""What every stage shares: flags, config, session, a run id, the gate, and the per-source count report."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import registry
from jobs.runtime.config import ENVIRONMENTS, Config, ConfigError, load_config
from jobs.runtime.gate import Gate, GateFailure
from jobs.runtime.session import LakeInUse, get_session
from jobs.runtime.tables import Lake, TableContractError, WriteResult, job_session
from jobs.runtime.tracking import Tracker

log = logging.getLogger("finelake")


@dataclass(frozen=True)
class JobContext:
    spark: SparkSession
    config: Config
    lake: Lake
    run_id: str
    gate: Gate

    @property
    def parallelism(self) -> int:
        return self.spark.sparkContext.defaultParallelism

    def tasks(self, configured: int, per_core: int = 4) -> int:
        """Explicit task counts for UDF-heavy steps (adaptive execution would fold small inputs into one task)."""
        return configured or per_core * self.parallelism

    def checkpoint(self, frame: DataFrame, name: str) -> DataFrame:
        """`frame` written to this run's scratch and read back (see Lake.checkpoint), for what the
        job's later steps read again. Not persist(): a commit to a table re-computes every
        persisted frame whose lineage reads that table (Spark re-caches by plan), and a lost
        executor must never make Spark call a model again."""
        return self.lake.checkpoint(frame, "checkpoints", self.run_id, name)


@dataclass
class SourceCounts:
    rows_in: int = 0
    kept: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.kept + sum(self.rejected.values())


@dataclass
class StageReport:
    stage: str
    run_id: str
    counts: dict[str, SourceCounts] = field(default_factory=dict)
    writes: list[WriteResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # plot name -> (axis label, bin width, {bin start: count}), computed in Spark, small by construction
    distributions: dict[str, tuple[str, int, dict[float, int]]] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # stage-specific figures for MLflow
    bars: dict[str, tuple[str, dict[str, float]]] = field(default_factory=dict)  # plot name -> (axis label, {label: value})

    @property
    def balanced(self) -> bool:
        return not self.problems and all(c.balanced for c in self.counts.values())

    def cover(self, sources: list[str]) -> None:
        """Every one of `sources` gets a line in the report, with zeros when nothing came from it."""
        for source in sources:
            self.counts.setdefault(source, SourceCounts())

    def count_in(self, rows: DataFrame) -> None:
        """Rows in per source (`rows` has a `source` column); only one count per source reaches the driver."""
        for row in rows.groupBy("source").count().collect():
            self.counts.setdefault(row["source"], SourceCounts()).rows_in += row["count"]

    def count_out(self, outcomes: DataFrame) -> None:
        """Kept (`reason` null) and rejected per source and reason: small aggregates only."""
        for row in outcomes.groupBy("source", "reason").count().collect():
            counts = self.counts.setdefault(row["source"], SourceCounts())
            if row["reason"] is None:
                counts.kept += row["count"]
            else:
                counts.rejected[row["reason"]] = counts.rejected.get(row["reason"], 0) + row["count"]

    def tally(self, rows_in: DataFrame, outcomes: DataFrame) -> None:
        self.count_in(rows_in)
        self.count_out(outcomes)

    @property
    def rows_in(self) -> dict[str, int]:
        return {source: c.rows_in for source, c in self.counts.items()}

    def histogram(self, name: str, label: str, frame: DataFrame, value, width: int) -> None:
        """Bin `value` over `frame` in Spark; only the bin counts reach the driver (for the MLflow plots)."""
        bins = frame.select((F.floor(value / width) * width).alias("bin")).groupBy("bin").count()
        self.distributions[name] = (label, width, {float(r["bin"]): r["count"] for r in bins.collect()})

    def expect_equal(self, what: str, expected: int, actual: int) -> None:
        if expected != actual:
            self.problems.append(f"{what}: expected {expected}, got {actual}")

    def render(self) -> str:
        lines = [f"{self.stage} run {self.run_id}: {self.seconds:.1f} s"]
        lines.append(f"  {'source':<24}{'rows in':>10}{'kept':>10}{'rejected':>10}  reasons")
        for source, c in sorted(self.counts.items()):
            reasons = ", ".join(f"{r}={n}" for r, n in sorted(c.rejected.items())) or "-"
            flag = "" if c.balanced else "   <-- rows in != kept + rejected"
            lines.append(f"  {source:<24}{c.rows_in:>10}{c.kept:>10}{sum(c.rejected.values()):>10}  {reasons}{flag}")
        for write in self.writes:
            if write.version is None:
                lines.append(f"  {write.table}: nothing new")
            else:
                removed = f", {write.deleted} removed" if write.deleted else ""
                lines.append(f"  wrote {write.table} v{write.version}: +{write.inserted} rows, {write.updated} updated{removed}")
        lines += [f"  PROBLEM: {p}" for p in self.problems]
        return "\n".join(lines)


def job_parser(stage: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"finelake run {stage}", description=description)
    add_config_flags(parser)
    return parser


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="local", choices=ENVIRONMENTS, help="config overlay and Spark session kind (default: local)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key, e.g. --set normalize.image.max_side=1024 (repeatable; VALUE is YAML)",
    )
    parser.add_argument("--conf", default=None, help="config folder (default: $FINELAKE_CONF or the packaged conf/)")
    parser.add_argument("--user-conf", default=None, metavar="DIR", help=(
        "your own sources/*.yaml and benchmarks.yaml, layered over the config folder's "
        "(default: $FINELAKE_USER_CONF or ~/.config/finelake)"))


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    for noisy in ("py4j", "pyspark", "great_expectations", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # PySpark logs every failed query with its JVM stack trace; finelake reports the error once, in a line
    logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)


def config_from_args(args: argparse.Namespace, command: str, stage: bool = True) -> Config | None:
    """Set up logging and load the config named by the flags; on a config error say why and return None.
    A command that only reads the lake (`stage` False) does not need ingest's sources to exist."""
    configure_logging()
    try:
        return load_config(args.env, args.overrides, args.conf, check_sources=stage, user_dir=args.user_conf)
    except ConfigError as err:
        print(f"finelake {command}: {err}", file=sys.stderr)
        return None


def run_job(stage: str, description: str, run: Callable[[JobContext, StageReport], None], argv: list[str] | None) -> int:
    """Parse flags, load config, get the session, run the stage inside an MLflow run, print its report.

    Exit codes: 0 done, 1 the stage's counts do not balance, 2 bad configuration or contract,
    3 a write failed its table's suite (nothing of that write was committed).
    """
    args = job_parser(stage, description).parse_args(argv)
    config = config_from_args(args, stage)
    if config is None:
        return 2
    run_id = uuid.uuid4().hex[:16]
    tracker = Tracker(config, stage, run_id)
    report = StageReport(stage=stage, run_id=run_id)
    # A cold process starts the JVM while MLflow opens its store and Great Expectations is imported.
    with ThreadPoolExecutor(max_workers=2) as pool:
        tracking = pool.submit(tracker.start)
        pool.submit(importlib.import_module, "great_expectations.expectations")
        try:
            spark = job_session(get_session(config))
        except LakeInUse as err:
            tracking.result()
            tracker.finish(report, {}, failure=str(err))
            print(f"finelake {stage}: {err}", file=sys.stderr)
            return 2
        except BaseException as err:
            tracking.result()
            tracker.finish(report, {}, failure=f"no Spark session: {type(err).__name__}: {err}")
            raise
        tracking.result()
    lake = Lake(spark, config)
    context = JobContext(spark, config, lake, run_id, Gate(lake, registry.BY_NAME[stage], run_id, config, tracker))
    started = time.monotonic()
    log.info("%s: run %s, env %s, config %s", stage, run_id, config.env, config.digest())
    failure, code = None, 0
    try:
        run(context, report)
    except GateFailure as err:
        failure, code = str(err), 3
    except (ConfigError, TableContractError) as err:
        failure, code = str(err), 2
    except BaseException as err:
        tracker.finish(report, lake.reads, failure=f"{type(err).__name__}: {err}")
        raise
    finally:
        context.gate.cleanup()
        lake.remove_scratch("checkpoints", run_id)
    report.seconds = time.monotonic() - started
    if code == 0 and not report.balanced:
        failure, code = "the counts do not balance; see the report", 1
    tracker.finish(report, lake.reads, failure=failure)
    print(report.render())
    if failure:
        print(f"finelake {stage}: {failure}", file=sys.stderr)
    return code
