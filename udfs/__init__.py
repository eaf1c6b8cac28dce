"""Pure functions over records, images, text and Arrow batches; no SparkSession needed to test them."""
