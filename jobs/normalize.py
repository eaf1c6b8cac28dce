"""normalize: bronze.records -> silver.samples, silver.images, silver.rejects.

Only bronze rows without an outcome yet (not in samples, not rejected by normalize) are read.
Each distinct raw image is decoded once (by the hash of its bytes), text is mapped to turns and
cleaned by the source's config, and every sample ends kept or rejected with one reason code
(jobs/ops/samples.py).
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from jobs.ops.rejects import rejects_batch
from jobs.ops.samples import NEW_REFS_ONLY, image_rows, normalize_records, pending_records, sample_rows
from jobs.runtime.gate import Batch, Conservation
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import bronze_records, silver_images, silver_rejects, silver_samples
from schemas.silver_samples import text_length

STAGE = "normalize"
DESCRIPTION = "Decode, filter and clean bronze records into silver.samples and silver.images."


def run(context: JobContext, report: StageReport) -> None:
    lake, config, run_id = context.lake, context.config, context.run_id
    sources = {s.name: s for s in config.selected_sources()}
    pending = lake.read(bronze_records.CONTRACT).transform(
        pending_records, lake.read(silver_samples.CONTRACT), lake.read(silver_rejects.CONTRACT), list(sources))
    report.cover(list(sources))
    report.count_in(pending)
    if not any(report.rows_in.values()):
        return
    normalized = normalize_records(pending, sources, config, context.tasks(config.normalize.image_partitions),
                                   context.checkpoint)
    report.count_out(normalized.outcomes)
    images = image_rows(normalized, run_id)
    samples = normalized.outcomes.transform(sample_rows, run_id)
    writes = context.gate.commit(
        Batch(silver_images.CONTRACT, images, **NEW_REFS_ONLY),
        rejects_batch(normalized.outcomes, STAGE, run_id),
        Batch(silver_samples.CONTRACT, samples, append=True),
        conservation=Conservation(report.rows_in, silver_samples.CONTRACT),
    )
    report.writes += writes
    report.expect_equal("samples inserted vs records kept", sum(c.kept for c in report.counts.values()), writes[2].inserted)
    report.histogram("image_long_side", "longest side of the images this run wrote (px)", writes[0].rows,
                     F.greatest("width", "height"), width=128)
    report.histogram("text_length", "characters in all turns of a kept sample", writes[2].rows, text_length(), width=250)


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
