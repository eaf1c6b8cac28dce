"""The small job runtime: configuration, Spark session, Delta tables, stage plumbing."""
