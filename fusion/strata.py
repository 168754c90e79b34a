"""Interleaving rankings of disjoint strata by the pattern of a reference ranking.

When some lists can only rank part of the documents (a lexical retriever reads documents in the
query's script, not the others), their scores say how documents *within* that part compare, not
how a document of one part compares with one of another. :func:`interleave` keeps each
stratum's own fused order and lets a reference ranking over all strata (the lists that read
every document) decide which stratum each place of the merged ranking goes to: place ``i`` goes
to the stratum of the reference's ``i``-th document, and takes that stratum's best document not
yet placed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._core import FusionResult
from ._validate import real_array

__all__ = ["interleave", "interleave_results", "interleave_top"]


def interleave(
    pattern: Any, counts: Any, top: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge ranked strata by a reference pattern, for many queries at once.

    ``pattern``: ``(n_queries, r)`` stratum index (``0 .. n_strata - 1``) of each document of the
    reference ranking, best first, ``-1`` padding at the end. ``counts``: ``(n_queries,
    n_strata)`` how many ranked documents each stratum has. Returns ``(stratum, index, place)``,
    each ``(n_queries, top)`` (``top`` None: all documents), padded with ``-1``: the merged
    ranking as (stratum, position within that stratum's ranking) pairs, and the reference
    position whose place each took (``-1`` for documents placed after the reference ran out).

    Place ``i`` of the reference goes to the stratum of its ``i``-th document and takes that
    stratum's next document; a place whose stratum has none left is skipped. Documents left once
    the reference is exhausted follow, by their position within their stratum, smaller stratum
    index first on ties.

    >>> s, i, p = interleave([[1, 0, 1, -1]], [[1, 2]], top=3)
    >>> s.tolist(), i.tolist(), p.tolist()
    ([[1, 0, 1]], [[0, 0, 1]], [[0, 1, 2]])
    """
    pat = np.asarray(pattern)
    if pat.ndim != 2 or not np.issubdtype(pat.dtype, np.integer):
        raise ValueError(
            f"pattern must be a 2-d integer array, got {pat.dtype} of shape {pat.shape}"
        )
    cnt = real_array(counts, "counts")
    if cnt.ndim != 2 or cnt.shape[0] != pat.shape[0]:
        raise ValueError(
            f"counts must be (n_queries={pat.shape[0]}, n_strata), got shape {cnt.shape}"
        )
    if np.any(cnt < 0) or np.any(cnt != np.floor(cnt)):
        raise ValueError("counts must be non-negative integers")
    cnt = cnt.astype(np.int64)
    n_q, n_strata = cnt.shape
    if np.any(pat >= n_strata) or np.any(pat < -1):
        raise ValueError(f"pattern holds stratum indexes outside -1 .. {n_strata - 1}")
    width = int(cnt.sum(axis=1).max(initial=0))
    top = width if top is None else min(int(top), width)
    out = np.full((3, n_q, top), -1, dtype=np.int64)
    for q in range(n_q):
        strata, index, place = _merge_one(pat[q], cnt[q])
        n = min(top, strata.shape[0])
        out[0, q, :n], out[1, q, :n], out[2, q, :n] = strata[:n], index[:n], place[:n]
    return out[0], out[1], out[2]


def _merge_one(pattern: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, ...]:
    """One query of :func:`interleave`."""
    valid = pattern >= 0
    labels = pattern[valid]
    places = np.flatnonzero(valid)
    # the how-many-th place of its stratum each reference place is
    order = np.argsort(labels, kind="stable")
    starts = np.searchsorted(labels[order], np.arange(counts.shape[0]))
    nth = np.empty(labels.shape[0], dtype=np.int64)
    nth[order] = np.arange(labels.shape[0]) - starts[labels[order]]
    used = nth < counts[labels]  # the stratum still has a document for this place
    strata, index, place = labels[used], nth[used], places[used]
    taken = np.bincount(strata, minlength=counts.shape[0])
    rest = [(i, g) for g in range(counts.shape[0]) for i in range(int(taken[g]), int(counts[g]))]
    if rest:
        rest.sort()
        tail_index, tail_strata = (np.array(c, dtype=np.int64) for c in zip(*rest, strict=True))
        strata = np.concatenate([strata, tail_strata])
        index = np.concatenate([index, tail_index])
        place = np.concatenate([place, np.full(tail_index.shape[0], -1, dtype=np.int64)])
    return strata, index, place


