"""Why each hit is where it is: per-query evidence and weights, the hits' per-retriever
sources, and the token/term explanations built on demand."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hybrid.engine.base import EngineBase
from hybrid.engine.candidates import Candidates
from hybrid.engine.evidence import (
    EXPLAIN_MIN_EVIDENCE,
    describe_reach,
    measure_evidence,
    query_profiles,
    reference_lists,
)
from hybrid.engine.results import Explanation, Hit, SourceScore, new_hit, source_score
from hybrid.engine.scripts import crossing_share, dominant_script


class ExplainMixin(EngineBase):
    """Evidence, weights in words, hits and their explanations (part of
    :class:`HybridRetriever`)."""

    def evidence(self, candidates: Candidates, names: Sequence[str] | None = None) -> np.ndarray:
        """``(n_queries, len(names))`` evidence of each retriever for each query, in [0, 1].

        The query-only measure of :meth:`Retriever.evidence` times, for script-bound retrievers
        (BM25, SPLADE), the :func:`~hybrid.engine.evidence.document_reach` of their collection,
        judged from the ranked lists of the retrievers that are not script-bound (kept in
        ``candidates.evidence``, the parts in ``candidates.read`` and ``candidates.reach``, the
        lists in ``candidates.reference``, so fusing the same candidates again does not measure
        again); what ``"adaptive"`` fusion weighs by.
        """
        names = list(candidates.results if names is None else names)
        ranked = {n: (r.ids, r.scores) for n, r in candidates.results.items()}
        reference = reference_lists(self.retrievers, ranked)
        candidates.reference = reference
        profiles = None  # the queries' scripts and crossing shares, found once for all
        for name in names:
            if name in candidates.evidence:
                continue
            retriever = self.retrievers[name]
            encoded = candidates.encoded.get(name)
            if encoded is None:
                encoded = retriever.encode_queries(candidates.queries)
            if profiles is None and retriever.script_bound:
                profiles = query_profiles(candidates.queries)
            scripts, crossing = (None, None) if profiles is None else profiles
            read, reach = measure_evidence(
                retriever, candidates.queries, encoded, name, reference, scripts, crossing
            )
            candidates.read[name], candidates.reach[name] = read, reach
            candidates.evidence[name] = read * reach
        return np.stack([candidates.evidence[n] for n in names], axis=1)

    def _weighting(
        self,
        names: list[str],
        base: list[float],
        used: np.ndarray,
        evidence: np.ndarray | None,
        candidates: Candidates,
        q: int,
    ) -> str | None:
        """Why each retriever had its weight for one query, in words (adaptive fusion only)."""
        if evidence is None:
            return None
        parts = []
        for name, b, w, e in zip(names, base, used.tolist(), evidence.tolist(), strict=True):
            scale = "" if b == 1.0 else f" = {b:g} x {e:.2f}"
            why = self._why(name, candidates, q, e)
            parts.append(f"{name} {w:.2f}{scale} ({why})")
        if not np.any(np.asarray(base) * evidence > 0):
            return (
                "weights for this query: no retriever has evidence for it, so the configured "
                "weights are used; " + ", ".join(parts)
            )
        return "weights for this query (configured weight x evidence): " + ", ".join(parts)

    def _why(self, name: str, candidates: Candidates, q: int, value: float) -> str:
        """One retriever's evidence for query ``q`` in words: the query part, then the reach."""
        retriever = self.retrievers[name]
        read = candidates.read.get(name)
        why = retriever.describe_evidence(value if read is None else float(read[q]))
        stats = retriever.collection_stats()
        reach = candidates.reach.get(name)
        if stats is not None and reach is not None and retriever.script_bound:
            text = candidates.queries[q]
            ref = candidates.reference
            why += "; " + describe_reach(
                stats,
                dominant_script(text),
                float(reach[q]),
                None if ref is None else ref.rows(q),
                crossing_share(text),
            )
        return why

    def _hits(
        self,
        result,
        names: list[str],
        evidence: np.ndarray | None,
        label: str,
        weighting: Callable[[], str | None] | None,
        candidates: Candidates,
        q: int,
    ) -> list[Hit]:
        hits = []
        used = result.weights.tolist()
        evidence = [None] * len(names) if evidence is None else evidence.tolist()
        ranks, raw = result.ranks.tolist(), result.raw_scores.tolist()
        normalized, contributions = result.normalized.tolist(), result.contributions.tolist()
        scores = result.scores.tolist()
        for i, row in enumerate(result.ids.tolist()):
            rank_i, raw_i, norm_i, contrib_i = ranks[i], raw[i], normalized[i], contributions[i]
            sources = {
                name: source_score(
                    rank_i[j], raw_i[j], norm_i[j], contrib_i[j], used[j], evidence[j]
                )
                for j, name in enumerate(names)
            }
            hits.append(
                self.make_hit(row, i + 1, scores[i], sources, label, candidates, q, weighting)
            )
        return hits

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
            id=store.ids[row],
            score=score,
            text=store.texts[row],
            rank=rank,
            sources=sources,
            fused_score=score,
            fused_rank=rank,
            metadata=store.metadata[row],
            reranker_score=None,
            _row=row,
            _explainer=self._explainer(row, label, candidates, q, weighting),
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
            for name, source in hit.sources.items():
                retriever = self.retrievers[name]
                if retriever.kind not in ("splade", "bm25"):
                    continue
                what = "tokens" if retriever.kind == "splade" else "terms"
                if not source.rank:
                    notes.append(f"{name}: no {what} shown: it did not return this document")
                    continue
                if source.evidence is not None and source.evidence < EXPLAIN_MIN_EVIDENCE:
                    notes.append(
                        f"{name}: no {what} shown: its evidence for this query is "
                        f"{source.evidence:.2f}, so its matches are noise "
                        f"({self._why(name, candidates, q, source.evidence)})"
                    )
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
