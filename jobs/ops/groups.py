"""Sample groups under dedup's rule, and the representative the keep policy keeps, regrouped incrementally.

A sample's image group is the set of its images' clusters; its text group is its instruction's
cluster; `dedup.rule` combines them. Only the samples a run can change are regrouped: new
samples, samples whose image or instruction changed cluster, samples grouped under another
policy, and every other member of the groups those samples leave or join (their size and
representative change).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.ops.signatures import instruction, instruction_texts
from jobs.runtime.config import DedupConf
from schemas.duplicate_groups import Rule

GROUP_FIELDS = ("image_group", "text_group", "group_id", "group_size", "representative", "rule", "source_priority")


def texts_to_group(samples: DataFrame, old_groups: DataFrame, text_labels: DataFrame) -> DataFrame:
    """instruction_texts of the samples to group from their text: no group yet, or an instruction
    without a component (a run that stopped between its group and component commits)."""
    settled = old_groups.join(text_labels.withColumnRenamed("member", "text_hash"), "text_hash", "left_semi")
    return samples.join(settled, "sample_id", "left_anti").transform(instruction_texts)


def search_texts(samples: DataFrame, old_groups: DataFrame, new_texts: DataFrame) -> DataFrame:
    """(text_hash, text, is_new) of every distinct instruction: what MinHash searches, new ones against all."""
    old = (old_groups.join(new_texts, "sample_id", "left_anti").select("sample_id", "text_hash")
           .join(samples.select("sample_id", instruction().alias("text")), "sample_id")
           .withColumn("is_new", F.lit(False)))
    both = old.unionByName(new_texts.select("sample_id", "text_hash", "text", F.lit(True).alias("is_new")))
    return both.groupBy("text_hash").agg(F.first("text").alias("text"), F.max("is_new").alias("is_new"))


def affected_samples(old_groups: DataFrame, samples: DataFrame, changed_images: DataFrame,
                     changed_texts: DataFrame, settings: DedupConf) -> DataFrame:
    """(sample_id) of grouped samples whose images or instruction changed cluster, or whose
    stored policy is not the configured one."""
    by_image = (samples.select("sample_id", F.explode("image_ids").alias("member"))
                .join(changed_images.select("member"), "member", "left_semi").select("sample_id"))
    by_text = old_groups.join(changed_texts.select(F.col("member").alias("text_hash")), "text_hash", "left_semi")
    policy = stale_policy(old_groups, settings)
    return by_image.unionByName(by_text.select("sample_id")).unionByName(policy.select("sample_id")).distinct()


def stale_policy(old_groups: DataFrame, settings: DedupConf) -> DataFrame:
    """The groups rows made under another rule or source priority than the configured ones."""
    return old_groups.where((F.col("rule") != settings.rule) | (F.col("source_priority") != _priority(settings)))


def regroup(new_texts: DataFrame, old_groups: DataFrame, samples: DataFrame, affected: DataFrame,
            image_labels: DataFrame, text_labels: DataFrame, settings: DedupConf, run_id: str) -> DataFrame:
    """gold.duplicate_groups rows for every sample a run can change (see the module docstring).

    `new_texts`: instruction_texts of the samples to (re)group from their text (no group yet, or
    an instruction without a component); `affected`: affected_samples; `image_labels`,
    `text_labels`: (member, component, cluster) after this run's pairs.
    """
    moved = (old_groups.join(affected, "sample_id", "left_semi").join(new_texts, "sample_id", "left_anti")
             .select("sample_id", "source", "text_hash", "text_chars")
             .join(samples.select("sample_id", "image_ids"), "sample_id"))
    changing = new_texts.select("sample_id", "source", "image_ids", "text_hash", "text_chars").unionByName(moved)
    keyed = _keys(changing, image_labels, text_labels, settings)
    left_behind = old_groups.join(keyed.select("sample_id"), "sample_id", "left_semi").select("group_id")
    touched_groups = keyed.select("group_id").unionByName(left_behind).distinct()
    staying = (old_groups.join(keyed.select("sample_id"), "sample_id", "left_anti")
               .join(touched_groups, "group_id", "left_semi")
               .select("sample_id", "source", "text_hash", "text_chars", "image_group", "text_group", "group_id"))
    return _policy(keyed.unionByName(staying), settings, run_id)


def _keys(samples: DataFrame, image_labels: DataFrame, text_labels: DataFrame, settings: DedupConf) -> DataFrame:
    images = (samples.select("sample_id", F.explode("image_ids").alias("member"))
              .join(image_labels, "member", "left")
              .groupBy("sample_id")
              .agg(F.array_join(F.array_sort(F.collect_set(F.coalesce("cluster", "member"))), ",").alias("images")))
    texts = text_labels.select(F.col("member").alias("text_hash"), F.col("cluster").alias("text_cluster"))
    keyed = (samples.join(images, "sample_id", "left").join(texts, "text_hash", "left")
             .withColumn("image_group", F.when(F.col("images").isNotNull(), F.sha2("images", 256).substr(1, 32)))
             .withColumn("text_group", F.coalesce("text_cluster", "text_hash")))
    return keyed.select("sample_id", "source", "text_hash", "text_chars", "image_group", "text_group",
                        F.sha2(_group_key(settings), 256).substr(1, 32).alias("group_id"))


def _group_key(settings: DedupConf) -> Column:
    return {
        Rule.IMAGE: F.coalesce("image_group", F.concat(F.lit("alone:"), "sample_id")),
        Rule.TEXT: F.col("text_group"),
        Rule.IMAGE_AND_TEXT: F.concat_ws("|", F.coalesce("image_group", F.lit("")), "text_group"),
    }[Rule(settings.rule)]


def _priority(settings: DedupConf) -> Column:
    return F.array(*[F.lit(s) for s in settings.source_priority]).cast("array<string>")


def _policy(members: DataFrame, settings: DedupConf, run_id: str) -> DataFrame:
    """Group sizes and the keep policy: earliest source in source_priority, then most text, then smallest id."""
    priority = F.array_position(_priority(settings), F.col("source")) if settings.source_priority else F.lit(0)
    rank_unlisted_last = F.when(priority == 0, F.lit(1 << 30)).otherwise(priority)
    group = Window.partitionBy("group_id")
    order = group.orderBy(rank_unlisted_last, F.col("text_chars").desc(), F.col("sample_id"))
    return (
        members.withColumn("group_size", F.count(F.lit(1)).over(group))
        .withColumn("representative", F.first("sample_id").over(order))
        .select(
            "sample_id", "source", "text_hash", "text_chars", "image_group", "text_group", "group_id", "group_size",
            "representative", (F.col("representative") == F.col("sample_id")).alias("is_representative"),
            F.lit(settings.rule).alias("rule"), _priority(settings).alias("source_priority"),
            F.current_timestamp().alias("grouped_at"), F.lit(run_id).alias("run_id"),
        )
    )


# The MERGE condition under which a stored group row takes the new one.
GROUP_CHANGED = " OR ".join(f"NOT (t.`{c}` <=> s.`{c}`)" for c in GROUP_FIELDS)
