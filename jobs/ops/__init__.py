"""The library layer: DataFrame -> DataFrame operations that the stage jobs compose (and never copy)."""
