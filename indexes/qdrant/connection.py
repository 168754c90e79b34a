"""Qdrant connection helpers: the optional client import, shared embedded clients, term ids."""

from __future__ import annotations

import functools
import hashlib
import threading
import weakref
from typing import Any

import numpy as np

FORMAT_VERSION = 1
KIND_SPARSE = "QdrantSparseIndex"
KIND_DENSE = "QdrantDenseIndex"
KIND_BM25 = "QdrantBM25Index"
KINDS = (KIND_SPARSE, KIND_DENSE, KIND_BM25)
WRITE_BATCH = 256
"""Points per upsert / update request."""
_METRICS = {"ip": "Dot", "cosine": "Cosine"}

# Embedded local mode (path=...) locks its folder: every store on one path must share one client.
_CLIENTS: weakref.WeakValueDictionary[tuple[str, str], Any] = weakref.WeakValueDictionary()
_CLIENTS_LOCK = threading.Lock()


def _qdrant() -> Any:
    try:
        import qdrant_client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Qdrant backend needs qdrant-client: pip install 'splade-hybrid[qdrant]'"
        ) from exc
    return qdrant_client


def _serialised(method):
    """Run a store method under its client's I/O lock (embedded mode is not thread-safe)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._io:
            return method(self, *args, **kwargs)

    return wrapper


def term_id(token: str) -> int:
    """Stable 32-bit id of a BM25 term (first 4 bytes of its BLAKE2b digest, big-endian)."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "big")


def _is_embedded(client: Any) -> bool:
    """Whether a QdrantClient runs in embedded local mode (no server)."""
    try:
        from qdrant_client.local.qdrant_local import QdrantLocal
    except ImportError:  # pragma: no cover - layout of other client versions
        return False
    return isinstance(getattr(client, "_client", None), QdrantLocal)


def _sparse_query(models: Any, indices: np.ndarray, values: np.ndarray) -> Any:
    return models.SparseVector(indices=indices.tolist(), values=values.tolist())


def qdrant_models() -> Any:
    """``qdrant_client.models``; ``ImportError`` naming the extra when qdrant-client is missing."""
    return _qdrant().models
