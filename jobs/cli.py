"""The `finelake` command: run stages, query the lake with SQL, list tables, run the demo."""

from __future__ import annotations

import argparse
import sys

from pyspark.errors import PySparkException

from jobs import demo, registry
from jobs.runtime.session import get_session
from jobs.runtime.stage import add_config_flags, config_from_args
from jobs.runtime.gate import quality_report
from jobs.runtime.tables import Lake, describe_tables
from jobs.runtime.tracking import ui_command


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="finelake",
        description="Curated VLM training corpora on Spark and Delta Lake.",
        epilog="Stage flags: finelake run <stage> --help",
    )
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one stage (flags after the stage go to it)")
    run.add_argument("stage", choices=[s.name for s in registry.STAGES])
    run.add_argument("stage_args", nargs=argparse.REMAINDER, help="--env, --set KEY=VALUE, --conf DIR")
    sql = commands.add_parser("sql", help='run a SQL query over the lake, e.g. finelake sql "SELECT * FROM silver.samples"')
    sql.add_argument("query")
    sql.add_argument("--limit", type=int, default=20, help="rows to print (default 20)")
    sql.add_argument("--truncate", type=int, default=80, help="characters per cell (0 = no cut; default 80)")
    add_config_flags(sql)
    tables = commands.add_parser("tables", help="list the lake's tables with versions and row counts")
    add_config_flags(tables)
    report = commands.add_parser("report", help="quality overview: published versions, last validations, MLflow runs")
    add_config_flags(report)
    demo_command = commands.add_parser("demo", help="build the demo sources and run every stage on them")
    demo.add_flags(demo_command)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "run":
        return registry.BY_NAME[args.stage].main(args.stage_args)
    if args.command == "demo":
        return demo.run(args)
    config = config_from_args(args, args.command)
    if config is None:
        return 2
    spark = get_session(config)
    if args.command == "tables":
        print(describe_tables(Lake(spark, config)))
        return 0
    if args.command == "report":
        print(quality_report(Lake(spark, config)))
        print(f"\nMLflow UI for these runs: {ui_command(config)}")
        return 0
    try:
        spark.sql(args.query).show(args.limit, truncate=args.truncate)
    except PySparkException as err:
        print(f"finelake sql: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
