"""Why each hit is where it is: per-query evidence and weights, the hits' per-retriever
sources, and the token/term explanations built on demand."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from hybrid.engine.base import EngineBase
from hybrid.engine.candidates import Candidates
from hybrid.engine.evidence import (
    EXPLAIN_MIN_EVIDENCE,
    describe_reach,
    evidence_parts,
    strata_for,
)
from hybrid.engine.results import Explanation, Hit, SourceScore, new_hit
from hybrid.engine.scripts import _profiles, crossing_share, dominant_script


class ExplainMixin(EngineBase):
    """Evidence, weights in words, hits and their explanations (part of
    :class:`HybridRetriever`)."""

    def evidence(self, candidates: Candidates, names: Sequence[str] | None = None) -> np.ndarray:
        """``(n_queries, len(names))`` evidence of each retriever for each query within the
        query's script, in [0, 1].

        The query-only measure of :meth:`Retriever.evidence` times, for script-bound retrievers
        (BM25, SPLADE), the :func:`~hybrid.engine.evidence.stratum_reach` of their collection.
        Kept in ``candidates.evidence`` (the one across scripts in ``candidates.
        evidence_across``, the parts in ``read``, ``reach`` and ``reach_across``, the scripts in
        ``candidates.strata``), so fusing the same candidates again does not measure again;
        what ``"adaptive"`` fusion weighs by.
        """
        names = list(candidates.results if names is None else names)
        self._measure(candidates, names)
        return np.stack([candidates.evidence[n] for n in names], axis=1)

    def _measure(self, candidates: Candidates, names: Sequence[str]) -> None:
        """:meth:`evidence` without the matrix: fills ``candidates`` (what fusing reads)."""
        profiles = None  # the queries' scripts and crossing shares, found once for all
        for name in names:
            if name in candidates.evidence:
                continue
            retriever = self.retrievers[name]
            encoded = candidates.encoded.get(name)
            if encoded is None:
                encoded = retriever.encode_queries(candidates.queries)
            if profiles is None and retriever.script_bound:
                profiles = _profiles(candidates.queries)
                candidates.strata = strata_for(self.retrievers, profiles[0], candidates.encoded)
            scripts, crossing = (None, None) if profiles is None else profiles
            parts = evidence_parts(retriever, candidates.queries, encoded, name, scripts, crossing)
            candidates.read[name], candidates.reach[name] = parts[0], parts[1]
            candidates.reach_across[name] = parts[2]
            candidates.evidence[name], candidates.evidence_across[name] = parts[3], parts[4]

    def _weighting(
        self,
        names: list[str],
        base: list[float],
        used: list[float],
        evidence: list[float] | None,
        candidates: Candidates,
        q: int,
        within: bool = True,
        placed_by: str | None = None,
    ) -> str | None:
        """Why each retriever had its weight for one hit of query ``q``, in words (adaptive
        fusion only); ``within``: the hit is in the query's script; ``placed_by``: how the
        scripts were placed against each other, in words (a query fused by strata)."""
        if evidence is None:
            return None
        parts = []
        for name, b, w, e in zip(names, base, used, evidence, strict=True):
            scale = "" if b == 1.0 else f" = {b:g} x {e:.2f}"
            why = self._why(name, candidates, q, e, within)
            parts.append(f"{name} {w:.2f}{scale} ({why})")
        if not np.any(np.asarray(base) * np.asarray(evidence) > 0):
            text = (
                "weights for this query: no retriever has evidence for it, so the configured "
                "weights are used; " + ", ".join(parts)
            )
        else:
            text = "weights for this query (configured weight x evidence): " + ", ".join(parts)
        if placed_by:
            side = "in the query's script" if within else "in other scripts"
            text += (
                f"; ranked among the documents {side} with these weights, and placed against the "
                f"other scripts by {placed_by}; its score at this place is the hit's"
            )
        return text

    def _placement(self, candidates: Candidates, q: int, names: list[str]) -> str:
        """How query ``q``'s scripts were placed against each other, in words."""
        reference = " and ".join(m for m in names if m in candidates.strata.reference)
        placement = candidates.placements.get(q)
        if placement is None:
            return f"{reference}'s ranking"
        bound = (r.collection_stats() for r in self.retrievers.values() if r.script_bound)
        stats = next((s for s in bound if s is not None), None)
        return placement.describe(reference, [] if stats is None else stats.scripts)

    def _why(
        self, name: str, candidates: Candidates, q: int, value: float, within: bool = True
    ) -> str:
        """One retriever's evidence for query ``q`` in words: the query part, then the reach
        over the hit's stratum (``within`` the query's script or not)."""
        retriever = self.retrievers[name]
        read = candidates.read.get(name)
        why = retriever.describe_evidence(value if read is None else float(read[q]))
        stats = retriever.collection_stats()
        reach = (candidates.reach if within else candidates.reach_across).get(name)
        if stats is not None and reach is not None and retriever.script_bound:
            text = candidates.queries[q]
            why += "; " + describe_reach(
                stats, dominant_script(text), float(reach[q]), crossing_share(text), within
            )
        return why

    def _hits(
        self,
        result,
        names: list[str],
        base: list[float] | None,
        label: str,
        candidates: Candidates,
        q: int,
    ) -> list[Hit]:
        """The hits of query ``q``'s fused ``result``; ``base``: the configured weights under
        ``"adaptive"`` fusion (each hit then carries its stratum's evidence and can say why),
        None for other methods."""
        hits = []
        n = len(result.ids)
        weights = result.weights
        used = weights.tolist() if weights.ndim == 2 else [weights.tolist()] * n
        within = [True] * n
        merged = weights.ndim == 2 and candidates.strata is not None  # fused by strata
        if base is None:
            evidence = [[None] * len(names)] * n
        else:
            inside = [candidates.evidence[m].item(q) for m in names]
            strata = candidates.strata
            if strata is not None:
                sides = strata.sides()  # a collection in one script: no look at each hit
                if sides is None:
                    within = strata.within(result.ids[None, :], np.array([q]))[0].tolist()
                else:
                    within = [bool(sides[q])] * n
                across = candidates.evidence_across
                outside = [across.get(m, candidates.evidence[m]).item(q) for m in names]
                choice = (outside, inside)
                evidence = [choice[w] for w in within]
            else:
                evidence = [inside] * n
        ranks, raw = result.ranks.tolist(), result.raw_scores.tolist()
        normalized, contributions = result.normalized.tolist(), result.contributions.tolist()
        scores = result.scores.tolist()
        whys: dict[int, tuple] = {}  # row -> what its weighting is said from (adaptive only)
        explain = self._query_explainer(label, candidates, q, names, base, merged, whys)
        store = self.store
        doc_ids, texts, metadata = store.ids, store.texts, store.metadata
        for i, row in enumerate(result.ids.tolist()):
            used_i, ev_i = used[i], evidence[i]
            sources = (names, ranks[i], raw[i], normalized[i], contributions[i], used_i, ev_i)
            if base is not None:
                whys[row] = (used_i, ev_i, within[i])
            score = scores[i]
            hits.append(  # what make_hit builds, with one explainer shared by the query's hits
                new_hit(
                    {
                        "id": doc_ids[row],
                        "score": score,
                        "text": texts[row],
                        "rank": i + 1,
                        "_sources_from": sources,
                        "fused_score": score,
                        "fused_rank": i + 1,
                        "metadata": metadata[row],
                        "reranker_score": None,
                        "_row": row,
                        "_explainer": explain,
                    }
                )
            )
        return hits

    def _query_explainer(
        self,
        label: str,
        candidates: Candidates,
        q: int,
        names: list[str],
        base: list[float] | None,
        merged: bool,
        whys: dict[int, tuple],
    ) -> Callable[[Hit, int | None], Explanation]:
        """The explainer of every hit of query ``q`` (:meth:`_hits`): the hit's own
        :meth:`_explainer`, made when asked, with its weighting from ``whys[hit._row]``;
        ``merged``: the query was fused by strata (its weighting says how they were placed)."""

        def explain(hit: Hit, top: int | None) -> Explanation:
            why = None
            if base is not None:
                used, evidence, within = whys[hit._row]
                placed = self._placement(candidates, q, names) if merged else None
                why = partial(
                    self._weighting, names, base, used, evidence, candidates, q, within, placed
                )
            return self._explainer(hit._row, label, candidates, q, why)(hit, top)

        return explain

    def make_hit(
        self,
        row: int,
        rank: int,
        score: float,
        sources: dict[str, SourceScore],
        label: str,
        candidates: Candidates,
        q: int,
        weighting: Callable[[], str | None] | None = None,
    ) -> Hit:
        """The hit for document row ``row`` at fused ``rank`` of query ``q``, explainable on
        demand (a public hook: engines on other backends build their hits with it)."""
        store = self.store
        return new_hit(
            {
                "id": store.ids[row],
                "score": score,
                "text": store.texts[row],
                "rank": rank,
                "sources": sources,
                "fused_score": score,
                "fused_rank": rank,
                "metadata": store.metadata[row],
                "reranker_score": None,
                "_row": row,
                "_explainer": self._explainer(row, label, candidates, q, weighting),
            }
        )

    def _explainer(
        self,
        row: int,
        label: str,
        candidates: Candidates,
        q: int,
        weighting: Callable[[], str | None] | None = None,
    ) -> Callable:
        def explain(hit: Hit, top: int | None) -> Explanation:
            splade, bm25, notes = [], [], []
            strata = candidates.strata
            within = strata is None or bool(strata.within(np.array([[row]]), np.array([q]))[0, 0])
            for name, source in hit.sources.items():
                retriever = self.retrievers[name]
                if retriever.kind not in ("splade", "bm25"):
                    continue
                what = "tokens" if retriever.kind == "splade" else "terms"
                if source.evidence is not None and source.evidence < EXPLAIN_MIN_EVIDENCE:
                    notes.append(
                        f"{name}: no {what} shown: its evidence for this query is "
                        f"{source.evidence:.2f}, so its matches are noise "
                        f"({self._why(name, candidates, q, source.evidence, within)})"
                    )
                    continue
                if not source.rank:
                    notes.append(f"{name}: no {what} shown: it did not return this document")
                    continue
                encoded = candidates.encoded_query(retriever, name, q)
                with self._rw.read():  # the indexes as they are now
                    try:
                        terms = retriever.explain_terms(encoded, row, top)
                    except KeyError:
                        raise KeyError(
                            f"document {hit.id!r} was deleted or replaced after this search; "
                            "search again to explain it"
                        ) from None
                (splade if retriever.kind == "splade" else bm25).extend(terms)
            return Explanation(
                id=hit.id,
                score=hit.score,
                fusion=label,
                retrievers=hit.sources,
                splade_tokens=splade,
                bm25_terms=bm25,
                reranker_score=hit.reranker_score,
                weighting=None if weighting is None else weighting(),
                notes=notes,
            )

        return explain

    explainer = _explainer  # public hook (see EngineBase)
