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

A multilingual dense model leans towards documents in the query's own language: an unrelated
sentence in the query's language can score as high as a translation of the query. So the
reference's own scores place the scripts only when a lexical retriever *confirms* a document in
the query's script: its best document there is among the reference's first
:data:`CONFIRM_DEPTH` there, or the reverse (the two retrievers agree the query has a match in
its own script). Otherwise each reference score first loses the query's mean score over the
documents of the document's script (:attr:`Strata.baselines`, from the dense retriever's
:class:`~hybrid.engine.sample.VectorSample`), so a document places by how far it stands out
among its own script's documents.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import fusion
from fusion.strata import interleave_results

__all__ = ["CONFIRM_DEPTH", "NO_SCRIPT", "Placement", "Strata", "stratified_fuse"]

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
    baselines: Mapping[str, np.ndarray] | None = None
    """Reference retriever name -> ``(n_queries, n_scripts + 1)``: each query's mean score over
    the documents of each script (column ``code + 1``), what :func:`stratified_fuse` takes
    away before that retriever places the scripts of an unconfirmed query (None: not known)."""

    def within(self, ids: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask over ``ids`` (``(n, m)`` internal ids of the queries ``rows``, all by
        default; ``-1`` pads): the document is in its query's script or has no letters, or the
        query has none. Padding is False; ids the statistics do not know count as within."""
        ids = np.asarray(ids, dtype=np.int64)
        q = self.query_scripts if rows is None else self.query_scripts[rows]
        codes = self.codes(ids)
        q = q.reshape((-1,) + (1,) * (ids.ndim - 1))
        return (ids >= 0) & ((codes == q) | (codes == NO_SCRIPT) | (q == NO_SCRIPT))

    def codes(self, ids: np.ndarray) -> np.ndarray:
        """The script code of each internal id in ``ids`` (:data:`NO_SCRIPT` for padding and
        for ids the statistics do not know)."""
        n_rows = self.doc_scripts.shape[0]
        known = (ids >= 0) & (ids < n_rows)
        if not n_rows:
            return np.full(ids.shape, NO_SCRIPT, dtype=self.doc_scripts.dtype)
        return np.where(known, self.doc_scripts.take(np.clip(ids, 0, n_rows - 1)), NO_SCRIPT)

    def sides(self) -> np.ndarray | None:
        """Per query, whether every document is within its script (True) or none is (False),
        when the collection is in one script (:attr:`only`); None when it depends on each."""
        only = self.only
        if only is None:
            return None
        cached = self.__dict__.get("_sides")  # found once per Strata (it is frozen)
        if cached is None:
            flags = [  # (a search has one query: Python is cheaper than array operations)
                only == NO_SCRIPT or c == only or c == NO_SCRIPT
                for c in self.query_scripts.tolist()
            ]
            cached = np.array(flags, dtype=bool)
            cached.flags.writeable = False
            self.__dict__["_sides"] = cached
            self.__dict__["_all_within"] = all(flags)
        return cached

    def all_within(self) -> bool:
        """Whether every query's documents are all within its script (:meth:`sides` all True;
        False when it depends on each document)."""
        return self.sides() is not None and self.__dict__["_all_within"]

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

    def subset(self, rows: Sequence[int] | np.ndarray) -> Strata:
        """The strata of some queries (by position)."""
        rows = np.asarray(rows)
        baselines = None
        if self.baselines is not None:
            baselines = {n: b[rows] for n, b in self.baselines.items()}
        return Strata(
            self.doc_scripts, self.query_scripts[rows], self.reference, self.only, baselines
        )


def stratified_fuse(
    lists: list[tuple[np.ndarray, np.ndarray]],
    names: Sequence[str],
    options: dict[str, Any],
    across: np.ndarray,
    strata: Strata,
    top: int | None,
    placements: dict[int, Placement] | None = None,
) -> list[fusion.FusionResult]:
    """Adaptive fusion of padded ``lists`` by script strata (see the module), for a collection
    in several scripts (one in a single script needs no strata: :meth:`Strata.sides`).

    ``options``: :func:`fusion.fuse_padded`'s keywords, ``evidence`` the ``(n_queries, L)``
    evidence within the query's script; ``across``: the same, across scripts. Returns one
    :class:`fusion.FusionResult` per query; those of queries fused by strata carry per-document
    ``weights`` ``(n, L)``. ``placements`` (filled when given): query position -> how its
    scripts were placed (:class:`Placement`).
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
            confirmed = _confirmer(sub, names, ref, i, within_ev[q], own, r.ids)
            shift = None if confirmed else _shift(strata, names, ref, q)
            if shift is not None:
                moved = [
                    (
                        sub[j][0][i : i + 1],
                        _shifted(sub[j][0][i], sub[j][1][i], shift[names[j]], strata),
                    )
                    for j in ref
                ]
                one = _options(options, np.array([q]), within_ev[[q]][:, ref], ref)
                r = fusion.fuse_padded(moved, top=None, **one)[0]
            if placements is not None:
                placements[q] = Placement(confirmed, shift)
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


