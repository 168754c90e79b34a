"""Compiled steps of the engine's fusion (private): adaptive fusion's per-query weights
(:func:`scale_rows`, behind :func:`fusion.methods.scaled_weights`) and the trusted entry's one
GIL-free call (:func:`fuse_checked`, behind :func:`fusion.trusted.fuse_trusted`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from ._kernels import entries_valid, fuse_lists

FUSED, INVALID, LEFT_OUT, OVERFLOW = 0, 1, 2, 3
"""What :func:`fuse_checked` says: fused, an invalid entry, evidence out of range or a list left
out for some query, a statistic or fused score that overflowed."""


@njit(cache=True, nogil=True)
def scale_rows(w, e):
    """``(out, in_range, all_positive)`` for weights ``w`` (``(1, L)``: the same for every
    query, or ``(n, L)``) and evidence ``e`` ``(n, L)``: ``out[q, j] = w[q, j] * e[q, j]``,
    except that a query with no positive product keeps its weights; ``in_range`` whether every
    evidence value is in [0, 1] (False for NaN); ``all_positive`` whether every ``out`` value
    is > 0."""
    n, n_lists = e.shape
    out = np.empty((n, n_lists))
    in_range = True
    all_positive = True
    for q in range(n):
        r = q if w.shape[0] != 1 else 0
        alive = False
        for j in range(n_lists):
            x = e[q, j]
            if not (x >= 0.0 and x <= 1.0):
                in_range = False
            v = w[r, j] * x
            out[q, j] = v
            if v > 0:
                alive = True
        if not alive:  # no evidence for any list: the weights as configured
            for j in range(n_lists):
                out[q, j] = w[r, j]
        for j in range(n_lists):
            if not out[q, j] > 0:
                all_positive = False
    return out, in_range, all_positive


@njit(cache=True, nogil=True)
def fuse_checked(ids, scores, starts, norm, depth, w, e, scaled, uses_rank, kind, power, k, top):
    """:func:`fusion._kernels.fuse_lists` of side-by-side lists after their checks, in one call:
    ``(status, weights, *fields, kept)``. ``w`` ``(1, L)`` positive weights, scaled by the
    evidence ``e`` ``(n, L)`` when ``scaled`` (:func:`scale_rows`); ``status`` :data:`FUSED`
    or why not (then the other fields are empty)."""
    n_q = ids.shape[0]
    n_lists = w.shape[1]
    if not entries_valid(ids, scores):
        return _failed(INVALID, n_lists)
    if scaled:
        rows, in_range, positive = scale_rows(w, e)
        if not (in_range and positive):
            return _failed(LEFT_OUT, n_lists)
    else:
        rows = np.empty((n_q, n_lists))
        for q in range(n_q):
            rows[q] = w[0]
    active = np.arange(n_lists)
    ok, union, fused, ranks, raw, terms, contrib, kept = fuse_lists(
        ids, scores, starts, norm, depth, rows, active, n_lists, uses_rank, kind, power, k, top
    )
    if not ok:
        return _failed(OVERFLOW, n_lists)
    return FUSED, rows, union, fused, ranks, raw, terms, contrib, kept


@njit(cache=True, nogil=True)
def _failed(status, n_lists):
    none = np.empty(0, np.int64)
    matrix = np.empty((0, n_lists))
    ranks = np.empty((0, n_lists), np.int64)
    return status, matrix, none, np.empty(0), ranks, matrix, matrix, matrix, none
