"""Table contracts: one module per table with its StructType, keys, partitioning and version."""

from schemas.contract import TableContract
from schemas import (
    benchmark_images,
    benchmark_items,
    bronze_records,
    contamination,
    duplicate_groups,
    duplicate_pairs,
    image_embeddings,
    image_hashes,
    ingested_files,
    silver_images,
    silver_rejects,
    silver_samples,
    validations,
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
    duplicate_groups.CONTRACT,
    benchmark_items.CONTRACT,
    benchmark_images.CONTRACT,
    contamination.CONTRACT,
    validations.CONTRACT,
)

__all__ = ["ALL_TABLES", "TableContract"]
