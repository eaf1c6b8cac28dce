"""dedup: near-duplicate images and instructions -> evidence pairs, components, groups, a representative per group.

Nothing is deleted: images are already unique by content hash (silver.images) and instructions
by the hash of their normalised text; near-duplicates are found by pHash LSH, SSCD buckets and
MinHash LSH (jobs/ops/pairs.py) with the pixel check for uncertain image pairs, joined into
components incrementally (jobs/ops/components.py) and clustered inside the components they touch
(jobs/ops/clusters.py: differences do not chain), and samples are grouped under `dedup.rule`
with one representative each (jobs/ops/groups.py). Only new images (no pHash yet) and
instructions (no component yet) are searched. The writes go in an order that a stop between
them cannot break: pairs, groups, components (with clusters), and last the hashes that mark images done.
"""

from __future__ import annotations

import sys

from pyspark.sql import functions as F

from jobs.ops.clusters import relabel_and_cluster
from jobs.ops.components import component_rows, labels_of, overlay, relabel
from jobs.ops.embeddings import embedding_settings, image_views
from jobs.ops.groups import GROUP_CHANGED, affected_samples, regroup, search_texts, stale_policy, texts_to_group
from jobs.ops.pairs import PAIR_COLUMNS, image_pairs, text_pairs
from jobs.ops.rejects import every_column, image_outcomes, rejects_batch
from jobs.ops.signatures import new_image_hashes
from jobs.runtime.gate import Batch
from jobs.runtime.stage import JobContext, StageReport, run_job
from schemas import (duplicate_components, duplicate_groups, duplicate_pairs, image_embeddings, image_hashes,
                     silver_images, silver_samples)
from schemas.duplicate_components import Kind as Component
from schemas.duplicate_pairs import IMAGE_KINDS, Kind
from schemas.silver_rejects import Reason

STAGE = "dedup"
DESCRIPTION = "Find near-duplicate images and instructions, group samples, mark one representative per group."


def run(context: JobContext, report: StageReport) -> None:
    lake, settings, keep = context.lake, context.config.dedup, context.checkpoint
    images, samples = lake.read(silver_images.CONTRACT), lake.read(silver_samples.CONTRACT)
    known, old_groups = lake.read(image_hashes.CONTRACT), lake.read(duplicate_groups.CONTRACT)
    labels = lake.read(duplicate_components.CONTRACT)
    image_labels, text_labels = labels_of(labels, Component.IMAGE), labels_of(labels, Component.TEXT)

    fresh = keep(images.transform(new_image_hashes, known, settings.trim_borders, context.run_id, settings.phash_turns),
                 "fresh_hashes")
    hashed = fresh.where(F.col("phash").isNotNull())
    hashes = known.withColumn("is_new", F.lit(False)).unionByName(hashed.withColumn("is_new", F.lit(True)),
                                                                   allowMissingColumns=True)
    new_texts = keep(samples.transform(texts_to_group, old_groups, text_labels), "new_texts")
    if fresh.isEmpty() and new_texts.isEmpty() and stale_policy(old_groups, settings).isEmpty():
        return  # no image without a pHash, no sample without a group, the same policy: no pair or group can change
    vectors = (lake.read(image_embeddings.CONTRACT).where(F.col("model_id") == embedding_settings(context.config).model_id)
               .transform(image_views).join(hashes.select("image_id", "is_new"), "image_id")
               .select("image_id", "vector", "is_new"))
    found, checks = image_pairs(hashes, vectors, images, settings, keep)
    report.metrics.update({f"pixel_check.{k}": v for k, v in checks.items()})
    texts = text_pairs(search_texts(samples, old_groups, new_texts), settings)
    pairs = keep(found.unionByName(texts, allowMissingColumns=True).select(
        *PAIR_COLUMNS, F.current_timestamp().alias("found_at"), F.lit(context.run_id).alias("run_id")), "pairs")

    image_kinds, text_kind = F.col("kind").isin(*IMAGE_KINDS), F.col("kind") == Kind.TEXT
    clustered_images = keep(relabel_and_cluster(image_labels, pairs.where(image_kinds), hashed.select(F.col("image_id").alias(
        "member")), lake.read(duplicate_pairs.CONTRACT).where(image_kinds), keep, "image"), "clustered_images")
    # instruction pairs set nothing aside: a text component is one core, one cluster
    clustered_texts = keep(relabel(text_labels, pairs.where(text_kind), new_texts.select(F.col("text_hash").alias("member"))
                                   .distinct(), keep, "text").withColumn("cluster", F.col("component")), "clustered_texts")
    affected = affected_samples(old_groups, samples, clustered_images, clustered_texts, settings)
    groups = keep(regroup(new_texts, old_groups, samples, affected, overlay(image_labels, clustered_images),
                          overlay(text_labels, clustered_texts), settings, context.run_id), "groups")
    clustered = component_rows(clustered_images, Component.IMAGE, context.run_id).unionByName(
        component_rows(clustered_texts, Component.TEXT, context.run_id))
    failed = fresh.where(F.col("phash").isNull()).transform(
        image_outcomes, F.lit("silver.images"), F.lit(Reason.UNDECODABLE_IMAGE), F.lit("pHash could not decode the stored image"))

    report.tally(new_texts, new_texts.select("source", F.lit(None).cast("string").alias("reason")))
    report.writes += context.gate.commit(
        rejects_batch(failed, STAGE, context.run_id),
        Batch(duplicate_pairs.CONTRACT, pairs),
        Batch(duplicate_groups.CONTRACT, groups, update_when=GROUP_CHANGED, update_set=every_column(duplicate_groups.CONTRACT)),
        Batch(duplicate_components.CONTRACT, clustered, update_when="t.component <> s.component OR t.cluster <> s.cluster",
              update_set=every_column(duplicate_components.CONTRACT)),
        Batch(image_hashes.CONTRACT, hashed.select(*image_hashes.SCHEMA.fieldNames()), append=True),
    )
    report.metrics.update({"regrouped_samples": groups.count(), "clustered_images": clustered_images.count(),
                           "clustered_texts": clustered_texts.count()})
    report.histogram("group_size", "samples in the duplicate groups (of 2 or more) this run touched",
                     groups.where("group_size > 1 AND is_representative"), F.col("group_size"), width=1)
    for kind in Kind:
        report.histogram(f"pair_similarity_{kind}", f"{kind} similarity x 100 of the pairs found by this run",
                         pairs.where(F.col("kind") == kind), F.col("similarity") * 100, width=1)


def main(argv: list[str] | None = None) -> int:
    return run_job(STAGE, DESCRIPTION, run, argv)


if __name__ == "__main__":
    sys.exit(main())
