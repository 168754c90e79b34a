"""Fusion by script strata: lexical retrievers order the documents they can read, a script-free
retriever places the scripts against each other.

A lexical retriever (BM25, SPLADE) matches surface forms: its scores compare documents in the
query's script, and say nothing about how such a document compares with one written in another
script, which it can only reach through the query's digits and foreign letters. When a query's
candidates hold both kinds, "adaptive" fusion therefore fuses twice: once with each retriever's
evidence *within* the query's script (:func:`~hybrid.engine.evidence.stratum_reach`), once with
its evidence *across* scripts. Each document keeps its rank among its own stratum's documents,
and the ranking of the retrievers that read every script (a multilingual dense model: the
*reference*) decides which stratum each place goes to (:func:`fusion.strata.interleave`): the
``i``-th place goes to the stratum of the reference's ``i``-th document. A document's score is
the reference's score at its place. Queries whose candidates lie in one stratum (every query of
a collection in one script) are fused once, with that stratum's evidence: nothing changes for
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import fusion
from fusion.strata import interleave_results

__all__ = ["NO_SCRIPT", "Strata", "stratified_fuse"]

NO_SCRIPT = -1
"""Script code of a text without letters (only digits, punctuation, symbols)."""


@dataclass(frozen=True)
class Strata:
    """Which documents are in each query's script, and which retrievers read every script.

    ``doc_scripts``: ``(n_rows,)`` script code of each internal id (:data:`NO_SCRIPT`: no
    letters); ``query_scripts``: ``(n_queries,)`` each query's code (:data:`NO_SCRIPT`: no
    letters; a code no document has: its script is absent); ``reference``: the names of the
    retrievers that are not script-bound; ``only``: the one script code every live document
    has (:data:`NO_SCRIPT` when none has letters), None when there are several: with one, a
    query's documents are all within its script or all across, known without looking at them.
    """

    doc_scripts: np.ndarray
    query_scripts: np.ndarray
    reference: tuple[str, ...]
    only: int | None = None

    def within(self, ids: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask over ``ids`` (``(n, m)`` internal ids of the queries ``rows``, all by
        default; ``-1`` pads): the document is in its query's script or has no letters, or the
        query has none. Padding is False; ids the statistics do not know count as within."""
        ids = np.asarray(ids, dtype=np.int64)
        q = self.query_scripts if rows is None else self.query_scripts[rows]
        n_rows = self.doc_scripts.shape[0]
        known = (ids >= 0) & (ids < n_rows)
        codes = np.where(
            known,
            self.doc_scripts.take(np.clip(ids, 0, max(n_rows - 1, 0))) if n_rows else NO_SCRIPT,
            NO_SCRIPT,
        )
        q = q.reshape((-1,) + (1,) * (ids.ndim - 1))
        return (ids >= 0) & ((codes == q) | (codes == NO_SCRIPT) | (q == NO_SCRIPT))

    def sides(self) -> np.ndarray | None:
        """Per query, whether every document is within its script (True) or none is (False),
        when the collection is in one script (:attr:`only`); None when it depends on each."""
        if self.only is None:
            return None
        cached = self.__dict__.get("_sides")  # found once per Strata (it is frozen)
        if cached is None:
            q = self.query_scripts
            cached = (q == self.only) | (q == NO_SCRIPT) | (self.only == NO_SCRIPT)
            cached.flags.writeable = False
            self.__dict__["_sides"] = cached
        return cached

    def holds(self, lists: Sequence[tuple[np.ndarray, Any]], depth: int | None) -> tuple:
        """``(within, across)``, each ``(n_queries,)`` bool: whether the first ``depth``
        entries of ``lists`` (padded ``(ids, scores)`` pairs) hold a document within the
        query's script, and one across."""
        has_in = np.zeros(self.query_scripts.shape[0], dtype=bool)
        has_out = np.zeros_like(has_in)
        for ids, _ in lists:
            cut = ids[:, :depth] if depth is not None else ids
            inside = self.within(cut)
            has_in |= inside.any(axis=1)
            has_out |= ((cut >= 0) & ~inside).any(axis=1)
        return has_in, has_out

    def evidence(self, within: np.ndarray, across: np.ndarray) -> np.ndarray | None:
        """``(n_queries, L)`` evidence of each query's one stratum, picked from ``within`` and
        ``across``, for a collection in one script; None when queries need :func:`
        stratified_fuse`."""
        sides = self.sides()
        return None if sides is None else np.where(sides[:, None], within, across)

    def subset(self, rows: Sequence[int] | np.ndarray) -> Strata:
        """The strata of some queries (by position)."""
        rows = np.asarray(rows)
        return Strata(self.doc_scripts, self.query_scripts[rows], self.reference, self.only)


