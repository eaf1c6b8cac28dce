"""ops.validations: one row per gated table version: which suite ran, what failed, what was published."""

from pyspark.sql.types import ArrayType, BooleanType, LongType, StringType, StructField, StructType, TimestampType

from schemas.contract import TableContract

KEYS = ("table_name", "version", "suite")

SCHEMA = StructType(
    [
        StructField("table_name", StringType(), False),  # logical name, e.g. silver.samples
        StructField("version", LongType(), False),  # the Delta version validated
        StructField("suite", StringType(), False),
        StructField("success", BooleanType(), False),
        StructField("evaluated", LongType(), False),  # expectations evaluated
        StructField("failed_expectations", ArrayType(StringType(), True), False),
        StructField("offending_keys", StringType(), True),  # JSON: failed expectation -> sample of keys
        StructField("published_version", LongType(), False),  # what readers see after this validation
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
    description="Every validation of a table version by its suite, and the version published after it.",
)
