"""What every stage shares: flags, config, session, a run id, and the per-source count report."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.runtime.config import ENVIRONMENTS, Config, ConfigError, load_config
from jobs.runtime.gate import GateFailure, QualityGate
from jobs.runtime.session import get_session
from jobs.runtime.tables import Lake, TableContractError, WriteResult
from jobs.runtime.tracking import Tracker
from schemas.contract import SuiteInputs

log = logging.getLogger("finelake")


@dataclass(frozen=True)
class JobContext:
    spark: SparkSession
    config: Config
    lake: Lake
    run_id: str
    gate: QualityGate


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
            lines.append(f"  wrote {write.table} v{write.version}: +{write.inserted} rows, {write.updated} updated")
        lines += [f"  PROBLEM: {p}" for p in self.problems]
        return "\n".join(lines)


def tally(report: StageReport, sources: list[str], rows_in: DataFrame, outcomes: DataFrame) -> None:
    """Fill per-source counts: `rows_in` has a `source` column, `outcomes` `source` and `reason` (null = kept).

    Only small aggregates reach the driver: one row per source and reason.
    """
    for source in sources:
        report.counts.setdefault(source, SourceCounts())
    for row in rows_in.groupBy("source").count().collect():
        report.counts.setdefault(row["source"], SourceCounts()).rows_in += row["count"]
    for row in outcomes.groupBy("source", "reason").count().collect():
        counts = report.counts.setdefault(row["source"], SourceCounts())
        if row["reason"] is None:
            counts.kept += row["count"]
        else:
            counts.rejected[row["reason"]] = counts.rejected.get(row["reason"], 0) + row["count"]


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


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    for noisy in ("py4j", "pyspark", "great_expectations", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def config_from_args(args: argparse.Namespace, command: str) -> Config | None:
    """Set up logging and load the config named by the flags; on a config error say why and return None."""
    configure_logging()
    try:
        return load_config(args.env, args.overrides, args.conf)
    except ConfigError as err:
        print(f"finelake {command}: {err}", file=sys.stderr)
        return None


def run_job(stage: str, description: str, run: Callable[[JobContext, StageReport], None], argv: list[str] | None) -> int:
    """Parse flags, load config, get the session, run the stage inside an MLflow run, print its report.

    Exit codes: 0 done, 1 the stage's counts do not balance, 2 bad configuration or contract,
    3 a write failed its table's suite (the table was restored to its published version).
    """
    args = job_parser(stage, description).parse_args(argv)
    config = config_from_args(args, stage)
    if config is None:
        return 2
    spark = get_session(config)
    run_id = uuid.uuid4().hex[:16]
    lake = Lake(spark, config)
    tracker = Tracker(config, stage, run_id)
    tracker.start()
    inputs = SuiteInputs(
        run_id=run_id,
        max_side=config.normalize.image.max_side,
        max_chars=config.normalize.text.max_chars,
        phash_radius=config.dedup.phash_radius,
        sscd_tau=min(config.dedup.sscd_tau, config.dedup.sscd_band_low),  # checked pairs reach down to the band
        text_jaccard=config.dedup.text_jaccard,
        text_overlap=config.decontaminate.text_min_overlap,
    )
    context = JobContext(spark, config, lake, run_id, QualityGate(lake, stage, run_id, inputs, tracker))
    report = StageReport(stage=stage, run_id=run_id)
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
    report.seconds = time.monotonic() - started
    if code == 0 and not report.balanced:
        failure, code = "the counts do not balance; see the report", 1
    tracker.finish(report, lake.reads, failure=failure)
    print(report.render())
    if failure:
        print(f"finelake {stage}: {failure}", file=sys.stderr)
    return code