def stratified_fuse(
    lists: list[tuple[np.ndarray, np.ndarray]],
    names: Sequence[str],
    options: dict[str, Any],
    across: np.ndarray,
    strata: Strata,
    top: int | None,
) -> list[fusion.FusionResult]:
    """Adaptive fusion of padded ``lists`` by script strata (see the module), for a collection
    in several scripts (one in a single script needs no strata: :meth:`Strata.evidence`).

    ``options``: :func:`fusion.fuse_padded`'s keywords, ``evidence`` the ``(n_queries, L)``
    evidence within the query's script; ``across``: the same, across scripts. Returns one
    :class:`fusion.FusionResult` per query; those of queries fused by strata carry per-document
    ``weights`` ``(n, L)``.
    """
    within_ev = np.asarray(options["evidence"], dtype=np.float64)
    across = np.asarray(across, dtype=np.float64)
    has_in, has_out = strata.holds(lists, options.get("depth"))
    ref = [j for j, n in enumerate(names) if n in strata.reference]
    mixed = has_in & has_out if ref else np.zeros_like(has_in)
    evidence = np.where((has_out & ~has_in)[:, None], across, within_ev)
    results: list[fusion.FusionResult | None] = [None] * within_ev.shape[0]
    plain = np.flatnonzero(~mixed)
    if plain.size:
        part = fusion.fuse_padded(
            _rows(lists, plain), top=top, **_options(options, plain, evidence[plain])
        )
        for q, r in zip(plain.tolist(), part, strict=True):
            results[q] = r
    rows = np.flatnonzero(mixed)
    if rows.size:
        sub = _rows(lists, rows)
        a = fusion.fuse_padded(sub, top=None, **_options(options, rows, within_ev[rows]))
        b = fusion.fuse_padded(sub, top=None, **_options(options, rows, across[rows]))
        ref_options = _options(options, rows, within_ev[rows][:, ref], ref)
        reference = fusion.fuse_padded([sub[j] for j in ref], top=None, **ref_options)
        for i, q in enumerate(rows.tolist()):
            own = strata.subset([q])
            r = reference[i]
            inside = own.within(r.ids[None, :])[0]
            pattern = np.where(inside, 0, 1)
            results[q] = interleave_results(
                [a[i], b[i]],
                [own.within(a[i].ids[None, :])[0], ~own.within(b[i].ids[None, :])[0]],
                pattern,
                r.scores,
                top,
            )
    return results  # type: ignore[return-value]


def _rows(lists: list[tuple[np.ndarray, np.ndarray]], rows: np.ndarray) -> list:
    return [(ids[rows], scores[rows]) for ids, scores in lists]


def _options(
    options: dict[str, Any], rows: np.ndarray, evidence: np.ndarray, lists: list[int] | None = None
) -> dict[str, Any]:
    """``options`` for the queries ``rows`` (and only the lists ``lists``), with ``evidence``."""
    out = {**options, "evidence": evidence}
    weights = options.get("weights")
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        w = w[rows] if w.ndim == 2 else w
        out["weights"] = w if lists is None else w[..., lists]
    return out
