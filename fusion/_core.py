"""Shared steps: validate lists, put each in canonical order, align documents across lists.

Everything works on *padded* lists: per retriever an ``(n_queries, depth)`` pair of id and score
arrays, id ``-1`` marking padding. One query is the case ``n_queries == 1``. The loops over
queries and entries run in the compiled kernels of :mod:`fusion._kernels`, without the GIL.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._kernels import align_rows, canonical_rows, entries_valid, order_union
from ._validate import check_uint_ids

PAD_ID = -1


class FusionResult(NamedTuple):
    """A fused ranking for one query, best first, with per-list explanations.

    ``ids`` ``(n,)`` int64 and ``scores`` ``(n,)`` float64, sorted by descending score, equal
    scores by ascending id. Per document ``i`` and input list ``j`` (columns follow the input
    order): ``ranks[i, j]`` its 1-based rank in list ``j`` (0 when absent), ``raw_scores[i, j]``
    the score list ``j`` gave it (NaN when absent), ``normalized[i, j]`` the value after
    normalisation, or the method's per-list term for rank methods (e.g. ``1 / (k + rank)`` for
    RRF; NaN when absent), ``contributions[i, j]`` its weighted share of the fused score (0 when
    absent, except for Borda). ``contributions.sum(axis=1) == scores`` for every method.
    ``weights`` ``(n_lists,)``: the weight each list had for this query (after any per-query
    weights or evidence; 0 for a list left out).
    """

    ids: np.ndarray
    scores: np.ndarray
    ranks: np.ndarray
    raw_scores: np.ndarray
    normalized: np.ndarray
    contributions: np.ndarray
    weights: np.ndarray | None = None


class Canonical(NamedTuple):
    """One list for a batch of queries in canonical order.

    Rows sorted by descending score, equal scores by ascending id, duplicates removed (the best
    score kept), padding (id -1, score NaN) at the end; the rank of column ``c`` is ``c + 1``.
    """

    ids: np.ndarray
    scores: np.ndarray
    sizes: np.ndarray


class Aligned(NamedTuple):
    """The union of documents of each query, flattened over queries.

    Rows ``offsets[q]:offsets[q + 1]`` are query ``q``'s documents in ascending id order.
    ``present[j]`` is list ``j``'s non-padding mask ``(n_queries, depth_j)`` and ``rows[j]`` the
    union row of each of those entries, in row-major order.
    """

    offsets: np.ndarray
    ids: np.ndarray
    present: list[np.ndarray]
    rows: list[np.ndarray]


def check_padded(ids: object, scores: object, where: str, ndim: int) -> tuple[np.ndarray, ...]:
    """Validate one (ids, scores) pair; return int64 ids and float64 scores (copies as needed)."""
    try:
        ids_a = np.asarray(ids)
        scores_a = np.asarray(scores)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ValueError(f"{where}: ids and scores must be {ndim}-D arrays: {exc}") from None
    if ids_a.ndim != ndim or scores_a.ndim != ndim:
        raise ValueError(
            f"{where}: ids and scores must be {ndim}-D arrays, got shapes "
            f"{ids_a.shape} and {scores_a.shape}"
        )
    if ids_a.shape != scores_a.shape:
        raise ValueError(
            f"{where}: ids and scores differ in shape: {ids_a.shape} vs {scores_a.shape}"
        )
    if ids_a.size and (ids_a.dtype == bool or not np.issubdtype(ids_a.dtype, np.integer)):
        raise ValueError(f"{where}: ids must be integers, got dtype {ids_a.dtype}")
    if scores_a.size and not (
        np.issubdtype(scores_a.dtype, np.floating) or np.issubdtype(scores_a.dtype, np.integer)
    ):
        raise ValueError(f"{where}: scores must be real numbers, got dtype {scores_a.dtype}")
    check_uint_ids(ids_a, where)
    ids_a = ids_a.astype(np.int64, copy=False)
    scores_a = scores_a.astype(np.float64, copy=False)
    if entries_valid(
        ids_a[None] if ndim == 1 else ids_a, scores_a[None] if ndim == 1 else scores_a
    ):
        return ids_a, scores_a
    if np.any(ids_a < PAD_ID):
        raise ValueError(f"{where}: ids must be >= 0 (-1 marks padding), got {ids_a.min()}")
    bad = (ids_a != PAD_ID) & ~np.isfinite(scores_a)
    raise ValueError(
        f"{where}: scores must be finite; found {scores_a[bad][0]!r} "
        f"({int(bad.sum())} non-finite score(s) on non-padding entries)"
    )


def canonicalize(ids: np.ndarray, scores: np.ndarray) -> Canonical:
    """Sort each row by (score desc, id asc), drop duplicate ids keeping the best, pad at the end.

    One compiled pass (:func:`fusion._kernels.canonical_rows`); rows that are already canonical
    (what the indexes return) are only checked and copied.
    """
    return Canonical(*canonical_rows(ids, scores))


def align(lists: list[Canonical]) -> Aligned:
    """Union of the canonical lists' ids per query (one compiled pass,
    :func:`fusion._kernels.align_rows`)."""
    widths = [c.ids.shape[1] for c in lists]
    starts = np.zeros(len(lists) + 1, dtype=np.int64)
    np.cumsum(widths, out=starts[1:])
    cat = lists[0].ids if len(lists) == 1 else np.concatenate([c.ids for c in lists], axis=1)
    offsets, union_ids, flat, counts = align_rows(np.ascontiguousarray(cat), starts)
    bounds = np.cumsum(counts).tolist()
    rows = [flat[lo:hi] for lo, hi in zip([0, *bounds[:-1]], bounds, strict=True)]
    present = [c.ids != PAD_ID for c in lists]
    return Aligned(offsets=offsets, ids=union_ids, present=present, rows=rows)


def scatter(al: Aligned, per_list: list[np.ndarray], fill: float, dtype: type = np.float64):
    """Place per-list padded values ``(n_queries, depth_j)`` into the aligned ``(U, L)`` matrix."""
    out = np.full((len(per_list), al.ids.shape[0]), fill, dtype=dtype)  # (U, L), F-order
    for j, values in enumerate(per_list):
        out[j, al.rows[j]] = values[al.present[j]]
    return out.T


def order_rows(al: Aligned, fused: np.ndarray, top: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Union rows of every query sorted by (fused desc, id asc), cut to ``top``.

    Returns the selected flat row indices (query by query, best first) and counts per query.
    """
    return order_union(al.offsets, fused, -1 if top is None else top)
