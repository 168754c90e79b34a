"""The public face of :mod:`indexes` for code built on it: what every index returns and
provides, and the small helpers saved indexes share.

``hybrid/`` imports from here, never from a private module. (The definitions live in
``indexes/_base.py`` for now and are re-exported unchanged.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from indexes import _base
from indexes._base import (
    IndexCorruptedError,
    IndexFormatError,
    SearchResult,
    check_k,
    read_meta,
    write_meta,
)
from indexes._validate import short

META_FILE, PAD_ID, PAD_SCORE, empty_result = (
    _base.META_FILE,
    _base.PAD_ID,
    _base.PAD_SCORE,
    _base.empty_result,
)

__all__ = [
    "META_FILE",
    "PAD_ID",
    "PAD_SCORE",
    "Index",
    "IndexCorruptedError",
    "IndexFormatError",
    "SearchResult",
    "check_k",
    "empty_result",
    "read_meta",
    "short",
    "write_meta",
]


@runtime_checkable
class Index(Protocol):
    """What a retriever needs of an index (the local sparse, BM25 and FAISS indexes, and the
    Qdrant views, all provide it). ``encoded`` is what the retriever's encoder returns: a CSR
    matrix (sparse), a float32 array (dense) or token lists (BM25)."""

    def add(self, encoded: Any) -> np.ndarray:
        """Index documents; returns their internal ids (consecutive integers)."""
        ...

    def search(self, encoded: Any, k: int) -> SearchResult:
        """Top-``k`` internal ids and scores per query, padded with -1 / -inf."""
        ...

    def delete(self, ids: np.ndarray) -> None:
        """Remove documents by internal id."""
        ...

    def save(self, path: str | Path) -> Any:
        """Write the index to a folder."""
        ...

    def __len__(self) -> int:
        """Live (not deleted) documents."""
        ...
