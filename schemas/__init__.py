"""Table contracts: one module per table with its StructType, keys, partitioning, version, vocabularies and suite."""

from schemas.contract import TableContract
from schemas import (
    benchmark_images,
    benchmark_items,
    bronze_records,
    captions,
    contamination,
    contamination_checks,
    curated,
    curation_decisions,
    difficulty,
    duplicate_components,
    duplicate_groups,
    duplicate_pairs,
    image_embeddings,
    image_hashes,
    ingested_files,
    silver_images,
    silver_rejects,
    reasoning,
    routing,
    silver_samples,
    turn_ratings,
    validations,
    verdicts,
)

ALL_TABLES: tuple[TableContract, ...] = (
    bronze_records.CONTRACT,
    ingested_files.CONTRACT,
    silver_samples.CONTRACT,
    silver_images.CONTRACT,
    silver_rejects.CONTRACT,
    image_embeddings.CONTRACT,
    image_hashes.CONTRACT,
    duplicate_pairs.CONTRACT,
    duplicate_components.CONTRACT,
    duplicate_groups.CONTRACT,
    benchmark_items.CONTRACT,
    benchmark_images.CONTRACT,
    contamination.CONTRACT,
    contamination_checks.CONTRACT,
    captions.CONTRACT,
    turn_ratings.CONTRACT,
    reasoning.CONTRACT,
    verdicts.CONTRACT,
    routing.CONTRACT,
    difficulty.CONTRACT,
    curated.CONTRACT,
    curation_decisions.CONTRACT,
    validations.CONTRACT,
)

BY_NAME: dict[str, TableContract] = {c.logical_name: c for c in ALL_TABLES}

__all__ = ["ALL_TABLES", "BY_NAME", "TableContract"]
