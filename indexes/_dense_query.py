"""The common dense search with the fewest steps in Python (private): float32 query vectors as
an encoder returns them, no filter, threads or model name, an index without tombstones.

Searches run concurrently in several threads only while FAISS runs (it releases the GIL); the
Python around it is what they cannot overlap, and right after a FAISS search it runs with cold
caches (some 10-25 us for a numpy reduction, less for a call of a small compiled kernel). So
this path checks the query with one compiled call, calls FAISS's compiled search directly (what
``index.search`` of FAISS's Python wrapper calls after its own checks, which are done here),
and returns FAISS's arrays as they are when every row is full (one more compiled call).
Anything else (other types or shapes, non-finite values, a FAISS wrapper without
``search_c``) is left to the general path (:func:`search_common` returns None), which converts
it or raises its usual error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

from indexes._base import SearchResult
from indexes._faiss import faiss_module, finish

_CACHE = True
_F32 = np.dtype(np.float32)
_swig_ptr: Any = None


@njit(cache=_CACHE, nogil=True)
def all_finite(x):
    """Whether every value of the C-contiguous float array ``x`` is finite."""
    for v in x.ravel():
        if not np.isfinite(v):
            return False
    return True


@njit(cache=_CACHE, nogil=True)
def all_ids(ids):
    """Whether every entry of the C-contiguous int array ``ids`` is an id (>= 0, not padding)."""
    for v in ids.ravel():
        if v < 0:
            return False
    return True


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` scaled to unit length (zero rows stay zero), a new float32 array."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def search_common(index: Any, queries: Any, k: Any) -> SearchResult | None:
    """``index.search(queries, k)`` for a C-contiguous float32 ``(n, dim)`` array of finite
    values and an int ``k``, the index searched with FAISS's defaults (no ``threads``) and
    holding no tombstones or orphans; None for anything else (the general path's case)."""
    global _swig_ptr
    if type(queries) is not np.ndarray or type(k) is not int or k < 1 or index.threads is not None:
        return None
    shape = queries.shape
    n = index._count  # FAISS's ntotal: no tombstones or orphans (checked next)
    if (
        len(shape) != 2
        or shape[1] != index.dim
        or queries.dtype != _F32
        or not queries.flags.c_contiguous
        or index._tombstones.size
        or index._orphans
        or shape[0] == 0
        or n == 0
    ):
        return None
    if not all_finite(queries):  # the general path names the rows
        return None
    faiss_index = index._index
    search_c = getattr(faiss_index, "search_c", None)
    if search_c is None:
        return None
    q = unit_rows(queries) if index.metric == "cosine" else queries
    if _swig_ptr is None:
        _swig_ptr = faiss_module().swig_ptr
    n_q = shape[0]
    k = min(k, n)  # rows no wider than the collection
    scores = np.empty((n_q, k), dtype=np.float32)
    ids = np.empty((n_q, k), dtype=np.int64)
    search_c(n_q, _swig_ptr(q), k, _swig_ptr(scores), _swig_ptr(ids), None)
    if all_ids(ids):  # full rows: FAISS's arrays are the result
        return SearchResult(ids, scores)
    return finish(ids, scores, k, k)
