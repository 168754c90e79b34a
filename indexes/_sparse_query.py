"""The common SPLADE search in one compiled call (private): a batch of queries as a canonical
float32 CSR matrix against an index of one segment, in the calling thread.

What :meth:`indexes.sparse.SparseIndex.search` checks and prepares in Python for any input
(canonical form, weights > 0 and finite, the columns, the quantisation scaling) is done here
inside the kernel, without the GIL, for the input an encoder returns. Anything else, including
every input that is not valid, is left to the general path (:func:`search_common` returns
None), which canonicalises it or raises its usual error: both paths give identical results and
errors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from numba import njit

from indexes._base import SearchResult
from indexes._sparse_kernels import search_segment

_CACHE = True
_CSR = (sp.csr_matrix, sp.csr_array)
_F32 = np.dtype(np.float32)
_POINTERS = (np.dtype(np.int32), np.dtype(np.int64))
_FLOAT32_MAX = np.float32(np.finfo(np.float32).max)
_GENERAL = 1  # a status: the query needs the general path
_OVERFLOW = 2  # a status: a score reached +inf


def overflow_error() -> ValueError:
    return ValueError(
        "a score overflowed float32 (query weight x document weight too large); "
        "scale the query or document weights down"
    )


@njit(cache=_CACHE, nogil=True)
def canonical_values(q_ptr, q_idx, q_data, step, n_cols):
    """``(ok, q_data * float32(step))``, the product as numpy computes a float32 array times a
    Python float, ``ok`` whether the CSR arrays are canonical and valid: one row per pointer pair,
    pointers from 0 to ``len(q_idx)`` never decreasing, column indices strictly increasing
    within a row and below ``n_cols``, every weight > 0 and finite, one per index."""
    nnz = q_idx.shape[0]
    none = (False, np.empty(0, np.float32))
    n_q = q_ptr.shape[0] - 1
    if n_q < 0 or q_data.shape[0] != nnz or q_ptr[0] != 0 or q_ptr[n_q] != nnz:
        return none
    s = np.float32(step)
    out = np.empty(nnz, np.float32)
    for q in range(n_q):
        a = q_ptr[q]
        b = q_ptr[q + 1]
        if b < a:
            return none
        prev = -1
        for p in range(a, b):
            t = q_idx[p]
            x = q_data[p]
            if t <= prev or t >= n_cols or not (x > 0 and x <= _FLOAT32_MAX):
                return none  # not canonical (the general path fixes it) or not valid
            prev = t
            out[p] = x * s
    return True, out


@njit(cache=_CACHE, nogil=True)
def search_checked(
    ptr, docs, w, dense_of, dense, deleted, q_ptr, q_idx, q_data, step, n_cols, k, acc2
):
    """:func:`indexes._sparse_kernels.search_segment` of raw CSR query arrays, checked and
    scaled by :func:`canonical_values` first: ``(ids, scores, status)``, status 0 (done),
    ``_GENERAL`` (not searched: the arrays need the general path) or ``_OVERFLOW``."""
    ok, q_val = canonical_values(q_ptr, q_idx, q_data, step, n_cols)
    if not ok:
        return np.empty((0, 0), np.int64), np.empty((0, 0), np.float32), _GENERAL
    ids, scores, overflow = search_segment(
        ptr, docs, w, dense_of, dense, deleted, q_ptr, q_idx, q_val, k, acc2
    )
    return ids, scores, _OVERFLOW if overflow else 0


def search_common(index: Any, queries: Any, k: Any) -> SearchResult | None:
    """``index.search(queries, k)`` (no filter, default threads) when ``queries`` is a CSR
    matrix of float32 weights, ``k`` an int and the index one segment searched in the calling
    thread; None for anything else (and for input that needs canonicalising or is not valid):
    the caller then takes the general path."""
    args = common_args(index, queries, k)
    if args is None:
        return None
    acc = index._workspace(1)
    out = search_checked(*args, acc)
    index._pool.append(acc)  # clean again: the kernel returned
    return common_result(out)


def common_args(index: Any, queries: Any, k: Any) -> tuple | None:
    """:func:`search_checked`'s arguments but the last (an accumulator of
    ``index._workspace(1)``, to give back to ``index._pool`` once the kernel returned) for
    :func:`search_common`'s case; None for anything else."""
    segments = index._segments
    if type(queries) not in _CSR or type(k) is not int or k < 1 or len(segments) != 1:
        return None
    seg = segments[0]
    shape = queries.shape
    step = index.quant_step
    if seg.base or len(shape) != 2 or type(step) is not float:
        return None
    n_q, n_cols = shape
    k = min(k, index._n_live)
    if n_q == 0 or k == 0 or n_cols > index.dim or (n_q > 1 and index._n_threads(None, n_q) > 1):
        return None
    data, idx, ptr = queries.data, queries.indices, queries.indptr
    if data.dtype != _F32 or idx.dtype not in _POINTERS or ptr.dtype != idx.dtype:
        return None
    postings = (seg.ptr, seg.docs, seg.weights, seg.dense_of, seg.dense, seg.deleted)
    return (*postings, ptr, idx, data, step, n_cols, k)


def common_result(out: tuple) -> SearchResult | None:
    """The result of :func:`search_checked`'s output ``out``: None when the query needs the
    general path; the overflow error when a score overflowed."""
    ids, scores, status = out
    if status == _GENERAL:
        return None
    if status == _OVERFLOW:
        raise overflow_error()
    return SearchResult(ids, scores)
