"""Table contracts: one module per table with its StructType, keys, partitioning and version."""

from schemas.contract import TableContract
from schemas import (
    bronze_records,
    image_embeddings,
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
    validations.CONTRACT,
)

__all__ = ["ALL_TABLES", "TableContract"]
