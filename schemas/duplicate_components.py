"""gold.duplicate_components: the connected component and the duplicate cluster of every image and instruction.

A component is named by its smallest member id. Dedup keeps this table so that new pairs
relabel only the components they join (jobs/ops/components.py), never the whole graph, and
recompute the clusters inside those components only (jobs/ops/clusters.py): a cluster is a core
of members joined by pairs that set nothing aside, and the cores with an overlay-explained pair
to it; samples are grouped by cluster. Version 2 adds `cluster` (a version 1 lake: empty the
gold.duplicate_* tables and gold.image_hashes and re-run dedup).
"""

from enum import StrEnum

from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import TableContract


class Kind(StrEnum):
    IMAGE = "image"  # members are image ids, joined by pHash and SSCD pairs
    TEXT = "text"  # members are instruction hashes, joined by MinHash pairs


KEYS = ("kind", "member_id")

SCHEMA = StructType(
    [
        StructField("kind", StringType(), False),
        StructField("member_id", StringType(), False),
        StructField("component", StringType(), False),  # the smallest member id of the component
        StructField("cluster", StringType(), False),  # the smallest member id of the cluster's pivot core
        StructField("labelled_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)


CHECKS = {"check_component_is_smallest": lambda settings: F.col("component") <= F.col("member_id"),
          "check_cluster_in_component": lambda settings: F.col("component") <= F.col("cluster")}


def expectations(settings: None) -> list:
    return [*suites.standard(SCHEMA, KEYS), suites.in_set("kind", list(Kind)), *suites.all_true(*CHECKS)]


CONTRACT = TableContract(
    layer="gold",
    name="duplicate_components",
    schema=SCHEMA,
    keys=KEYS,
    partition_by=("kind",),
    version=2,  # 2: cluster
    description="Connected component and duplicate cluster (smallest member ids) of every image and instruction hash "
                "under dedup's pairs.",
    expectations=expectations,
    checks=CHECKS,
)
