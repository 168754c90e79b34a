"""A compiled path for :func:`fusion.fuse_padded` that runs without holding the GIL.

The vectorised numpy path (:mod:`fusion._core`, :mod:`fusion._combine`) costs ~100 small numpy
calls per block of queries: fine for a batch, but a search of one query then spends most of its
time in Python, holding the GIL, so concurrent searches cannot use several cores. This kernel
fuses a block of queries in one ``nogil`` call for the common cases: the methods with one term
per list (:data:`fusion.methods.PER_LIST`: ``rrf``, ``isr``, ``wsum``, ``combsum``,
``combmnz``, ``combanz``, ``adaptive``) with ``zscore``, ``minmax`` or ``none`` normalisation,
on lists without duplicates whose padding comes last, which is what the indexes return (a
row not sorted by score, then id, is sorted here, e.g. FAISS's equal scores).

It is a second implementation of that arithmetic, written to give the same bits: every sum
runs in the numpy path's order (left to right over a list's entries, then over lists in input
order), and every division and square root is the same IEEE operation. Anything else (another
method or norm, padding before a real entry, a duplicate, an invalid value, a score that overflows)
returns None and the numpy path takes over, which also raises the documented errors.
``tests/fusion/test_fusion_fast.py`` checks both paths agree bit for bit.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from numba import njit

from ._core import FusionResult
from ._options import ADAPTIVE, check_depth, resolve_options

_NORMS = {"none": 0, "zscore": 1, "minmax": 2}
_METHODS = {  # name -> (uses ranks, term kind: 0 value / 1 rrf / 2 isr, count power)
    "wsum": (0, 0, 0),
    "combsum": (0, 0, 0),
    "adaptive": (0, 0, 0),
    "combmnz": (0, 0, 1),
    "combanz": (0, 0, -1),
    "rrf": (1, 1, 0),
    "isr": (1, 2, 1),
}
_DEGENERATE_MINMAX = 0.5  # fusion.normalize.DEGENERATE_MINMAX
_INT64_MAX = int(np.iinfo(np.int64).max)
_MAX_LISTS = 62  # lists a document may be seen in are kept as bits of an int64

OK, INVALID, UNSUPPORTED = 0, 1, 2

enabled = True
"""Set to False to send every call through the numpy path (tests compare both)."""


def supported(method: str, norm: str | None, bounds: Any) -> bool:
    """Whether the kernel handles this method and (resolved) normalisation."""
    if bounds is not None or method not in _METHODS:
        return False
    return _METHODS[method][0] == 1 or norm in _NORMS


@njit(cache=True, nogil=True, inline="always")
def _slot(keys, mask, urow, key, bits):
    """Open-addressing slot of ``key`` (an id >= 0) in ``keys`` (-1 = empty), claimed if new:
    its lists bit ``mask`` and union row + 1 (``urow``) start at 0."""
    size_mask = (1 << bits) - 1
    h = np.int64((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits))
    while True:
        t = keys[h]
        if t == key:
            return h
        if t == -1:
            keys[h] = key
            mask[h] = 0
            urow[h] = 0
            return h
        h = (h + 1) & size_mask


@njit(cache=True, nogil=True, inline="always")
def _before(fa, ia, fb, ib):
    """Whether a document (fused ``fa``, id ``ia``) ranks before another: score, then id."""
    return fa > fb or (fa == fb and ia < ib)


@njit(cache=True, nogil=True)
def _canonical(ids, scores, row, x):
    """Copy one list's entries into ``row`` / ``x`` sorted by score descending, then id (FAISS
    may return equal scores in any id order); returns how many, or -1 when padding (id -1)
    comes before a real entry."""
    width = ids.shape[0]
    n_valid = 0
    while n_valid < width and ids[n_valid] != -1:
        n_valid += 1
    for c in range(n_valid, width):
        if ids[c] != -1:
            return -1
    ordered = True
    for c in range(1, n_valid):
        a, b = scores[c - 1], scores[c]
        if not (a > b or (a == b and ids[c - 1] < ids[c])):
            ordered = False
            break
    if ordered:
        row[:n_valid] = ids[:n_valid]
        x[:n_valid] = scores[:n_valid]
    else:
        by_id = np.argsort(ids[:n_valid], kind="mergesort")
        order = by_id[np.argsort(-scores[:n_valid][by_id], kind="mergesort")]
        row[:n_valid] = ids[:n_valid][order]
        x[:n_valid] = scores[:n_valid][order]
    return n_valid


@njit(cache=True, nogil=True)
def _normalize_row(x, n_valid, norm, out):
    """One list's normalised scores (``out[:n_valid]``) as :mod:`fusion.normalize` computes
    them over the whole row (padding counts as 0 in the sums, as ``_seq_sum`` does); False when
    a statistic overflows (the numpy path rescales those rows)."""
    width = x.shape[0]
    if norm == 0:
        for i in range(n_valid):
            out[i] = x[i]
        return True
    if norm == 1:  # zscore: (x - mean) / std, population std, 0 when std is 0
        n = np.float64(max(n_valid, 1))
        s = 0.0
        for i in range(width):
            v = x[i] if i < n_valid else 0.0
            s = v if i == 0 else s + v
        mean = s / n
        s = 0.0
        for i in range(width):
            if i < n_valid:
                d = x[i] - mean
                v = d * d
            else:
                v = 0.0
            s = v if i == 0 else s + v
        var = s / n
        std = np.sqrt(var)
        if not (np.isfinite(mean) and np.isfinite(std)):
            return False
        for i in range(n_valid):
            out[i] = (x[i] - mean) / std if std > 0 else 0.0
        return True
    # minmax: (x - lo) / (hi - lo), 0.5 when the range is 0
    if n_valid == 0:
        return True
    lo = x[0]
    hi = x[0]
    for i in range(1, n_valid):
        lo = min(lo, x[i])
        hi = max(hi, x[i])
    span = hi - lo
    if np.isinf(span):
        return False
    for i in range(n_valid):
        out[i] = (x[i] - lo) / span if span > 0 else _DEGENERATE_MINMAX
    return True


@njit(cache=True, nogil=True)
def _query_weights(w_in, e, has_e, n_q):
    """``(status, w)``: each query's weights ``(n_q, L)`` from the given weights (one row for
    all queries, or one per query) times the evidence (:func:`fusion.methods.adaptive_weights`:
    a query where no list keeps a positive weight keeps the given ones), checked as
    :func:`fusion.api._check_weights` and ``_check_evidence`` check them."""
    n_w, n_lists = w_in.shape
    w = np.empty((n_q, n_lists))
    for r in range(n_w):
        alive = False
        for j in range(n_lists):
            v = w_in[r, j]
            if not (np.isfinite(v) and v >= 0):
                return INVALID, w
            alive |= v > 0
        if not alive:
            return INVALID, w
    if has_e:
        for q in range(n_q):
            for j in range(n_lists):
                v = e[q, j]
                if not (np.isfinite(v) and 0 <= v <= 1):
                    return INVALID, w
    for q in range(n_q):
        r = 0 if n_w == 1 else q
        alive = False
        for j in range(n_lists):
            w[q, j] = w_in[r, j] * e[q, j] if has_e else w_in[r, j]
            alive |= w[q, j] > 0
        if not alive:
            for j in range(n_lists):
                w[q, j] = w_in[r, j]
    return OK, w


@njit(cache=True, nogil=True)
def fuse_kernel(ids, scores, w_in, e, has_e, depth, top, norm, uses_rank, term_kind, power, rrf_k):
    """Fuse ``(L, Q, W)`` padded lists (ids int64, -1 pads; scores float64) with weights
    ``w_in`` (``(1, L)`` for every query, or ``(Q, L)``) times evidence ``e`` ``(Q, L)`` when
    ``has_e`` (a list with weight 0 for a query is left out of it).

    Returns ``(status, offsets, out_ids, out_scores, ranks, raw, terms, contrib, weights)``:
    query ``q``'s fused documents are rows ``offsets[q]:offsets[q + 1]``, best first, and
    ``weights[q]`` the weights it used. ``status`` is ``INVALID`` (an id below -1, a non-finite
    score, a bad weight or evidence: the numpy path raises) or ``UNSUPPORTED`` (padding before
    an entry, a duplicate, an overflow: the numpy path handles it).
    """
    n_lists, n_q, width = ids.shape
    status, w = _query_weights(w_in, e, has_e, n_q)
    cut = width if depth < 0 else min(depth, width)
    per_q = n_lists * cut
    keep = per_q if top < 0 else min(top, per_q)
    offsets = np.zeros(n_q + 1, np.int64)
    out_ids = np.empty(n_q * keep, np.int64)
    out_scores = np.empty(n_q * keep, np.float64)
    ranks = np.zeros((n_q * keep, n_lists), np.int64)
    raw = np.full((n_q * keep, n_lists), np.nan)
    terms = np.full((n_q * keep, n_lists), np.nan)
    contrib = np.zeros((n_q * keep, n_lists))
    bits = 4
    while (1 << bits) < 2 * n_lists * width + 2:
        bits += 1
    # a hash table of the ids seen: id (-1: empty), lists bit mask, union row + 1 (each array
    # under 128 KB, so the allocator reuses memory instead of mapping fresh pages every call)
    keys = np.full(1 << bits, -1, np.int64)
    mask = np.empty(1 << bits, np.int64)
    urow = np.empty(1 << bits, np.int32)
    used = np.empty(n_lists * width, np.int64)  # claimed slots, reset after each query
    u_ids = np.empty(per_q, np.int64)
    u_rank = np.zeros((per_q, n_lists), np.int64)
    u_raw = np.empty((per_q, n_lists))
    u_term = np.empty((per_q, n_lists))
    u_contrib = np.empty((per_q, n_lists))
    u_fused = np.empty(per_q)
    normed = np.empty(width)
    row = np.empty(width, np.int64)  # the list's row in canonical order
    x = np.empty(width)
    used_w = np.zeros((n_q, n_lists))  # reported: 0 for a list no query weighs
    for j in range(n_lists):
        alive = False
        for q in range(n_q):
            alive |= w[q, j] > 0
        if alive:
            for q in range(n_q):
                used_w[q, j] = w[q, j]
    if status != OK:
        return status, offsets, out_ids, out_scores, ranks, raw, terms, contrib, used_w
    bad = np.int64(0)
    # values first: an invalid entry anywhere is the numpy path's error to raise
    for j in range(n_lists):
        for q in range(n_q):
            for c in range(width):
                d = ids[j, q, c]
                if d < -1 or (d >= 0 and not np.isfinite(scores[j, q, c])):
                    bad = 1
    if bad:
        return INVALID, offsets, out_ids, out_scores, ranks, raw, terms, contrib, used_w
    for q in range(n_q):
        n_used = 0
        n_u = 0
        for j in range(n_lists):
            if not w[q, j] > 0:
                continue
            n_valid = _canonical(ids[j, q], scores[j, q], row, x)
            if n_valid < 0:  # padding before a real entry
                return UNSUPPORTED, offsets, out_ids, out_scores, ranks, raw, terms, contrib, used_w
            if not uses_rank and not _normalize_row(x, n_valid, norm, normed):
                return UNSUPPORTED, offsets, out_ids, out_scores, ranks, raw, terms, contrib, used_w
            bit = np.int64(1) << j
            for c in range(n_valid):
                h = _slot(keys, mask, urow, row[c], bits)
                seen = mask[h]
                if seen == 0:
                    used[n_used] = h
                    n_used += 1
                if seen & bit:  # a duplicate within the list
                    return (
                        UNSUPPORTED,
                        offsets,
                        out_ids,
                        out_scores,
                        ranks,
                        raw,
                        terms,
                        contrib,
                        used_w,
                    )
                mask[h] = seen | bit
                if c >= cut:
                    continue
                u = np.int64(urow[h]) - 1
                if u < 0:
                    u = n_u
                    urow[h] = u + 1
                    n_u += 1
                    u_ids[u] = row[c]
                    for i in range(n_lists):
                        u_rank[u, i] = 0
                u_rank[u, j] = c + 1
                u_raw[u, j] = x[c]
                if uses_rank:
                    r = np.float64(c + 1)
                    u_term[u, j] = 1.0 / (r + rrf_k) if term_kind == 1 else 1.0 / (r * r)
                else:
                    u_term[u, j] = normed[c]
        for i in range(n_used):  # leave the table empty for the next query
            keys[used[i]] = -1
        for u in range(n_u):
            m = 0.0
            for j in range(n_lists):
                if u_rank[u, j] > 0:
                    m += 1.0
            f = 0.0
            for j in range(n_lists):
                if u_rank[u, j] > 0:
                    cv = u_term[u, j] * w[q, j]
                    if power == 1:
                        cv = cv * m
                    elif power == -1:
                        cv = cv / max(m, 1.0)
                    u_contrib[u, j] = cv
                    f += cv
            if not np.isfinite(f):
                return UNSUPPORTED, offsets, out_ids, out_scores, ranks, raw, terms, contrib, used_w
            u_fused[u] = f
        # best first: fused score descending, then id ascending
        n_out = n_u if top < 0 else min(top, n_u)
        if n_out * 8 < n_u:  # a few of many: insertion into a short sorted list
            order = np.empty(n_out, np.int64)
            n_in = 0
            for u in range(n_u):
                fu, iu = u_fused[u], u_ids[u]
                if n_in == n_out:
                    last = order[n_in - 1]
                    if not _before(fu, iu, u_fused[last], u_ids[last]):
                        continue
                    n_in -= 1
                i = n_in
                while i > 0 and _before(fu, iu, u_fused[order[i - 1]], u_ids[order[i - 1]]):
                    order[i] = order[i - 1]
                    i -= 1
                order[i] = u
                n_in += 1
        else:  # a stable sort by score of the rows in id order
            by_id = np.argsort(u_ids[:n_u])
            neg = np.empty(n_u)
            for i in range(n_u):
                neg[i] = -u_fused[by_id[i]]
            order = by_id[np.argsort(neg, kind="mergesort")]
        base = offsets[q]
        for i in range(n_out):
            u = order[i]
            o = base + i
            out_ids[o] = u_ids[u]
            out_scores[o] = u_fused[u]
            for j in range(n_lists):
                if u_rank[u, j] > 0:
                    ranks[o, j] = u_rank[u, j]
                    raw[o, j] = u_raw[u, j]
                    terms[o, j] = u_term[u, j]
                    contrib[o, j] = u_contrib[u, j]
        offsets[q + 1] = base + n_out
    return OK, offsets, out_ids, out_scores, ranks, raw, terms, contrib, used_w


def fuse_lists(
    lists: list[tuple[np.ndarray, np.ndarray]],
    weights: np.ndarray,
    evidence: np.ndarray | None,
    method: str,
    norm: str | None,
    k: float,
    top: int | None,
    depth: int | None,
) -> list[FusionResult] | None:
    """Fused results of lists of checked shapes (``(n_q, width_j)`` int ids, real scores),
    ``weights`` float64 ``(1, L)`` or ``(n_q, L)`` and ``evidence`` float64 ``(n_q, L)`` or
    None (their values are checked here), or None when the numpy path must do it (see the
    module docstring)."""
    n_lists = len(lists)
    if n_lists > _MAX_LISTS:
        return None
    n_q = lists[0][0].shape[0]
    width = max(max(a.shape[1] for a, _ in lists), 1)
    ids = np.full((n_lists, n_q, width), -1, dtype=np.int64)
    scores = np.zeros((n_lists, n_q, width))
    for j, (a, s) in enumerate(lists):
        ids[j, :, : a.shape[1]] = a
        scores[j, :, : s.shape[1]] = s
    uses_rank, term_kind, power = _METHODS[method]
    status, offsets, out_ids, out_scores, ranks, raw, terms, contrib, used = fuse_kernel(
        ids,
        scores,
        weights,
        weights if evidence is None else evidence,
        evidence is not None,
        -1 if depth is None else depth,
        -1 if top is None else top,
        _NORMS.get(norm, 0),
        uses_rank,
        term_kind,
        power,
        float(k),
    )
    if status != OK:
        return None
    bounds = offsets.tolist()
    return [
        FusionResult(
            out_ids[a:b],
            out_scores[a:b],
            ranks[a:b],
            raw[a:b],
            terms[a:b],
            contrib[a:b],
            weights=used[q],
        )
        for q, (a, b) in enumerate(itertools.pairwise(bounds))
    ]


def fuse_padded_compiled(
    pairs: list[tuple[Any, Any]],
    method: Any,
    weights: Any,
    norm: Any,
    k: Any,
    bounds: Any,
    top: Any,
    depth: Any,
    evidence: Any,
) -> list[FusionResult] | None:
    """:func:`fuse_lists` (one nogil call) for :func:`fusion.fuse_padded`'s arguments when it
    applies to them; None sends the call down the numpy path, which also raises every
    documented error."""
    if not enabled:
        return None
    n_q = None
    for ids, scores in pairs:
        if not (isinstance(ids, np.ndarray) and isinstance(scores, np.ndarray)):
            return None
        if ids.ndim != 2 or ids.shape != scores.shape or ids.dtype.kind != "i":
            return None
        if scores.dtype.kind not in "fi" or (n_q is not None and ids.shape[0] != n_q):
            return None
        n_q = ids.shape[0]
    try:  # bad options: the numpy path raises its errors in its own order
        n_lists = len(pairs)
        norm = resolve_options(method, norm, k, bounds, n_lists, top)
        if not supported(method, norm, bounds):
            return None
        if top is not None:
            top = min(int(top), _INT64_MAX)
        depth = check_depth(depth)
        rrf_k = float(k) if method == "rrf" else 0.0
    except (TypeError, ValueError):
        return None
    # weights and evidence as float64 (n, L) arrays; their values are checked in the kernel
    w = np.ones((1, n_lists)) if weights is None else _float_matrix(weights, n_lists, n_q)
    e = None
    if evidence is not None:
        e = _float_matrix(evidence, n_lists, n_q) if method == ADAPTIVE else None
        if e is None or e.shape[0] != n_q:
            return None
    if w is None:
        return None
    return fuse_lists(pairs, w, e, method, norm, rrf_k, top, depth)


def _float_matrix(value: Any, n_lists: int, n_q: int) -> np.ndarray | None:
    """``value`` as a C-ordered float64 ``(1, L)`` (one row for all queries) or ``(n_q, L)``
    array, or None when it is something else (the numpy path then says what is wrong)."""
    try:
        a = value if isinstance(value, np.ndarray) else np.asarray(value)
    except (TypeError, ValueError):
        return None
    if a.dtype.kind not in "fiu":
        return None
    if a.ndim == 1:
        a = a[None, :]
    elif a.ndim != 2 or a.shape[0] != n_q:
        return None
    if a.shape[1] != n_lists:
        return None
    return np.ascontiguousarray(a, dtype=np.float64)
