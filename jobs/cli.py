"""The `finelake` command: run stages, export the corpus, query the lake with SQL, list tables, share the lake, run the demo."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyspark.errors import PySparkException

from jobs import demo, export, registry, sources
from jobs.runtime import duckdb_engine
from jobs.runtime.session import LakeInUse, get_session
from jobs.runtime.stage import add_config_flags, config_from_args
from jobs.runtime.gate import quality_report
from jobs.runtime.query import FORMATS, QueryError, first_line, parse, stream
from jobs.runtime.query import export as export_result
from jobs.runtime.service import ServiceError, serve
from jobs.runtime.tables import Lake, describe_tables
from jobs.runtime.tracking import ui_command
from udfs.readers import local_path


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="finelake",
        description="Curated VLM training corpora on Spark and Delta Lake.",
        epilog="Stage flags: finelake run <stage> --help",
    )
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one stage (flags after the stage go to it)")
    run.add_argument("stage", choices=[s.name for s in registry.STAGES])
    run.add_argument("stage_args", nargs=argparse.REMAINDER, help="--env, --set KEY=VALUE, --conf DIR, --user-conf DIR")
    sql = commands.add_parser("sql", help='run a read-only SQL query over the lake, e.g. finelake sql "SELECT * FROM '
                                          'silver.samples"; print it or export it')
    sql.add_argument("query")
    sql.add_argument("--format", choices=FORMATS, default="table",
                     help="table (printed, default), csv (a header row; bytes as base64, nested values as JSON), "
                          "json (JSON lines) or parquet (needs --output)")
    sql.add_argument("--output", type=Path, default=None,
                     help="write the result to this one file (csv, json, parquet) instead of printing it")
    sql.add_argument("--limit", type=int, default=None,
                     help="rows at most (table: 20 unless given; csv, json, parquet: all unless given)")
    sql.add_argument("--truncate", type=int, default=80, help="table: characters per cell (0 = no cut; default 80)")
    sql.add_argument("--engine", choices=("spark", "duckdb"), default="spark",
                     help="spark (default: Spark SQL through the lake's catalog) or duckdb (no JVM: DuckDB over the "
                          "tables' latest Delta versions, answers in seconds, even while a job holds the lake; "
                          "DuckDB's SQL dialect; local lake only)")
    sql.add_argument("--allow-writes", action="store_true",
                     help="run statements that change the lake (INSERT, CREATE, DROP, ...); refused otherwise")
    add_config_flags(sql)
    tables = commands.add_parser("tables", help="list the lake's tables with versions and row counts")
    add_config_flags(tables)
    report = commands.add_parser("report", help="quality overview: published versions, last validations, MLflow runs")
    add_config_flags(report)
    serve = commands.add_parser("serve", help="share the local lake until Ctrl-C: its metastore for jobs and finelake sql, "
                                              "a Spark Thrift Server for JDBC/ODBC clients (beeline, BI tools)")
    serve.add_argument("--host", default="127.0.0.1", help="address both listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--jdbc-port", type=int, default=10000, help="Thrift Server (HiveServer2) port (default 10000)")
    serve.add_argument("--metastore-port", type=int, default=1527, help="Derby network server port (default 1527)")
    add_config_flags(serve)
    export_command = commands.add_parser("export", help="write a version of gold.curated as HF parquet, WebDataset tar "
                                                        "or LLaVA JSON shards, with a dataset card")
    export.add_flags(export_command)
    demo_command = commands.add_parser("demo", help="build the demo sources and run every stage on them")
    demo.add_flags(demo_command)
    sources_command = commands.add_parser("sources", help="add: look at a dataset, propose its source YAML, dry-run it "
                                                          "and write it to your conf folder")
    sources.add_flags(sources_command)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "run":
        return registry.BY_NAME[args.stage].main(args.stage_args)
    if args.command == "export":
        return export.run(args)
    if args.command == "sources":
        return sources.run(args)
    if args.command == "demo":
        try:
            return demo.run(args)
        except LakeInUse as err:
            print(f"finelake demo: {err}", file=sys.stderr)
            return 2
    if args.command == "sql" and (problem := export_problem(args.format, args.output)):
        print(f"finelake sql: {problem}", file=sys.stderr)
        return 2
    config = config_from_args(args, args.command, stage=False)
    if config is None:
        return 2
    if args.command == "serve":
        return serve_lake(config, args)
    if args.command == "sql" and args.engine == "duckdb":
        return query_without_jvm(config, args)
    try:
        spark = get_session(config)
    except LakeInUse as err:
        print(f"finelake {args.command}: {err}", file=sys.stderr)
        return 2
    if args.command == "tables":
        print(describe_tables(Lake(spark, config)))
        return 0
    if args.command == "report":
        print(quality_report(Lake(spark, config)))
        print(f"\nMLflow UI for these runs: {ui_command(config)}")
        return 0
    return query(spark, args)


def serve_lake(config, args: argparse.Namespace) -> int:
    lake = local_path(config.paths.lake)
    if config.spark.managed or not lake:
        print("finelake serve: shares a local lake (env local); on Databricks or Dataproc use the platform's SQL "
              "endpoint", file=sys.stderr)
        return 2
    try:
        return serve(config, Path(lake), args.host, args.metastore_port, args.jdbc_port)
    except (ServiceError, LakeInUse) as err:
        print(f"finelake serve: {err}", file=sys.stderr)
        return 2


def query_without_jvm(config, args: argparse.Namespace) -> int:
    warehouse = local_path(config.spark.conf.get("spark.sql.warehouse.dir", ""))
    try:
        if args.allow_writes:
            raise QueryError("--allow-writes needs --engine spark: the duckdb engine only reads")
        if config.spark.managed or config.catalog.name or not warehouse:
            raise QueryError("--engine duckdb reads a local lake's warehouse folder; use --engine spark here")
        rows = duckdb_engine.run(duckdb_engine.connect(Path(warehouse)), args.query, args.format, args.output,
                                 args.limit, args.truncate)
    except QueryError as err:
        print(f"finelake sql: {err}", file=sys.stderr)
        return 2
    if args.output is not None:
        print(f"finelake sql: wrote {rows} rows to {args.output}", file=sys.stderr)
    return 0


def export_problem(fmt: str, output: Path | None) -> str | None:
    if fmt == "parquet" and output is None:
        return "--format parquet needs --output PATH"
    if fmt == "table" and output is not None:
        return "--output needs --format csv, json or parquet"
    return None


def query(spark, args: argparse.Namespace) -> int:
    try:
        frame = parse(spark, args.query, args.allow_writes)
        if args.format == "table":
            frame.show(20 if args.limit is None else args.limit, truncate=args.truncate)
        elif args.output is not None:
            rows = export_result(frame if args.limit is None else frame.limit(args.limit), args.format, args.output)
            print(f"finelake sql: wrote {rows} rows to {args.output}", file=sys.stderr)
        else:
            stream(frame, args.format, args.limit)
    except QueryError as err:
        print(f"finelake sql: {err}", file=sys.stderr)
        return 2
    except PySparkException as err:
        print(f"finelake sql: {first_line(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
