"""ingest: source files -> bronze.records (+ silver.rejects, bronze.ingested_files).

Files are listed with Spark's binaryFile source, compared with the manifest of files already
ingested, and read in parallel inside executors by the format adapters in udfs/readers.py
(jobs/ops/sources.py). Only new or changed files are read; rows MERGE on sample_id.
"""

from __future__ import annotations

import logging
import sys

from jobs.ops.rejects import every_column, rejects_batch
from jobs.ops.sources import bronze_rows, manifest_rows, mark_duplicates, pending_files, read_records, source_files
from jobs.runtime.gate import Batch, Conservation
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import bronze_records, ingested_files

STAGE = "ingest"
DESCRIPTION = "Read the configured sources into bronze.records; unreadable rows go to silver.rejects."
log = logging.getLogger("finelake")


def run(context: JobContext, report: StageReport) -> None:
    lake, config, run_id = context.lake, context.config, context.run_id
    sources = {s.name: s for s in config.selected_sources()}
    files = context.checkpoint(source_files(context.spark, list(sources.values()))
                               .transform(pending_files, lake.read(ingested_files.CONTRACT)), "files")
    counts = {r["source"]: r["count"] for r in files.groupBy("source").count().collect()}
    log.info("ingest: %d new or changed files (%s)", sum(counts.values()),
             ", ".join(f"{s}={counts.get(s, 0)}" for s in sources))
    report.cover(list(sources))
    if not counts:
        return
    spread = config.ingest.fetch_partitions or int(context.spark.conf.get("spark.sql.shuffle.partitions"))
    rows = context.checkpoint(read_records(files, sum(counts.values()), sources, spread)
                              .transform(mark_duplicates, lake.read(bronze_records.CONTRACT)), "records")
    report.tally(rows, rows)
    writes = context.gate.commit(
        rejects_batch(rows, STAGE, run_id),
        Batch(bronze_records.CONTRACT, rows.transform(bronze_rows, run_id), append=True),
        Batch(ingested_files.CONTRACT, files.transform(manifest_rows, rows, run_id),
              update_when="t.size <> s.size OR t.modified_at <> s.modified_at", update_set=every_column(ingested_files.CONTRACT)),
        conservation=Conservation(report.rows_in, bronze_records.CONTRACT),
    )
    report.writes += writes
    report.expect_equal("bronze rows inserted vs records kept", sum(c.kept for c in report.counts.values()),
                        writes[1].inserted)


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