CONFIRM_DEPTH = 10
"""How far down each other's ranking of the query's script a lexical retriever and the reference
look for their best document there (a first page of results)."""

CONFIRM_EVIDENCE = 0.5
"""A lexical retriever confirms only with at least this evidence within the query's script (it
reads most of the query and of those documents)."""


@dataclass(frozen=True)
class Placement:
    """How one query's scripts were placed against each other.

    ``confirmed_by``: the lexical retriever whose best document in the query's script is among
    the reference's first :data:`CONFIRM_DEPTH` there, or the reverse (the reference's own
    scores then placed the scripts); ``baselines``: otherwise, per reference retriever, the
    query's mean score over each script's documents (column ``code + 1``), subtracted from its
    scores before they placed the scripts (None: not known, its scores placed them as they are).
    """

    confirmed_by: str | None
    baselines: dict[str, np.ndarray] | None

    def describe(self, reference: str, scripts: Sequence[str]) -> str:
        """How the scripts were placed, in words (``scripts``: the names of the script codes)."""
        if self.confirmed_by is not None:
            return (
                f"{reference}'s ranking as it scores them, since {self.confirmed_by} confirms a "
                f"document in the query's script (its best one there is among {reference}'s "
                f"first {CONFIRM_DEPTH} there, or the reverse)"
            )
        if self.baselines is None:
            return f"{reference}'s ranking (its mean score per script is not known)"
        means = []
        for name, base in self.baselines.items():
            parts = [f"{s.title()} {base[c + 1]:.3f}" for c, s in enumerate(scripts)]
            means.append(f"{name}: " + ", ".join(parts))
        return (
            f"{reference}'s ranking less its mean score over each script's documents "
            f"({'; '.join(means)}: a multilingual model leans towards the query's own script), "
            f"since no lexical retriever confirms a document in the query's script"
        )


def _confirmer(sub, names, ref, i, evidence, own, reference_ids) -> str | None:
    """The first lexical list whose best document in the query's script the reference ranks in
    its first :data:`CONFIRM_DEPTH` there, or the reverse; None if none does."""
    mine = _in_script(reference_ids, own)
    if mine.size == 0:
        return None
    for j, name in enumerate(names):
        if j in ref or evidence[j] < CONFIRM_EVIDENCE:
            continue
        theirs = _in_script(sub[j][0][i], own)
        if theirs.size and (theirs[0] in mine[:CONFIRM_DEPTH] or mine[0] in theirs[:CONFIRM_DEPTH]):
            return name
    return None


def _in_script(ids: np.ndarray, own: Strata) -> np.ndarray:
    """The ids (padding dropped) in the query's script, in order (``own``: one query)."""
    ids = ids[ids >= 0]
    return ids[own.within(ids[None, :])[0]]


def _shift(strata: Strata, names, ref, q: int) -> dict[str, np.ndarray] | None:
    """Reference name -> query ``q``'s per-script baselines, for every reference list; None
    unless all are known."""
    known = strata.baselines or {}
    if not all(names[j] in known for j in ref):
        return None
    return {names[j]: known[names[j]][q] for j in ref}


def _shifted(ids: np.ndarray, scores: np.ndarray, baseline: np.ndarray, strata: Strata):
    """``scores`` (one row, ``-1`` padded ``ids``) minus each document's script baseline."""
    codes = strata.codes(ids)
    out = np.asarray(scores, dtype=np.float64) - np.where(ids >= 0, baseline[codes + 1], 0.0)
    return out[None, :]


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
