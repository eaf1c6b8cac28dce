"""ops.validations: one row per suite run on a batch: what was checked, what failed, what was committed.

Appended by the gate (blind appends: writers of any table record here at the same time).
"""

from pyspark.sql.types import ArrayType, BooleanType, LongType, StringType, StructField, StructType, TimestampType

from schemas.contract import TableContract

KEYS = ("table_name", "batch", "suite")

SCHEMA = StructType(
    [
        StructField("table_name", StringType(), False),  # logical name, e.g. silver.samples
        StructField("batch", StringType(), False),  # <run id>-<n>: the run's n-th write
        StructField("rows", LongType(), False),  # rows in the batch
        StructField("suite", StringType(), False),
        StructField("success", BooleanType(), False),
        StructField("evaluated", LongType(), False),  # expectations evaluated
        StructField("failed_expectations", ArrayType(StringType(), True), False),
        StructField("offending_keys", StringType(), True),  # JSON: failed expectation -> sample of keys
        StructField("version", LongType(), True),  # the table version the batch became; null: not committed
        StructField("refused_batch", StringType(), True),  # where a refused batch stays, readable for forensics
        StructField("stage", StringType(), False),
        StructField("run_id", StringType(), False),
        StructField("mlflow_run_id", StringType(), True),
        StructField("validated_at", TimestampType(), False),
    ]
)

CONTRACT = TableContract(
    layer="ops",
    name="validations",
    schema=SCHEMA,
    keys=KEYS,
    version=2,  # 2: batches (write-audit-publish) instead of table versions
    description="Every validation of a write by its table's suite, and the version it was committed as.",
)
