"""Entry points: :func:`fuse` (one query), :func:`fuse_batch` and :func:`fuse_padded` (many).

Conventions (pinned by ``tests/fusion/test_fusion*.py``):

- **Ranks** start at 1. A list's rank of a document is its position in that list sorted by
  descending score, equal scores by ascending id, after removing duplicates. Input lists need
  not be sorted.
- **Duplicates** within one list count once: the best score (hence the best rank) is kept.
- **Missing documents** contribute nothing: for RRF/ISR no term; for score methods the
  normalised value of an absent document is taken as 0 (the bottom of min-max's range; the list
  mean for z-score). Borda is the documented exception (absent documents share the leftover
  points). ``ranks`` report 0, ``raw_scores``/``normalized`` NaN, ``contributions`` 0.
- **Ties** of the fused score go to the smaller document id.
- **Degenerate lists** (one hit, all-equal scores) never divide by zero: see each function in
  :mod:`fusion.normalize` (min-max gives 0.5, not 1.0).
- **Weights** are non-negative, one per list (shape ``(n_lists,)``) or one per query and list
  (shape ``(n_queries, n_lists)``, for :func:`fuse` ``(1, n_lists)``); a weight of 0 removes the
  list entirely for that query (its documents do not enter the union and it is not counted by
  CombMNZ/ISR/Borda); its columns in the result report ranks 0 / NaN. Negative or NaN weights,
  or a query whose weights are all zero, raise ``ValueError``. ``FusionResult.weights`` reports
  the weights each query used.
- **Depth**: with ``depth=n`` only the first ``n`` entries of each list (in canonical order)
  enter the fused ranking, while score normalisations take their statistics (min, max, mean,
  std, count) over every entry given. So a list retrieved deeper than it is fused calibrates
  its scores on more of the collection (what :data:`ADAPTIVE` relies on).
- **Padding**: id ``-1`` marks padding in any input (its score is ignored, so the indexes'
  ``-inf`` padding is fine); other negative ids, non-finite scores of real entries, and length
  mismatches raise ``ValueError``.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import methods as _m
from . import normalize as _n
from ._combine import combine
from ._core import (
    PAD_ID,
    Canonical,
    FusionResult,
    align,
    canonicalize,
    check_padded,
    order_rows,
)
from ._kernels import NORM_NONE, NORM_ZSCORE, fuse_entries, fuse_lists, gather_entries
from ._options import (
    ADAPTIVE,
    METHODS,
    NORM_FUNCS,
    NORMS,
    RANK_METHODS,
    SCORE_METHODS,
    Bounds,
    check_depth,
    check_evidence,
    check_options,
    check_weights,
    resolve_options,
)
from ._validate import (
    check_sequence,
    object_ids,
    short,
)

_PAIRS = "a list of (ids, scores) pairs, one per retriever"

__all__ = [
    "ADAPTIVE",
    "METHODS",
    "NORMS",
    "RANK_METHODS",
    "SCORE_METHODS",
    "check_options",
    "fuse",
    "fuse_batch",
    "fuse_padded",
]


def _normalize(norm: str, canon: list, active: list[int], bounds: Bounds) -> list[np.ndarray]:
    out = []
    for j, c in zip(active, canon, strict=True):
        if norm == "rank":  # canonical rows: rank = column + 1; same as normalize.rank_norm
            n = np.maximum(c.sizes, 1)[:, None]
            vals = 1.0 - np.arange(c.scores.shape[1])[None, :] / n
            out.append(np.where(np.isnan(c.scores), np.nan, vals))
        elif norm == "bounded":
            b = bounds[j]  # type: ignore[index]
            out.append(_n.minmax_norm(c.scores) if b is None else _n.bounded_minmax(c.scores, *b))
        else:
            try:
                out.append(NORM_FUNCS[norm](c.scores))
            except ValueError as exc:
                raise ValueError(f"list {j}: {exc}") from None
    return out


_BLOCK_ENTRIES = 1 << 16
"""Queries are fused in blocks of about this many (document, list) entries: small arrays stay in
cache and in the allocator's reuse pool (one huge temporary costs more than the arithmetic)."""


