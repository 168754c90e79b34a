"""The compiled steps of fusion: each runs without holding the GIL, so fusions in several threads
use several cores. There is one implementation of each step: :mod:`fusion._core`,
:mod:`fusion.normalize` and :mod:`fusion.api` call these for every fusion (:func:`fusion.fuse`,
:func:`fusion.fuse_padded`, :class:`fusion.FusionTable`).

Sums run strictly left to right and every division and square root is one IEEE operation, so
a list gives the same bits whether it is fused alone or in a wider padded batch.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, nogil=True, inline="always")
def _claim(table, key, bits):
    """Insert ``key`` (an id >= 0) into the open-addressing set ``table`` (-1 = empty); False
    when it was there already."""
    size_mask = (1 << bits) - 1
    h = np.int64((np.uint64(key) * _GOLDEN) >> np.uint64(64 - bits))
    while True:
        t = table[h]
        if t == key:
            return False
        if t == -1:
            table[h] = key
            return True
        h = (h + 1) & size_mask


@njit(cache=True, nogil=True)
def canonical_rows(ids, scores):
    """Each row sorted by (score desc, id asc), duplicate ids dropped (the best score kept),
    padding (id -1, score NaN) at the end: ``(ids, scores, sizes)``. Rows already in that form
    (what the indexes return) are copied as they are."""
    n_q, depth = ids.shape
    out_ids = np.full((n_q, depth), -1, np.int64)
    out_s = np.full((n_q, depth), np.nan)
    sizes = np.zeros(n_q, np.int64)
    bits = 4
    while (1 << bits) < 2 * depth + 2:
        bits += 1
    table = np.full(1 << bits, -1, np.int64)
    for q in range(n_q):
        row, s = ids[q], scores[q]
        n_valid = 0
        ok = True
        for c in range(depth):
            if row[c] != -1:
                if n_valid < c:  # padding before a real entry
                    ok = False
                n_valid += 1
        if ok:
            for c in range(1, n_valid):
                a, b = s[c - 1], s[c]
                if not (a > b or (a == b and row[c - 1] < row[c])):
                    ok = False
                    break
        if ok:
            for c in range(n_valid):
                if not _claim(table, row[c], bits):
                    ok = False
                    break
            table[:] = -1
        if ok:
            out_ids[q, :n_valid] = row[:n_valid]
            out_s[q, :n_valid] = s[:n_valid]
            sizes[q] = n_valid
            continue
        valid = np.flatnonzero(row != -1)
        by_id = valid[np.argsort(row[valid], kind="mergesort")]
        neg = np.empty(by_id.shape[0])
        for i in range(by_id.shape[0]):
            neg[i] = -s[by_id[i]]
        order = by_id[np.argsort(neg, kind="mergesort")]
        n = 0
        for c in order:  # best score first: the first of an id is the one kept
            if _claim(table, row[c], bits):
                out_ids[q, n] = row[c]
                out_s[q, n] = s[c]
                n += 1
        table[:] = -1
        sizes[q] = n
    return out_ids, out_s, sizes


@njit(cache=True, nogil=True, inline="always")
def _moments(row):
    """Mean and population standard deviation of a row's present (non-NaN) entries, summed
    strictly left to right with absent entries as 0.0 (so trailing padding changes nothing)."""
    width = row.shape[0]
    count = 0
    s = 0.0
    for i in range(width):
        v = row[i]
        if np.isnan(v):
            v = 0.0
        else:
            count += 1
        s = v if i == 0 else s + v
    n = np.float64(max(count, 1))
    mean = s / n
    s = 0.0
    for i in range(width):
        d = row[i] - mean
        v = 0.0 if np.isnan(d) else d * d
        s = v if i == 0 else s + v
    return mean, np.sqrt(s / n)


@njit(cache=True, nogil=True)
def row_moments(x):
    """:func:`_moments` of each row: ``(mean, std)``, one value per row each."""
    n_q = x.shape[0]
    mean = np.empty(n_q)
    std = np.empty(n_q)
    for q in range(n_q):
        mean[q], std[q] = _moments(x[q])
    return mean, std


@njit(cache=True, nogil=True)
def zscore_rows(x):
    """``(x - mean) / std`` per row (population std; 0.0 when std is 0; NaN stays NaN), with a
    flag per row whose mean or std overflowed (the caller rescales those rows)."""
    n_q, width = x.shape
    out = np.empty((n_q, width))
    overflow = np.zeros(n_q, np.bool_)
    for q in range(n_q):
        row = x[q]
        mean, std = _moments(row)
        overflow[q] = not (np.isfinite(mean) and np.isfinite(std))
        for i in range(width):
            v = row[i]
            if np.isnan(v):
                out[q, i] = np.nan
            elif std > 0:
                out[q, i] = (v - mean) / std
            else:
                out[q, i] = 0.0
    return out, overflow


@njit(cache=True, nogil=True)
def align_rows(ids, starts):
    """The union of canonical lists per query. ``ids`` ``(n_q, sum of widths)``: the lists side
    by side, list ``j`` in columns ``starts[j]:starts[j + 1]``, padding (-1) at the end of each.

    Returns ``(offsets, union_ids, rows, counts)``: query ``q``'s documents are union rows
    ``offsets[q]:offsets[q + 1]`` in ascending id order; ``rows`` holds the union row of every
    present entry, list by list, then query by query, then column (``counts[j]`` of list
    ``j``)."""
    n_q = ids.shape[0]
    n_lists = starts.shape[0] - 1
    counts = np.zeros(n_lists, np.int64)
    for j in range(n_lists):
        for q in range(n_q):
            for c in range(starts[j], starts[j + 1]):
                if ids[q, c] != -1:
                    counts[j] += 1
    total = counts.sum()
    row_start = np.zeros(n_lists + 1, np.int64)
    for j in range(n_lists):
        row_start[j + 1] = row_start[j] + counts[j]
    done = row_start[:-1].copy()  # entries of each list placed so far
    rows = np.empty(total, np.int64)
    union = np.empty(total, np.int64)
    offsets = np.zeros(n_q + 1, np.int64)
    ent_id = np.empty(ids.shape[1], np.int64)
    ent_at = np.empty(ids.shape[1], np.int64)  # where the entry's union row goes in ``rows``
    n_u = 0
    for q in range(n_q):
        n = 0
        for j in range(n_lists):  # list by list, column by column: sorting by id keeps that
            for c in range(starts[j], starts[j + 1]):
                if ids[q, c] != -1:
                    ent_id[n] = ids[q, c]
                    ent_at[n] = done[j]
                    done[j] += 1
                    n += 1
        order = np.argsort(ent_id[:n], kind="mergesort")
        last = -1
        for i in order:
            d = ent_id[i]
            if d != last:
                union[n_u] = d
                n_u += 1
                last = d
            rows[ent_at[i]] = n_u - 1
        offsets[q + 1] = n_u
    return offsets, union[:n_u].copy(), rows, counts


@njit(cache=True, nogil=True)
def order_union(offsets, fused, top):
    """Union rows of every query sorted by fused score descending, then id ascending (rows are
    in id order), the best ``top`` (all when -1): ``(rows, counts per query)``."""
    n_q = offsets.shape[0] - 1
    keep = np.empty(n_q, np.int64)
    total = 0
    for q in range(n_q):
        n = offsets[q + 1] - offsets[q]
        keep[q] = n if top < 0 else min(n, top)
        total += keep[q]
    out = np.empty(total, np.int64)
    at = 0
    for q in range(n_q):
        lo, hi = offsets[q], offsets[q + 1]
        neg = np.empty(hi - lo)
        for i in range(hi - lo):
            neg[i] = -fused[lo + i]
        order = np.argsort(neg, kind="mergesort")
        for i in range(keep[q]):
            out[at] = lo + order[i]
            at += 1
    return out, keep


@njit(cache=True, nogil=True)
def gather_entries(sel, n_rows, rows, starts, scores, terms, contrib, active, n_lists):
    """Per selected union row (``sel``, in output order) and list: rank (0 when absent), raw
    score, term and contribution (NaN / 0 when absent), as ``(n_out, n_lists)`` matrices.

    ``scores`` ``(n_q, sum of widths)``: the fused canonical lists side by side (list ``i`` in
    columns ``starts[i]:starts[i + 1]``, NaN for padding, which comes last); ``rows``,
    ``terms``, ``contrib``: one value per present entry, list by list, then query by query,
    then column (the order of :func:`align_rows`); ``active[i]``: list ``i``'s output column.
    """
    n_out = sel.shape[0]
    pos = np.full(n_rows, -1, np.int64)
    for i in range(n_out):
        pos[sel[i]] = i
    ranks = np.zeros((n_out, n_lists), np.int64)
    raw = np.full((n_out, n_lists), np.nan)
    out_terms = np.full((n_out, n_lists), np.nan)
    out_contrib = np.zeros((n_out, n_lists))
    e = 0
    for i in range(starts.shape[0] - 1):
        j = active[i]
        for q in range(scores.shape[0]):
            for c in range(starts[i], starts[i + 1]):
                s = scores[q, c]
                if np.isnan(s):
                    break
                o = pos[rows[e]]
                if o >= 0:
                    ranks[o, j] = c - starts[i] + 1
                    raw[o, j] = s
                    if terms.shape[0]:
                        out_terms[o, j] = terms[e]
                        out_contrib[o, j] = contrib[e]
                e += 1
    return ranks, raw, out_terms, out_contrib


# -- the methods with one term per list (fusion.methods.PER_LIST) ------------------------------

TERM_VALUE, TERM_RRF, TERM_ISR = 0, 1, 2
"""How a per-list method turns an entry's value (a rank from 1, or a normalised score) into its
term: the value itself, ``1 / (k + rank)`` (RRF) or ``1 / rank**2`` (ISR)."""


@njit(cache=True, nogil=True, inline="always")
def _term(kind, v, k):
    if kind == TERM_RRF:
        return 1.0 / (v + k)
    if kind == TERM_ISR:
        return 1.0 / (v * v)
    return v


@njit(cache=True, nogil=True, inline="always")
def _contribution(t, w, m, power):
    """``t * w``, times ``m`` (``power`` 1) or divided by ``max(m, 1)`` (``power`` -1), ``m``
    being the number of lists that hold the document."""
    c = t * w
    if power == 1:
        return c * m
    if power == -1:
        return c / max(m, 1.0)
    return c


@njit(cache=True, nogil=True)
def terms_of(kind, values, k):
    """Each value's term (flat arrays)."""
    out = np.empty(values.shape[0])
    for i in range(values.shape[0]):
        out[i] = _term(kind, values[i], k)
    return out


