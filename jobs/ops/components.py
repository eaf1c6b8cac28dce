"""Connected components that scale: large-star / small-star (Kiveris et al., SoCC 2014), incremental.

Each round is a few shuffles over the edge table and the graph converges in O(log n) rounds in
practice (O(log^2 n) proven), whatever its shape: a chain of a million images takes tens of
rounds, not a million. A component is named by its smallest member. Every round's edges are
checkpointed to storage, so a lost executor costs no earlier round (localCheckpoint would).

Incremental (`relabel`): new edges touch some components; those components' members are tied
to their old label by star edges, the new edges are added, and only that subgraph is solved.
Components the new edges do not touch are never read beyond the lookup of touched labels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

log = logging.getLogger("finelake")
MAX_ROUNDS = 200


def large_star(edges: DataFrame) -> DataFrame:
    """Every vertex links its larger neighbours to the smallest of its neighbourhood (itself included)."""
    both = edges.select("src", "dst").unionByName(edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    smallest = both.groupBy("src").agg(F.least(F.min("dst"), F.col("src")).alias("m"))
    linked = both.join(smallest, "src").where(F.col("dst") > F.col("src"))
    return linked.select(F.col("dst").alias("src"), F.col("m").alias("dst")).distinct()


def small_star(edges: DataFrame) -> DataFrame:
    """Every vertex links itself and its smaller neighbours to the smallest of them."""
    down = edges.select(F.greatest("src", "dst").alias("src"), F.least("src", "dst").alias("dst")).where("src <> dst")
    smallest = down.groupBy("src").agg(F.min("dst").alias("m"))
    joined = down.join(smallest, "src")
    moved = joined.where(F.col("dst") != F.col("m")).select(F.col("dst").alias("src"), F.col("m").alias("dst"))
    return moved.unionByName(smallest.select("src", F.col("m").alias("dst"))).distinct()


def components(edges: DataFrame, checkpoint: Callable[[DataFrame, str], DataFrame], name: str = "components") -> DataFrame:
    """(member, component) of every vertex of `edges` (src, dst): component = its smallest member.

    Converged when every edge points at a vertex that points nowhere: each component is then a
    star around its smallest member. Only a count per round reaches the driver.
    """
    current = checkpoint(edges.select("src", "dst").where("src <> dst"), f"{name}-0")
    for round_ in range(1, MAX_ROUNDS + 1):
        current = checkpoint(small_star(large_star(current)), f"{name}-{round_}")
        unsettled = current.select(F.col("dst").alias("v")).distinct().join(
            current.select(F.col("src").alias("v")).distinct(), "v").count()
        if unsettled == 0:
            log.info("connected components: converged after %d rounds", round_)
            roots = current.select(F.col("dst").alias("member"), F.col("dst").alias("component")).distinct()
            return current.select(F.col("src").alias("member"), F.col("dst").alias("component")).unionByName(roots)
    raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")


def relabel(labels: DataFrame, edges: DataFrame, members: DataFrame,
            checkpoint: Callable[[DataFrame, str], DataFrame], name: str = "components") -> DataFrame:
    """(member, component) for what changes when `edges` (left_id, right_id) and `members` (member)
    join a graph already labelled by `labels` (member, component): new members, and every member
    of a component the new edges merge with another.

    `labels` holds every member seen so far, a component's label being its smallest member.
    `name` keeps the checkpoints of two graphs of one run apart.
    """
    ends = edges.select(F.col("left_id").alias("member")).unionByName(edges.select(F.col("right_id").alias("member")))
    touched = (ends.distinct().join(labels, "member", "left")
               .select("member", F.coalesce("component", "member").alias("component")))
    affected = touched.select("component").distinct()
    old_members = labels.join(affected, "component", "left_semi")
    graph = (edges.select(F.col("left_id").alias("src"), F.col("right_id").alias("dst"))
             .unionByName(touched.select(F.col("member").alias("src"), F.col("component").alias("dst")))
             .unionByName(old_members.select(F.col("member").alias("src"), F.col("component").alias("dst"))))
    solved = components(graph, checkpoint, name)
    lone = members.join(labels, "member", "left_anti").join(solved, "member", "left_anti").select(
        "member", F.col("member").alias("component"))
    found = solved.unionByName(lone).distinct()
    return found.join(labels.withColumnRenamed("component", "before"), "member", "left").where(
        F.col("before").isNull() | (F.col("before") != F.col("component"))).select("member", "component")


def overlay(labels: DataFrame, changed: DataFrame) -> DataFrame:
    """`labels` with the `changed` rows (member and the label columns of `changed`) in place of the old ones."""
    return labels.join(changed.select("member"), "member", "left_anti").select(*changed.columns).unionByName(changed)


def labels_of(table: DataFrame, kind: str) -> DataFrame:
    """(member, component, cluster) of one kind of gold.duplicate_components."""
    return table.where(F.col("kind") == kind).select(F.col("member_id").alias("member"), "component", "cluster")


def component_rows(changed: DataFrame, kind: str, run_id: str) -> DataFrame:
    """gold.duplicate_components rows of members with a new component or cluster."""
    return changed.select(F.lit(kind).alias("kind"), F.col("member").alias("member_id"), "component", "cluster",
                          F.current_timestamp().alias("labelled_at"), F.lit(run_id).alias("run_id"))
