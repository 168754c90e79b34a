"""Retrieval structures over vectors and term weights: sparse inverted index, BM25, FAISS.

Speaks numpy and scipy only (ids + scores arrays, CSR matrices); no models, no text processing.
Index classes are imported lazily so that, say, BM25 users never import FAISS.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from indexes._base import IndexCorruptedError, IndexFormatError, SearchResult

if TYPE_CHECKING:
    from indexes.bm25 import BM25Index
    from indexes.dense import DenseIndex
    from indexes.sparse import SparseIndex

_LAZY = {
    "SparseIndex": "indexes.sparse",
    "BM25Index": "indexes.bm25",
    "DenseIndex": "indexes.dense",
    "QdrantStore": "indexes.qdrant",
    "QdrantSparseIndex": "indexes.qdrant",
    "QdrantDenseIndex": "indexes.qdrant",
    "QdrantBM25Index": "indexes.qdrant",
}

__all__ = [
    "BM25Index",
    "DenseIndex",
    "IndexCorruptedError",
    "IndexFormatError",
    "QdrantBM25Index",
    "QdrantDenseIndex",
    "QdrantSparseIndex",
    "QdrantStore",
    "SearchResult",
    "SparseIndex",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'indexes' has no attribute {name!r}")