@njit(cache=True, nogil=True)
def contributions_of(terms, weights, m, power):
    """Each term's weighted contribution (flat arrays of one length)."""
    out = np.empty(terms.shape[0])
    for i in range(terms.shape[0]):
        out[i] = _contribution(terms[i], weights[i], m[i], power)
    return out


@njit(cache=True, nogil=True)
def combine_per_list(values, rows, counts, w_entry, keep, off, n_rows, kind, power, k):
    """Fuse the present entries of aligned lists with a per-list method.

    ``values`` (ranks or normalised scores), ``rows`` (union row), ``w_entry`` (the weight of
    the entry's list for its query) and ``keep`` (False: that weight is 0) hold one value per
    entry, list by list (``counts[i]`` entries of list ``i``); ``off[i]``: list ``i`` is left
    out (its entries are not counted and add nothing). Lists are added left to right.

    Returns ``(terms, contrib, fused, covered)``: per entry, per union row; ``covered`` marks
    the rows some kept entry of a list not left out holds.
    """
    n = values.shape[0]
    m = np.zeros(n_rows)
    covered = np.zeros(n_rows, np.bool_)
    e = 0
    for i in range(counts.shape[0]):
        for _ in range(counts[i]):
            if not off[i] and keep[e]:
                m[rows[e]] += 1.0
                covered[rows[e]] = True
            e += 1
    terms = np.empty(n)
    contrib = np.empty(n)
    fused = np.zeros(n_rows)
    e = 0
    for i in range(counts.shape[0]):
        for _ in range(counts[i]):
            r = rows[e]
            if off[i]:
                terms[e] = values[e]
                contrib[e] = 0.0
            else:
                terms[e] = _term(kind, values[e], k)
                c = _contribution(terms[e], w_entry[e], m[r], power)
                contrib[e] = c if keep[e] else 0.0
                fused[r] += contrib[e]
            e += 1
    return terms, contrib, fused, covered