def _place_scores(place: np.ndarray, reference_scores: np.ndarray) -> np.ndarray:
    """The reference's score at each place; the lowest placed score after the reference ran
    out (so the merged scores never increase down the ranking)."""
    ref = np.asarray(reference_scores, dtype=np.float64)
    finite = ref[np.isfinite(ref)]
    floor = finite.min() if finite.size else 0.0
    return np.where(place >= 0, ref[np.maximum(place, 0)] if ref.size else floor, floor)


def interleave_results(
    parts: Any, members: Any, pattern: Any, reference_scores: Any, top: int | None = None
) -> FusionResult:
    """One query's strata merged into one explained ranking (:func:`interleave`).

    ``parts[g]``: the :class:`~fusion.FusionResult` of the query's documents fused with stratum
    ``g``'s weights; ``members[g]``: a boolean mask over ``parts[g].ids``, the documents that
    belong to stratum ``g`` (each document in one stratum). ``pattern``: the stratum of each
    document of the reference ranking, best first (``-1`` pads); ``reference_scores``: that
    ranking's scores. Each document keeps its per-list ranks, scores, terms and contributions
    from its stratum's fusion, and ``weights`` becomes ``(n, n_lists)``, the weights of each
    document's stratum. Its ``score`` is the reference's score at the place it took, so scores
    fall down the ranking; ``contributions`` still sum to its stratum's fused score.
    """
    subs = []
    for g, (part, member) in enumerate(zip(parts, members, strict=True)):
        member = np.asarray(member, dtype=bool)
        if member.shape != part.ids.shape:
            raise ValueError(f"members[{g}] must mask parts[{g}].ids, shape {part.ids.shape}")
        subs.append(np.flatnonzero(member))
    counts = np.array([[s.shape[0] for s in subs]])
    strata, index, place = (a[0] for a in interleave(np.asarray(pattern)[None, :], counts, top))
    n = int(np.count_nonzero(strata >= 0))
    strata, index, place = strata[:n], index[:n], place[:n]
    n_lists = parts[0].ranks.shape[1] if parts[0].ranks.ndim == 2 else 0
    fields = ("ids", "ranks", "raw_scores", "normalized", "contributions")
    out = {f: [] for f in fields}
    weights = np.zeros((n, n_lists))
    for i, (g, j) in enumerate(zip(strata.tolist(), index.tolist(), strict=True)):
        row = subs[g][j]
        for f in fields:
            out[f].append(getattr(parts[g], f)[row])
        if parts[g].weights is not None:
            weights[i] = parts[g].weights
    stacked = {f: np.asarray(v) if v else getattr(parts[0], f)[:0] for f, v in out.items()}
    return FusionResult(
        ids=stacked["ids"].astype(np.int64),
        scores=_place_scores(place, np.asarray(reference_scores)),
        ranks=stacked["ranks"],
        raw_scores=stacked["raw_scores"],
        normalized=stacked["normalized"],
        contributions=stacked["contributions"],
        weights=weights,
    )


def interleave_top(
    ids: Any, members: Any, pattern: Any, reference_scores: Any, top: int
) -> tuple[np.ndarray, np.ndarray]:
    """Many queries' strata merged, ids and scores only (:func:`interleave`).

    ``ids[g]``: ``(n_queries, m_g)`` fused ranking under stratum ``g``'s weights (``-1`` pads);
    ``members[g]``: the same shape, True where the document belongs to stratum ``g``;
    ``pattern`` and ``reference_scores``: ``(n_queries, r)``. Returns ``(n_queries, top)`` ids
    and scores (the reference's score at each place), padded with -1 / ``-inf``.
    """
    ids = [np.asarray(a, dtype=np.int64) for a in ids]
    members = [np.asarray(m, dtype=bool) & (a >= 0) for a, m in zip(ids, members, strict=True)]
    pattern = np.asarray(pattern)
    ref = np.asarray(reference_scores, dtype=np.float64)
    n_q = pattern.shape[0]
    out_ids = np.full((n_q, top), -1, dtype=np.int64)
    out_scores = np.full((n_q, top), -np.inf)
    for q in range(n_q):
        kept = [a[q][m[q]] for a, m in zip(ids, members, strict=True)]
        counts = np.array([[k.shape[0] for k in kept]])
        strata, index, place = (a[0] for a in interleave(pattern[q : q + 1], counts, top))
        n = int(np.count_nonzero(strata >= 0))
        out_ids[q, :n] = [kept[g][j] for g, j in zip(strata[:n], index[:n], strict=True)]
        out_scores[q, :n] = _place_scores(place[:n], ref[q])
    return out_ids, out_scores
