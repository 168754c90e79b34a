"""Shared steps: validate lists, put each in canonical order, align documents across lists.

Everything works on *padded* lists: per retriever an ``(n_queries, depth)`` pair of id and score
arrays, id ``-1`` marking padding. One query is the case ``n_queries == 1``. All steps are
vectorised across queries (no Python loop per query or per document).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validate import check_uint_ids

PAD_ID = -1
_BIG = np.iinfo(np.int64).max


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
    valid = ids_a != PAD_ID
    if np.any(ids_a < PAD_ID):
        raise ValueError(f"{where}: ids must be >= 0 (-1 marks padding), got {ids_a.min()}")
    bad = valid & ~np.isfinite(scores_a)
    if np.any(bad):
        raise ValueError(
            f"{where}: scores must be finite; found {scores_a[bad][0]!r} "
            f"({int(bad.sum())} non-finite score(s) on non-padding entries)"
        )
    return ids_a, scores_a


def canonicalize(ids: np.ndarray, scores: np.ndarray) -> Canonical:
    """Sort each row by (score desc, id asc), drop duplicate ids keeping the best, pad at the end.

    Rows that are already canonical (what the indexes return) are detected with a few vectorised
    comparisons and left untouched; only the others are sorted.
    """
    depth = ids.shape[1]
    valid = ids != PAD_ID
    s = np.where(valid, scores, -np.inf)
    if depth > 1:
        v_next = valid[:, 1:]
        pads_last = ~np.any(v_next & ~valid[:, :-1], axis=1)
        a, b = s[:, :-1], s[:, 1:]
        ordered = (a > b) | ((a == b) & (ids[:, :-1] < ids[:, 1:]))
        ok = pads_last & ~np.any(v_next & ~ordered, axis=1)
        sorted_ids = np.sort(ids, axis=1)  # padding (-1) sorts first
        ok &= ~np.any((sorted_ids[:, 1:] == sorted_ids[:, :-1]) & (sorted_ids[:, 1:] >= 0), axis=1)
        bad = np.flatnonzero(~ok)
    else:
        bad = np.empty(0, dtype=np.int64)
    ids_c = ids.copy() if bad.size else ids
    s_c = s.copy() if bad.size else s
    if bad.size:
        ids_b, s_b = ids[bad], s[bad]
        order = np.lexsort((ids_b, -s_b), axis=-1)
        ids_o = np.take_along_axis(ids_b, order, axis=1)
        s_o = np.take_along_axis(s_b, order, axis=1)
        by_id = np.argsort(ids_o, axis=1, kind="stable")  # stable: best score first per id
        ids_sorted = np.take_along_axis(ids_o, by_id, axis=1)
        dup_sorted = np.zeros(ids_o.shape, dtype=bool)
        dup_sorted[:, 1:] = (ids_sorted[:, 1:] == ids_sorted[:, :-1]) & (ids_sorted[:, 1:] >= 0)
        dup = np.empty_like(dup_sorted)
        np.put_along_axis(dup, by_id, dup_sorted, axis=1)
        keep = (ids_o != PAD_ID) & ~dup
        compact = np.argsort(~keep, axis=1, kind="stable")
        keep = np.take_along_axis(keep, compact, axis=1)
        ids_o = np.where(keep, np.take_along_axis(ids_o, compact, axis=1), PAD_ID)
        s_o = np.where(keep, np.take_along_axis(s_o, compact, axis=1), -np.inf)
        ids_c[bad] = ids_o
        s_c[bad] = s_o
    valid_c = ids_c != PAD_ID
    return Canonical(ids_c, np.where(valid_c, s_c, np.nan), valid_c.sum(axis=1))


def align(lists: list[Canonical]) -> Aligned:
    """Union of the canonical lists' ids per query, vectorised: one integer sort per query row.

    Each occurrence is encoded as ``(id * L + list) * depth + column`` in one int64 key, so a
    plain (unstable, fast) row sort groups occurrences by document, in id order.
    """
    n_lists = len(lists)
    n_q = lists[0].ids.shape[0]
    depth = max(max(c.ids.shape[1] for c in lists), 1)
    max_id = max((int(c.ids.max()) if c.ids.size else 0) for c in lists)
    codes = None
    if (max_id + 1) * n_lists * depth >= 2**62:  # remap huge ids to dense, order-kept codes
        codes = np.unique(np.concatenate([c.ids[c.ids != PAD_ID] for c in lists]))
        lists = [
            c._replace(ids=np.where(c.ids != PAD_ID, np.searchsorted(codes, c.ids), PAD_ID))
            for c in lists
        ]
    keys = [
        np.where(c.ids != PAD_ID, (c.ids * n_lists + j) * depth + np.arange(c.ids.shape[1]), _BIG)
        for j, c in enumerate(lists)
    ]
    key = np.sort(np.concatenate(keys, axis=1), axis=1)
    valid = key != _BIG
    id_list = key // depth
    col = key - id_list * depth
    doc = id_list // n_lists
    lst = id_list - doc * n_lists
    new = valid.copy()
    new[:, 1:] &= doc[:, 1:] != doc[:, :-1]
    slot = np.cumsum(new, axis=1) - 1
    counts = new.sum(axis=1)
    offsets = np.zeros(n_q + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    union_ids = doc[new]
    if codes is not None:
        union_ids = codes[union_ids]
    # inverse map: (list, query, column) -> union row
    inverse = np.empty(n_lists * n_q * depth, dtype=np.int64)
    where = (lst * n_q + np.arange(n_q)[:, None]) * depth + col
    row = offsets[:-1, None] + slot
    if valid.all():  # no padding anywhere: skip the masks
        inverse[where.ravel()] = row.ravel()
    else:
        inverse[where[valid]] = row[valid]
    inverse = inverse.reshape(n_lists, n_q, depth)
    present = [c.ids != PAD_ID for c in lists]
    rows = [
        inverse[j, :, : c.ids.shape[1]][p]
        for j, (c, p) in enumerate(zip(lists, present, strict=True))
    ]
    return Aligned(offsets=offsets, ids=union_ids, present=present, rows=rows)


def scatter(al: Aligned, per_list: list[np.ndarray], fill: float, dtype: type = np.float64):
    """Place per-list padded values ``(n_queries, depth_j)`` into the aligned ``(U, L)`` matrix."""
    out = np.full((len(per_list), al.ids.shape[0]), fill, dtype=dtype)  # (U, L), F-order
    for j, values in enumerate(per_list):
        out[j, al.rows[j]] = values[al.present[j]]
    return out.T


def stable_argsort_rows(grid: np.ndarray) -> np.ndarray:
    """``np.argsort(grid, axis=1, kind="stable")``, faster: a quicksort, then only the runs of
    equal values are put back in column order (one integer sort of (run, column) keys)."""
    perm = np.argsort(grid, axis=1)
    if grid.shape[1] < 2:
        return perm
    vals = np.take_along_axis(grid, perm, axis=1)
    tied = vals[:, 1:] == vals[:, :-1]
    bad = np.flatnonzero(tied.any(axis=1))
    if bad.size:
        width = grid.shape[1]
        new_run = np.ones((bad.size, width), dtype=np.int64)
        new_run[:, 1:] = ~tied[bad]
        key = np.cumsum(new_run, axis=1) * width + perm[bad]
        key.sort(axis=1)
        perm[bad] = key % width
    return perm


def order_rows(al: Aligned, fused: np.ndarray, top: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Union rows of every query sorted by (fused desc, id asc), cut to ``top``.

    Returns the selected flat row indices (query by query, best first) and counts per query.
    """
    counts = np.diff(al.offsets)
    n_q = counts.shape[0]
    width = int(counts.max()) if n_q else 0
    query_of_row = np.repeat(np.arange(n_q), counts)
    col = np.arange(al.ids.shape[0]) - al.offsets[:-1][query_of_row]
    grid = np.full((n_q, width), np.inf)
    grid[query_of_row, col] = -fused
    perm = stable_argsort_rows(grid)
    keep = counts if top is None else np.minimum(counts, top)
    mask = np.arange(width)[None, :] < keep[:, None]
    return (al.offsets[:-1, None] + perm)[mask], keep