@njit(cache=True, nogil=True)
def fuse_entries(
    ids, scores, normed, starts, depth, w, active, n_lists, uses_rank, kind, power, k, top
):
    """A per-list method's fusion of canonical lists, from the depth cut to the explained top.

    ``ids``, ``scores`` (NaN padding) and ``normed`` (score methods: the normalised scores;
    ``(0, 0)`` for rank methods) hold the canonical lists side by side, list ``i`` in columns
    ``starts[i]:starts[i + 1]``; ``depth`` (-1: all) cuts each list before fusion; ``w``
    ``(n_q, len(starts) - 1)``: each list's weight for each query (positive: lists and entries
    of weight 0 are left out by the caller); ``active[i]``: list ``i``'s output column among
    ``n_lists``; ``top`` (-1: all) documents kept per query.

    Returns ``(ok, ids, fused, ranks, raw, terms, contrib, counts)``: query by query, best
    first (``counts`` per query); ``ok`` is False when a fused score overflowed.
    """
    n_q = ids.shape[0]
    n_l = starts.shape[0] - 1
    cut = np.zeros(n_l + 1, np.int64)
    for i in range(n_l):
        width = starts[i + 1] - starts[i]
        cut[i + 1] = cut[i] + (width if depth < 0 else min(depth, width))
    cut_ids = np.empty((n_q, cut[n_l]), np.int64)
    cut_s = np.empty((n_q, cut[n_l]))
    for i in range(n_l):
        for q in range(n_q):
            for c in range(cut[i + 1] - cut[i]):
                cut_ids[q, cut[i] + c] = ids[q, starts[i] + c]
                cut_s[q, cut[i] + c] = scores[q, starts[i] + c]
    offsets, union, rows, counts = align_rows(cut_ids, cut)
    n = rows.shape[0]
    values = np.empty(n)
    w_entry = np.empty(n)
    e = 0
    for i in range(n_l):
        for q in range(n_q):
            for c in range(cut[i + 1] - cut[i]):
                if cut_ids[q, cut[i] + c] == -1:
                    break
                values[e] = c + 1 if uses_rank else normed[q, starts[i] + c]
                w_entry[e] = w[q, i]
                e += 1
    terms, contrib, fused, _ = combine_per_list(
        values,
        rows,
        counts,
        w_entry,
        np.ones(n, np.bool_),
        np.zeros(n_l, np.bool_),
        union.shape[0],
        kind,
        power,
        k,
    )
    ok = True
    for f in fused:
        if not np.isfinite(f):
            ok = False
    sel, kept = order_union(offsets, fused, top)
    ranks, raw, out_terms, out_contrib = gather_entries(
        sel, union.shape[0], rows, cut, cut_s, terms, contrib, active, n_lists
    )
    return ok, union[sel], fused[sel], ranks, raw, out_terms, out_contrib, kept


