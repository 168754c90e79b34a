"""Many queries' lists aligned once, fused for many configurations: scores and top-k only.

:func:`fusion.fuse_padded` explains every hit; tuning a fusion needs only each configuration's
top ids, thousands of times over the same candidates. :class:`FusionTable` canonicalises and
aligns the lists once, keeps each normalisation it computes, and scores a configuration with the
same step as :func:`fusion.fuse_padded` (:func:`fusion._combine.combine`), so its rankings are
the same, bit for bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import methods as _m
from ._combine import combine, entry_values
from ._core import PAD_ID, Canonical, align, canonicalize, check_padded
from ._options import (
    RANK_METHODS,
    Bounds,
    check_depth,
    check_evidence,
    check_weights,
    resolve_options,
)
from .api import (
    _cut,
    _fuse_padded_arrays,
    _normalize,
    _pair,
)

__all__ = ["FusionTable"]


class FusionTable:
    """Padded lists of many queries, ready to be fused many times.

    ``lists``: one ``(ids, scores)`` pair per list, each ``(n_queries, depth_j)``, id -1 for
    padding (as :func:`fusion.fuse_padded` takes them). ``depth``: only each list's best
    ``depth`` entries enter the fused ranking; normalisation statistics use every given entry.

    >>> table = FusionTable([(ids_a, scores_a), (ids_b, scores_b)])
    >>> ids, scores = table.top("rrf", weights=[1.0, 0.5], top=10)
    """

    def __init__(self, lists: Sequence[tuple[Any, Any]], depth: int | None = None) -> None:
        if len(lists) == 0:
            raise ValueError("lists is empty: give at least one (ids, scores) pair")
        self._lists = [
            check_padded(*_pair(p, f"list {j}"), f"list {j}", ndim=2) for j, p in enumerate(lists)
        ]
        n_q = {a.shape[0] for a, _ in self._lists}
        if len(n_q) != 1:
            raise ValueError(f"all lists must have the same number of queries, got {sorted(n_q)}")
        self.n_queries = n_q.pop()
        self.n_lists = len(self._lists)
        self.depth = check_depth(depth)
        self._full: list[Canonical] = [canonicalize(a, s) for a, s in self._lists]
        self._canon = [_cut(c, self.depth) for c in self._full]
        self._al = align(self._canon)
        counts = np.diff(self._al.offsets)
        self._query_of_row = np.repeat(np.arange(self.n_queries), counts)
        self._col = np.arange(self._al.ids.shape[0]) - self._al.offsets[:-1][self._query_of_row]
        self._width = max(int(counts.max()) if counts.size else 0, 1)
        self._flat = self._query_of_row * self._width + self._col  # union row -> grid cell
        self._ids_grid = np.full((self.n_queries, self._width), PAD_ID, dtype=np.int64)
        self._ids_grid.ravel()[self._flat] = self._al.ids
        self._normed: dict[tuple[str, Any], list[np.ndarray]] = {}
        self._values: dict[tuple[str, Any], list[np.ndarray]] = {}

    def _normalized(self, norm: str, bounds: Bounds) -> list[np.ndarray]:
        key = (norm, None if bounds is None else tuple(bounds))
        if key not in self._normed:
            self._normed[key] = _normalize(norm, self._full, list(range(self.n_lists)), bounds)
        return self._normed[key]

    def scores(
        self,
        method: str = "rrf",
        weights: Any = None,
        norm: str | None = None,
        k: float = 60,
        bounds: Bounds = None,
        evidence: Any = None,
    ) -> np.ndarray | None:
        """Fused score of every aligned row (``-inf`` for rows no weighted list holds), or None
        where this configuration changes which documents a query fuses in a way the shared
        alignment cannot express (Borda with a list weighted 0); :meth:`top` then fuses afresh.
        """
        norm = resolve_options(method, norm, k, bounds, self.n_lists, None)
        w = check_weights(weights, self.n_lists, self.n_queries)
        e = check_evidence(evidence, method, self.n_lists, self.n_queries)
        if e is not None:
            w = _m.scaled_weights(w, e)
        if method not in _m.PER_LIST and not np.all(w > 0):
            return None
        normed = None if method in RANK_METHODS else self._normalized(norm, bounds)  # type: ignore[arg-type]
        values = None
        if method in _m.PER_LIST:
            uses = _m.PER_LIST[method].uses
            key = (
                ("rank", None)
                if uses == "rank"
                else (norm, None if bounds is None else tuple(bounds))
            )
            if key not in self._values:
                self._values[key] = entry_values(uses, self._canon, normed, self._al)
            values = self._values[key]
        comb = combine(method, self._canon, normed, self._al, w, k, values)
        fused = comb.fused
        if comb.covered is not None:  # rows that only zero-weighted lists hold
            fused = np.where(comb.covered, fused, -np.inf)
        return fused

    def top(
        self,
        method: str = "rrf",
        weights: Any = None,
        norm: str | None = None,
        k: float = 60,
        top: int = 10,
        bounds: Bounds = None,
        evidence: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The best ``top`` ids and fused scores of every query, ``(n_queries, top)`` padded
        with -1 / ``-inf``: what :func:`fusion.fuse_padded` ranks first, ties by smaller id."""
        resolve_options(method, norm, k, bounds, self.n_lists, top)
        fused = self.scores(method, weights, norm, k, bounds, evidence)
        if fused is None:
            return self._fuse_afresh(method, weights, norm, k, top, bounds, evidence)
        neg = np.full((self.n_queries, self._width), np.inf)
        neg.ravel()[self._flat] = -fused
        return _top_rows(neg, self._ids_grid, top)

    def _fuse_afresh(self, method, weights, norm, k, top, bounds, evidence):
        cut = [(a, s) for a, s in self._lists]
        results = _fuse_padded_arrays(
            cut, method, weights, norm, k, bounds, top, self.depth, evidence
        )
        out_ids = np.full((self.n_queries, top), PAD_ID, dtype=np.int64)
        out_scores = np.full((self.n_queries, top), -np.inf)
        for q, r in enumerate(results):
            out_ids[q, : len(r.ids)] = r.ids
            out_scores[q, : len(r.ids)] = r.scores
        return out_ids, out_scores


