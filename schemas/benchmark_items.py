"""bench.items: the items of benchmark test sets, read with the training sources' adapters."""

from pyspark.sql.types import ArrayType, LongType, StringType, StructField, StructType, TimestampType

from schemas import suites
from schemas.contract import TableContract

KEYS = ("benchmark", "item_id")

SCHEMA = StructType(
    [
        StructField("benchmark", StringType(), False),  # the entry's name in conf/benchmarks.yaml
        StructField("item_id", StringType(), False),  # the item's key in the benchmark (its source_key)
        StructField("sample_id", StringType(), False),  # what the same record would be called as training data
        StructField("image_ids", ArrayType(StringType(), True), False),  # bench.images, in order
        StructField("questions", ArrayType(StringType(), True), False),  # the user turns, normalised
        StructField("file", StringType(), False),
        StructField("row_index", LongType(), False),
        StructField("loaded_at", TimestampType(), False),
        StructField("run_id", StringType(), False),
    ]
)


def expectations(settings: None) -> list:
    return [*suites.standard(SCHEMA, KEYS), suites.matches("sample_id", suites.HEX_32)]


CONTRACT = TableContract(
    layer="bench",
    name="items",
    schema=SCHEMA,
    keys=KEYS,
    partition_by=("benchmark",),
    description="Benchmark test items (conf/benchmarks.yaml): questions and image ids, the decontamination targets.",
    expectations=expectations,
)