@njit(cache=True, nogil=True)
def entries_valid(ids, scores):
    """Whether every id is >= -1 and every real entry's (id != -1) score is finite (2-D)."""
    for q in range(ids.shape[0]):
        for c in range(ids.shape[1]):
            d = ids[q, c]
            if d < -1 or (d != -1 and not np.isfinite(scores[q, c])):
                return False
    return True


NORM_NONE, NORM_ZSCORE = 0, 1
"""The normalisations :func:`fuse_lists` applies itself (rank methods take none)."""


@njit(cache=True, nogil=True)
def fuse_lists(
    ids, scores, starts, norm, depth, w, active, n_lists, uses_rank, kind, power, k, top
):
    """:func:`fuse_entries` from raw padded lists (side by side, list ``i`` in columns
    ``starts[i]:starts[i + 1]``): each list made canonical (:func:`canonical_rows`) and, for a
    score method, normalised (``norm``: :data:`NORM_NONE` or :data:`NORM_ZSCORE`, by
    :func:`zscore_rows`) first. ``ok`` is False when a statistic or a fused score overflowed
    (the caller then takes the steps one by one: :mod:`fusion.normalize` rescales such rows).
    """
    n_q = ids.shape[0]
    canon_ids = np.empty_like(ids)
    canon_s = np.empty(ids.shape)
    normed = np.empty((0, 0)) if uses_rank else np.empty(ids.shape)
    for i in range(starts.shape[0] - 1):
        lo, hi = starts[i], starts[i + 1]
        c_ids, c_s, _ = canonical_rows(ids[:, lo:hi], scores[:, lo:hi])
        canon_ids[:, lo:hi] = c_ids
        canon_s[:, lo:hi] = c_s
        if uses_rank or hi == lo:
            continue
        if norm == NORM_ZSCORE:
            z, overflow = zscore_rows(c_s)
            for q in range(n_q):
                if overflow[q]:
                    return _no_fusion(n_lists)
            normed[:, lo:hi] = z
        else:
            normed[:, lo:hi] = c_s
    return fuse_entries(
        canon_ids,
        canon_s,
        normed,
        starts,
        depth,
        w,
        active,
        n_lists,
        uses_rank,
        kind,
        power,
        k,
        top,
    )


@njit(cache=True, nogil=True)
def _no_fusion(n_lists):
    """What :func:`fuse_lists` returns when it gives up: not ok, and empty arrays."""
    none = np.empty(0, np.int64)
    matrix = np.empty((0, n_lists))
    ranks = np.empty((0, n_lists), np.int64)
    return False, none, np.empty(0), ranks, matrix, matrix, matrix, none
