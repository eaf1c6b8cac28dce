"""gold.contamination_checks: which training sample has been checked against which benchmark, and how.

A sample is checked once per benchmark and `settings` (the digest of the thresholds and the
embedding model the check used), so a run checks only new samples, new benchmarks or new settings.
"""

from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import TableContract

KEYS = ("sample_id", "benchmark", "settings")

SCHEMA = StructType(
    [
        StructField("sample_id", StringType(), False),
        StructField("source", StringType(), False),
        StructField("benchmark", StringType(), False),
        StructField("settings", StringType(), False),
        StructField("checked_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)


def expectations(settings) -> list:
    return [*suites.standard(SCHEMA, KEYS), suites.matches("settings", suites.HEX_16)]


CONTRACT = TableContract(
    layer="gold",
    name="contamination_checks",
    schema=SCHEMA,
    keys=KEYS,
    partition_by=("benchmark",),
    description="Training samples checked against a benchmark under one set of decontamination settings.",
    settings="decontaminate",
    expectations=expectations,
)
