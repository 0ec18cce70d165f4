"""Bring-your-own vectors: validating numpy arrays and cutting them into `EmbeddingChunk`s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence

import numpy as np

from ._proto import common_pb2, model_admin_pb2

# Bytes of vectors and ids per chunk: a quarter of the server's 16 MiB message cap.
CHUNK_BYTES = 4 * 1024 * 1024
# The server's row cap per chunk.
MAX_CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class ImportSummary:
    """What `ModelAdmin.ImportEmbeddings` stored (the version is ready to activate)."""

    model_version: str
    customers: int
    items: int
    erased_skipped: int
    build_seconds: float

    @classmethod
    def from_proto(cls, summary: model_admin_pb2.ImportSummary) -> "ImportSummary":
        return cls(summary.model_version, summary.customers, summary.items, summary.erased_skipped,
                   summary.build_seconds)


@dataclass(frozen=True)
class Table:
    """Validated vectors of one entity: `len(ids)` rows of float32, C-contiguous."""

    entity: int
    ids: List[str]
    vectors: np.ndarray

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]


def table(entity: int, name: str, ids: Sequence[str], vectors: np.ndarray) -> Table:
    """Checks one entity's arguments: a 2-D finite array with one row per string id."""
    array = np.asarray(vectors)
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"{name}_vectors: expected a 2-D array (rows × dim ≥ 1), got shape {array.shape}")
    ids = list(ids)
    if len(ids) != array.shape[0]:
        raise ValueError(f"{name}_ids: {len(ids)} ids for {array.shape[0]} rows of {name}_vectors")
    if not all(isinstance(i, str) for i in ids):
        raise TypeError(f"{name}_ids: ids must be strings")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{name}_vectors: NaN or infinite values (as float32)")
    return Table(entity, ids, array)


def chunk_rows_for(tables: Sequence[Table], chunk_rows: Optional[int]) -> int:
    """Rows per chunk: as asked, or as many as fit CHUNK_BYTES with the longest id."""
    if chunk_rows is not None:
        if not 1 <= chunk_rows <= MAX_CHUNK_ROWS:
            raise ValueError(f"chunk_rows: must be in 1..={MAX_CHUNK_ROWS}")
        return chunk_rows
    longest_id = max((len(i.encode()) for t in tables for i in t.ids), default=0)
    row_bytes = 4 * tables[0].dim + longest_id + 8  # floats, the id, field tags and lengths
    return max(1, min(MAX_CHUNK_ROWS, CHUNK_BYTES // row_bytes))


def chunks(version: str, source: Table, rows: int) -> Iterator[model_admin_pb2.EmbeddingChunk]:
    """The table as chunks of at most `rows` rows, each naming the version and dim."""
    for start in range(0, len(source.ids), rows):
        block = source.vectors[start:start + rows]
        yield model_admin_pb2.EmbeddingChunk(
            model_version=version, entity=source.entity, dim=source.dim,
            ids=source.ids[start:start + rows], values=block.ravel().tolist())


def tables(customer_ids: Sequence[str], customer_vectors: np.ndarray,
           item_ids: Sequence[str], item_vectors: np.ndarray) -> List[Table]:
    """Both entities' tables, checked to share one dimension."""
    customers = table(common_pb2.CUSTOMER, "customer", customer_ids, customer_vectors)
    items = table(common_pb2.ITEM, "item", item_ids, item_vectors)
    if customers.dim != items.dim:
        raise ValueError(f"customer_vectors has dim {customers.dim}, item_vectors {items.dim}: one space, one dim")
    return [customers, items]
