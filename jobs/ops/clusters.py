"""Duplicate clusters inside the connected components: differences do not chain.

Two images whose pair passed the pixel check with nothing set aside (a resize, a mirror, a crop,
a tone change) show the same content, and so does a chain of such pairs: their connected
components ("cores") are duplicates throughout. A pair that passed only because the check set up
to three differing regions aside as overlays is weaker: two renderings of a synthetic scene that
differ in one tower pass, and so do the next two, each in another tower, until a chain links
scenes that share nothing (on the first evaluation ~50 such pairs chained NLVR scenes into 436
false pairs). So a cluster is a pivot core and the cores with such a pair to the pivot core
itself, as in KwikCluster (Ailon, Charikar and Newman 2008), run in rounds like ParallelPivot
(Pan et al., NIPS 2015): in each round every unclustered core whose priority beats all its
unclustered neighbours becomes a pivot, and its unclustered neighbours join it (the highest pivot
when several). The priority is the core's size, then its number of such pairs (an original and its
clean copies outrank a copy with a caption), ties broken by a hash of the label, so a chain settles
in a few rounds. Each round is a few joins over the pairs of unclustered cores, checkpointed to
storage (a lost executor costs no earlier round); only a count per round reaches the driver.

Incremental: a cluster lies inside a connected component of all pairs (jobs/ops/components.py),
so a run recomputes the clusters of the components its pairs touch, from their stored pairs and
the new ones, and the result equals a run over the whole graph.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.ops.components import components, overlay, relabel

log = logging.getLogger("finelake")
MAX_ROUNDS = 200
Checkpoint = Callable[[DataFrame, str], DataFrame]


def clusters(members: DataFrame, pairs: DataFrame, checkpoint: Checkpoint, name: str = "clusters") -> DataFrame:
    """(member, cluster) of every `members` (member): `pairs` (left_id, right_id, overlays) among
    them, overlays null or 0 for a pair that set nothing aside. `cluster` names the pivot core
    (its smallest member). `name` keeps the checkpoints of two graphs of one run apart."""
    clean = F.coalesce(F.col("overlays"), F.lit(0)) == 0
    joined = components(pairs.where(clean).select(F.col("left_id").alias("src"), F.col("right_id").alias("dst")),
                        checkpoint, f"{name}-cores")
    core_of = checkpoint(members.select("member").distinct().join(joined, "member", "left").select(
        "member", F.coalesce("component", "member").alias("core")), f"{name}-core-of")
    ends = {side: core_of.select(F.col("member").alias(side), F.col("core").alias(f"{side}_core"))
            for side in ("left_id", "right_id")}
    weak = (pairs.where(~clean).join(ends["left_id"], "left_id").join(ends["right_id"], "right_id")
            .select(F.col("left_id_core").alias("src"), F.col("right_id_core").alias("dst")).where("src <> dst"))
    weak = weak.unionByName(weak.select(F.col("dst").alias("src"), F.col("src").alias("dst"))).distinct()
    degree = weak.groupBy("src").agg(F.count("*").alias("pairs"))
    cores = (core_of.groupBy("core").agg(F.count("*").alias("size"))
             .join(degree.withColumnRenamed("src", "core"), "core", "left")
             .select(F.col("core").alias("node"), F.struct(
                 "size", F.coalesce("pairs", F.lit(0)).alias("pairs"), F.md5("core").alias("hash"),
                 F.col("core").alias("label")).alias("priority")))
    pivots = pivot_rounds(cores, weak, checkpoint, name)
    return core_of.join(pivots.withColumnRenamed("node", "core"), "core").select("member", F.col("pivot").alias("cluster"))


def pivot_rounds(nodes: DataFrame, edges: DataFrame, checkpoint: Checkpoint, name: str) -> DataFrame:
    """(node, pivot) of every `nodes` (node, priority) under `edges` (src, dst, both directions)."""
    free = nodes
    settled = []
    for round_ in range(1, MAX_ROUNDS + 1):
        free = checkpoint(free, f"{name}-{round_}-free")
        if free.isEmpty():
            log.info("pivot clustering: settled after %d rounds", round_ - 1)
            return functools.reduce(DataFrame.unionByName, settled) if settled else nodes.select(
                "node", F.col("node").alias("pivot"))
        among = (edges.join(free.select(F.col("node").alias("src")), "src", "left_semi")
                 .join(free.select(F.col("node").alias("dst"), "priority"), "dst"))
        strongest = among.groupBy("src").agg(F.max("priority").alias("strongest")).withColumnRenamed("src", "node")
        pivots = (free.join(strongest, "node", "left")
                  .where(F.col("strongest").isNull() | (F.col("priority") > F.col("strongest"))).select("node", "priority"))
        claimed = (among.join(pivots.select(F.col("node").alias("src")), "src", "left_anti")
                   .join(pivots.select(F.col("node").alias("dst")), "dst", "left_semi")
                   .groupBy("src").agg(F.max(F.struct("priority", "dst")).alias("best"))
                   .select(F.col("src").alias("node"), F.col("best.dst").alias("pivot")))
        now = checkpoint(pivots.select("node", F.col("node").alias("pivot")).unionByName(claimed), f"{name}-{round_}")
        settled.append(now)
        free = free.join(now, "node", "left_anti")
    raise RuntimeError(f"pivot clustering did not settle in {MAX_ROUNDS} rounds")


def recluster(labels: DataFrame, changed: DataFrame, new_pairs: DataFrame, stored_pairs: DataFrame,
              checkpoint: Checkpoint, name: str = "clusters") -> DataFrame:
    """(member, component, cluster) of every member whose component or cluster a run changes.

    `labels` (member, component, cluster) before the run; `changed` (member, component) from
    components.relabel; `new_pairs` and `stored_pairs` (left_id, right_id, overlays): this run's
    and the table's. The clusters of every component holding a changed member or a new pair's end
    are recomputed from the pairs among its members.
    """
    after = checkpoint(overlay(labels.select("member", "component"), changed.select("member", "component")),
                       f"{name}-after")
    ends = new_pairs.select(F.col("left_id").alias("member")).unionByName(new_pairs.select(F.col("right_id").alias("member")))
    touched = after.join(ends.unionByName(changed.select("member")).distinct(), "member", "left_semi").select("component")
    members = checkpoint(after.join(touched.distinct(), "component", "left_semi"), f"{name}-members")
    among = (stored_pairs.select("left_id", "right_id", "overlays").unionByName(
                 new_pairs.select("left_id", "right_id", "overlays"))
             .join(members.select(F.col("member").alias("left_id")), "left_id", "left_semi")
             .join(members.select(F.col("member").alias("right_id")), "right_id", "left_semi"))
    found = members.join(clusters(members, among, checkpoint, name), "member")
    before = labels.select("member", F.col("component").alias("was_component"), F.col("cluster").alias("was_cluster"))
    return found.join(before, "member", "left").where(
        ~F.col("component").eqNullSafe(F.col("was_component")) | ~F.col("cluster").eqNullSafe(F.col("was_cluster"))
    ).select("member", "component", "cluster")


def relabel_and_cluster(labels: DataFrame, pairs: DataFrame, members: DataFrame, stored_pairs: DataFrame,
                        checkpoint: Checkpoint, name: str) -> DataFrame:
    """(member, component, cluster) of every member whose component or cluster this run's `pairs`
    and new `members` change (components.relabel, then recluster)."""
    moved = checkpoint(relabel(labels, pairs, members, checkpoint, name), f"{name}-moved")
    return recluster(labels, moved, pairs, stored_pairs, checkpoint, f"{name}-clusters")