def _top_rows(neg: np.ndarray, ids: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``top`` largest finite scores, given negated (``neg``, ``+inf`` for none;
    ties: smaller id, as columns are in ascending id order within a row), padded -1 / -inf."""
    n_q, width = neg.shape
    k_eff = min(top, width)
    kk = min(width, k_eff + 16)  # a margin, so ties at the cut are seen
    if kk < width:
        part_all = np.argpartition(neg, kk, axis=1)
        part = part_all[:, :kk]
        boundary = np.take_along_axis(neg, part_all[:, kk : kk + 1], axis=1)[:, 0]
    else:
        part = np.broadcast_to(np.arange(width), (n_q, width))
        boundary = np.full(n_q, np.inf)
    ps = np.take_along_axis(neg, part, axis=1)
    order = np.lexsort((part, ps), axis=1)[:, :k_eff]
    cols = np.take_along_axis(part, order, axis=1)
    top_neg = np.take_along_axis(ps, order, axis=1)
    # rows whose last kept score ties a score left outside the margin: sort them fully
    tied = np.flatnonzero(np.isfinite(boundary) & (top_neg[:, -1] >= boundary))
    for q in tied:
        full = np.lexsort((np.arange(width), neg[q]))[:k_eff]
        cols[q], top_neg[q] = full, neg[q, full]
    found = np.isfinite(top_neg)
    out_ids = np.full((n_q, top), PAD_ID, dtype=np.int64)
    out_scores = np.full((n_q, top), -np.inf)
    out_ids[:, :k_eff] = np.where(found, np.take_along_axis(ids, cols, axis=1), PAD_ID)
    out_scores[:, :k_eff] = np.where(found, -top_neg, -np.inf)
    return out_ids, out_scores
