"""Spark jobs, one module per stage, each with main(argv) for spark-submit and the finelake command."""