def _fuse_padded_arrays(
    lists: list[tuple[np.ndarray, np.ndarray]],
    method: str,
    weights: Any,
    norm: str | None,
    k: float,
    bounds: Bounds,
    top: int | None,
    depth: int | None = None,
    evidence: Any = None,
) -> list[FusionResult]:
    """Core: validated padded lists in, one :class:`FusionResult` per query out."""
    n_lists = len(lists)
    n_q = lists[0][0].shape[0]
    norm = resolve_options(method, norm, k, bounds, n_lists, top)
    if top is not None:  # beyond any list's length it means "all": keep it a C integer
        top = min(int(top), np.iinfo(np.int64).max)
    depth = check_depth(depth)
    w = check_weights(weights, n_lists, n_q)
    e = check_evidence(evidence, method, n_lists, n_q)
    if e is not None:
        w = _m.scaled_weights(w, e)
    positive = w > 0
    active = np.flatnonzero(positive if w.ndim == 1 else positive.any(axis=0)).tolist()
    width = max(sum(lists[j][0].shape[1] for j in active), 1)
    block = max(1, _BLOCK_ENTRIES // width)
    results: list[FusionResult] = []
    for q0 in range(0, n_q, block):
        part = [(lists[j][0][q0 : q0 + block], lists[j][1][q0 : q0 + block]) for j in active]
        n_b = part[0][0].shape[0]
        w_b = w if w.ndim == 1 else w[q0 : q0 + block]
        results.extend(
            _fuse_block(part, method, w_b, n_b, norm, k, bounds, top, depth, active, n_lists)
        )
    return results


def _cut(c: Canonical, depth: int | None) -> Canonical:
    """The first ``depth`` entries of a canonical list (all of them when None)."""
    if depth is None or depth >= c.ids.shape[1]:
        return c
    return Canonical(c.ids[:, :depth], c.scores[:, :depth], np.minimum(c.sizes, depth))


def _fuse_block(
    lists: list[tuple[np.ndarray, np.ndarray]],
    method: str,
    w: np.ndarray,
    n_b: int,
    norm: str | None,
    k: float,
    bounds: Bounds,
    top: int | None,
    depth: int | None,
    active: list[int],
    n_lists: int,
) -> list[FusionResult]:
    per_query = w.ndim == 2
    if per_query:
        # a weight of 0 removes the list for that query: its entries become padding
        everywhere = (w > 0).all(axis=0).tolist()
        lists = [
            (ids, s) if everywhere[j] else (np.where(w[:, j, None] > 0, ids, PAD_ID), s)
            for j, (ids, s) in zip(active, lists, strict=True)
        ]
        wa = w[:, active]
    else:
        wa = w[active]
    fields = None
    if method in _m.PER_LIST and (method in RANK_METHODS or norm in _NORM_CODES):
        fields = _fuse_raw(method, lists, norm, depth, wa, n_b, active, n_lists, k, top)
    if fields is None:  # step by step (an overflowing statistic is rescaled in numpy)
        full = [canonicalize(*pair) for pair in lists]
        normed_full = None
        if method not in RANK_METHODS:  # statistics over every entry, before the depth cut
            normed_full = _normalize(norm, full, active, bounds)  # type: ignore[arg-type]
        if method in _m.PER_LIST:
            fields = _fuse_entries(
                method, full, normed_full, depth, wa, n_b, active, n_lists, k, top
            )
        else:
            fields = _fuse_rows(method, full, normed_full, depth, wa, active, n_lists, k, top)
    *fields, keep = fields
    used = np.zeros((n_b, n_lists))
    used[:, active] = wa
    cuts = [0, *np.cumsum(keep).tolist()]
    return [
        FusionResult(*(a[lo:hi] for a in fields), weights=used[q])
        for q, (lo, hi) in enumerate(itertools.pairwise(cuts))
    ]


def _side_by_side(parts: list[np.ndarray]) -> np.ndarray:
    return np.ascontiguousarray(parts[0] if len(parts) == 1 else np.hstack(parts))


def _overflow() -> ValueError:
    return ValueError(
        "fused scores overflow float64 (raw scores near +-1e308 with norm='none'?); "
        "normalise the scores or scale them down"
    )


_NORM_CODES = {"none": NORM_NONE, "zscore": NORM_ZSCORE}
"""The normalisations done inside :func:`fusion._kernels.fuse_lists`."""


def _entry_args(method, widths, depth, wa, n_b, active, n_lists, k, top) -> tuple:
    """The arguments of :func:`fusion._kernels.fuse_entries` after the lists themselves."""
    spec = _m.PER_LIST[method]
    starts = np.zeros(len(widths) + 1, dtype=np.int64)
    np.cumsum(widths, out=starts[1:])
    w_rows = np.ascontiguousarray(np.broadcast_to(wa, (n_b, len(active))), dtype=np.float64)
    return starts, (
        -1 if depth is None else min(depth, np.iinfo(np.int64).max),
        w_rows,
        np.asarray(active, dtype=np.int64),
        n_lists,
        spec.uses == "rank",
        spec.term,
        spec.count_power,
        float(k) if method == "rrf" else 0.0,  # only RRF reads k (unchecked otherwise)
        -1 if top is None else top,
    )


def _fuse_raw(method, lists, norm, depth, wa, n_b, active, n_lists, k, top) -> list | None:
    """A per-list method with no normalisation or z-scores: one compiled call from the raw
    lists to the explained top (:func:`fusion._kernels.fuse_lists`); None when a statistic
    overflowed (the caller goes step by step)."""
    widths = [ids.shape[1] for ids, _ in lists]
    starts, rest = _entry_args(method, widths, depth, wa, n_b, active, n_lists, k, top)
    ok, *fields = fuse_lists(
        _side_by_side([ids for ids, _ in lists]),
        _side_by_side([s for _, s in lists]),
        starts,
        _NORM_CODES.get(norm, NORM_NONE),  # type: ignore[arg-type]
        *rest,
    )
    return fields if ok else None


def _fuse_entries(method, full, normed, depth, wa, n_b, active, n_lists, k, top) -> list:
    """A per-list method (:data:`fusion.methods.PER_LIST`): one compiled call from the depth
    cut to the explained top (:func:`fusion._kernels.fuse_entries`)."""
    widths = [c.ids.shape[1] for c in full]
    starts, rest = _entry_args(method, widths, depth, wa, n_b, active, n_lists, k, top)
    ok, *fields = fuse_entries(
        _side_by_side([c.ids for c in full]),
        _side_by_side([c.scores for c in full]),
        np.empty((0, 0)) if normed is None else _side_by_side(normed),
        starts,
        *rest,
    )
    if not ok:
        raise _overflow()
    return fields


def _fuse_rows(method, full, normed, depth, wa, active, n_lists, k, top) -> list:
    """Borda, CombMAX, CombMIN: methods that need each document's whole row."""
    canon = [_cut(c, depth) for c in full]
    al = align(canon)
    comb = combine(method, canon, normed, al, wa, k)
    fused = comb.fused
    if not np.isfinite(fused).all():
        raise _overflow()
    rows, keep = order_rows(al, fused, top)
    starts = np.zeros(len(canon) + 1, dtype=np.int64)
    np.cumsum([c.ids.shape[1] for c in canon], out=starts[1:])
    no_entries = np.empty(0)
    out_ranks, out_raw, out_terms, out_contrib = gather_entries(
        rows,
        al.ids.shape[0],
        np.concatenate(al.rows),
        starts,
        _side_by_side([c.scores for c in canon]),
        no_entries,
        no_entries,
        np.asarray(active, dtype=np.int64),
        n_lists,
    )
    out_terms[:, active] = np.take(comb.terms, rows, axis=0)
    out_contrib[:, active] = np.take(comb.contrib, rows, axis=0)
    return [al.ids[rows], fused[rows], out_ranks, out_raw, out_terms, out_contrib, keep]


def _pad_lists(per_query: Sequence[Sequence[tuple[Any, Any]]], n_lists: int) -> list:
    """Per-query 1-D lists -> per-retriever padded 2-D arrays (a loop per query, not per doc)."""
    padded = []
    n_q = len(per_query)
    for j in range(n_lists):
        pairs = [
            check_padded(*_pair(q[j], f"query {i}, list {j}"), f"query {i}, list {j}", ndim=1)
            for i, q in enumerate(per_query)
        ]
        depth = max((p[0].shape[0] for p in pairs), default=0)
        ids = np.full((n_q, depth), PAD_ID, dtype=np.int64)
        scores = np.full((n_q, depth), -np.inf)
        for i, (a, s) in enumerate(pairs):
            ids[i, : a.shape[0]] = a
            scores[i, : s.shape[0]] = s
        padded.append((ids, scores))
    return padded


def _fuse_ids(ids: Any, where: str) -> np.ndarray:
    """One list's ids for :func:`fuse`: integers, or strings; never a silent conversion of
    ``None``, bytes, or a mix of integers and strings to strings."""
    if ids is None:
        raise TypeError(f"{where}: ids is None; give an array of integer or string ids")
    try:
        a = np.asarray(ids)
    except (TypeError, ValueError) as exc:  # ragged nested lists
        raise ValueError(f"{where}: ids must be a 1-D array: {exc}") from None
    if a.ndim != 1:
        raise ValueError(f"{where}: ids must be a 1-D array, got shape {a.shape}: {short(ids)}")
    if a.dtype.kind == "O":
        return object_ids(a, where)
    if a.dtype.kind == "S":
        raise TypeError(f"{where}: ids are bytes {short(ids)}; give integers or str")
    if a.dtype.kind == "U" and not isinstance(ids, np.ndarray):
        for i, x in enumerate(np.ravel(np.asarray(ids, dtype=object))):
            if not isinstance(x, str):
                raise TypeError(
                    f"{where}: ids[{i}] is {type(x).__name__} {short(x)} among strings; ids "
                    "must be all integers or all strings"
                )
    return a


def _pair(item: Any, where: str) -> tuple[Any, Any]:
    if hasattr(item, "ids") and hasattr(item, "scores"):
        return item.ids, item.scores
    if isinstance(item, (str, bytes, Mapping)):
        kind = type(item).__name__
        raise ValueError(f"{where}: expected an (ids, scores) pair, got {kind} {short(item)}")
    try:
        ids, scores = item
    except (TypeError, ValueError):
        kind = type(item).__name__
        raise ValueError(f"{where}: expected an (ids, scores) pair, got {kind}") from None
    return ids, scores


def fuse(
    rankings: Sequence[tuple[Any, Any]],
    method: str = "rrf",
    weights: Sequence[float] | None = None,
    norm: str | None = None,
    k: float = 60,
    bounds: Bounds = None,
    top: int | None = None,
    *,
    depth: int | None = None,
    evidence: Any = None,
) -> FusionResult:
    """Fuse one query's ranked lists into one ranking, best first.

    ``rankings``: one ``(ids, scores)`` pair of 1-D arrays per retriever (scores higher = better,
    any order, id -1 = padding). ``ids`` may also be strings (then the result's ids are strings
    and ties break by string order). ``method``: one of :data:`METHODS`. ``weights``: one
    non-negative float per list (default all 1). ``norm``: for score methods one of
    :data:`NORMS`, default ``"minmax"``; must be None for rank methods (``"rrf"``, ``"isr"``,
    ``"borda"``). ``k``: the RRF constant (other methods ignore it). ``bounds``: with
    ``norm="bounded"``, a ``(lo, hi)`` theoretical score range per list, or None for a list to
    fall back to observed min-max. ``top``: keep only the best ``top`` documents. ``weights``
    may also have shape ``(1, n_lists)`` (the per-query form). ``depth``: only each list's best
    ``depth`` entries enter the fused ranking; normalisation statistics use all entries.
    ``evidence``: with ``method="adaptive"``, one value in [0, 1] per list (shape
    ``(n_lists,)``), multiplied into the weights (see :func:`fusion.methods.adaptive_weights`).
    """
    check_sequence(rankings, "rankings", _PAIRS)
    if len(rankings) == 0:
        raise ValueError("rankings is empty: give at least one (ids, scores) pair")
    pairs = [_pair(r, f"list {j}") for j, r in enumerate(rankings)]
    id_arrays = [_fuse_ids(p[0], f"list {j}") for j, p in enumerate(pairs)]
    labels = None
    if any(a.dtype.kind in "USO" for a in id_arrays):
        if not all(a.dtype.kind in "USO" or a.size == 0 for a in id_arrays):
            raise ValueError("ids must be all integers or all strings across lists")
        labels, codes = np.unique(
            np.concatenate([a.astype(str) for a in id_arrays]), return_inverse=True
        )
        splits = np.cumsum([a.size for a in id_arrays])[:-1]
        id_arrays = np.split(codes.astype(np.int64), splits)
    lists = []
    for j, (ids, (_, scores)) in enumerate(zip(id_arrays, pairs, strict=True)):
        a, s = check_padded(ids, scores, f"list {j}", ndim=1)
        lists.append((a[None, :], s[None, :]))
    result = _fuse_padded_arrays(lists, method, weights, norm, k, bounds, top, depth, evidence)[0]
    if labels is not None:
        result = result._replace(ids=labels[result.ids])
    return result


def fuse_padded(
    lists: Sequence[tuple[Any, Any]],
    method: str = "rrf",
    weights: Sequence[float] | None = None,
    norm: str | None = None,
    k: float = 60,
    top: int | None = None,
    bounds: Bounds = None,
    *,
    depth: int | None = None,
    evidence: Any = None,
) -> list[FusionResult]:
    """Fuse many queries at once from padded arrays, vectorised across queries.

    ``lists``: one ``(ids, scores)`` pair per retriever (e.g. an index's ``SearchResult``), each
    of shape ``(n_queries, depth_j)``, padded with id -1 (padding scores are ignored). Depths may
    differ between retrievers, not the number of queries. ``weights``: one per list ``(L,)``, or
    one per query and list ``(n_queries, L)`` (each query needs a positive weight; a 0 removes
    that list for that query). ``evidence`` (``method="adaptive"`` only): ``(n_queries, L)``
    values in [0, 1] that scale the weights per query. ``depth``: only each list's best
    ``depth`` entries enter the fused ranking, normalisation statistics use all given entries.
    Other arguments as in :func:`fuse`. Returns one :class:`FusionResult` per query.
    """
    check_sequence(lists, "lists", _PAIRS)
    if len(lists) == 0:
        raise ValueError("lists is empty: give at least one (ids, scores) pair")
    pairs = [_pair(p, f"list {j}") for j, p in enumerate(lists)]
    checked = [check_padded(*p, f"list {j}", ndim=2) for j, p in enumerate(pairs)]
    n_q = {a.shape[0] for a, _ in checked}
    if len(n_q) != 1:
        raise ValueError(f"all lists must have the same number of queries, got {sorted(n_q)}")
    return _fuse_padded_arrays(checked, method, weights, norm, k, bounds, top, depth, evidence)


def _is_padded_form(batch: Sequence[Any]) -> bool:
    first = batch[0]
    if hasattr(first, "ids") and hasattr(first, "scores"):
        return np.ndim(first.ids) == 2
    return (
        isinstance(first, tuple | list)
        and len(first) == 2
        and isinstance(first[0], np.ndarray)
        and first[0].ndim == 2
    )


def fuse_batch(
    per_query_rankings: Sequence[Any],
    method: str = "rrf",
    weights: Sequence[float] | None = None,
    norm: str | None = None,
    k: float = 60,
    top: int | None = None,
    bounds: Bounds = None,
    *,
    depth: int | None = None,
    evidence: Any = None,
) -> list[FusionResult]:
    """Fuse many queries; returns one :class:`FusionResult` per query.

    Accepts either form: a list (one per query) of rankings as in :func:`fuse` (integer ids),
    or the padded form of :func:`fuse_padded` (a list, one per retriever, of ``(ids, scores)``
    2-D arrays; recognised by its first element's ids being a 2-D ``ndarray``). Both run the same
    vectorised core; the per-query form is first padded with a loop per query. ``weights``,
    ``depth`` and ``evidence`` as in :func:`fuse_padded`.
    """
    check_sequence(per_query_rankings, "per_query_rankings", "a list with one ranking per query")
    if len(per_query_rankings) == 0:
        return []
    if _is_padded_form(per_query_rankings):
        return fuse_padded(
            per_query_rankings,
            method,
            weights,
            norm,
            k,
            top=top,
            bounds=bounds,
            depth=depth,
            evidence=evidence,
        )
    for i, q in enumerate(per_query_rankings):
        check_sequence(q, f"per_query_rankings[{i}]", _PAIRS)
    n_lists = {len(q) for q in per_query_rankings}
    if len(n_lists) != 1:
        raise ValueError(f"every query must have the same number of lists, got {sorted(n_lists)}")
    (n,) = n_lists
    if n == 0:
        raise ValueError("each query needs at least one (ids, scores) pair")
    padded = _pad_lists(per_query_rankings, n)
    return _fuse_padded_arrays(padded, method, weights, norm, k, bounds, top, depth, evidence)
