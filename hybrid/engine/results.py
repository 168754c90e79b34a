"""What a search returns: hits, their per-retriever scores, and their explanations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SourceScore:
    """How one retriever saw a hit.

    ``rank`` starts at 1 (0: the retriever did not return the hit among its candidates);
    ``score`` is the retriever's raw score (NaN when absent); ``normalized_score`` is the value
    the fusion method used (for RRF the ``1 / (k + rank)`` term); ``contribution`` is that value
    times the retriever's weight, i.e. its share of the fused score. ``weight`` is the weight the
    retriever had for this query; with ``"adaptive"`` fusion that is the configured weight times
    ``evidence``, the retriever's measured ability to read this query (None for other methods).
    """

    rank: int
    score: float
    normalized_score: float
    contribution: float
    weight: float
    evidence: float | None = None

    @property
    def raw_score(self) -> float:
        return self.score


def source_score(
    rank: int,
    score: float,
    normalized_score: float,
    contribution: float,
    weight: float,
    evidence: float | None = None,
) -> SourceScore:
    """``SourceScore(rank, score, ...)``, the same object, built without the frozen
    dataclass's ``object.__setattr__`` per field (every search builds one per hit and
    retriever; this takes a third of the time)."""
    out = _new(SourceScore)
    d = out.__dict__
    d["rank"] = rank
    d["score"] = score
    d["normalized_score"] = normalized_score
    d["contribution"] = contribution
    d["weight"] = weight
    d["evidence"] = evidence
    return out


_new = object.__new__


@dataclass(frozen=True)
class TokenContribution:
    """One SPLADE vocabulary token shared by the query and the document."""

    token: str
    token_id: int
    query_weight: float
    doc_weight: float
    product: float


@dataclass(frozen=True)
class TermContribution:
    """One BM25 query term and the score it added to the document."""

    term: str
    contribution: float


@dataclass(frozen=True)
class Explanation:
    """Why a hit is where it is: per retriever, the SPLADE tokens and the BM25 terms.

    ``weighting`` (``"adaptive"`` fusion): which weight each retriever had for this query and
    why, in words (the evidence behind each weight). ``notes``: why a retriever shows no tokens
    or terms (it did not return the hit, or its evidence for the query is near zero).
    """

    id: Any
    score: float
    fusion: str
    retrievers: dict[str, SourceScore]
    splade_tokens: list[TokenContribution] = field(default_factory=list)
    bm25_terms: list[TermContribution] = field(default_factory=list)
    reranker_score: float | None = None
    weighting: str | None = None
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.id}  score={self.score:.4f}  ({self.fusion})"]
        if self.weighting:
            lines.append(f"  {self.weighting}")
        for name, s in self.retrievers.items():
            where = f"rank {s.rank:>3}" if s.rank else "not retrieved"
            evidence = "" if s.evidence is None else f"  evidence={s.evidence:.2f}"
            lines.append(
                f"  {name:<7} {where}  raw={s.score:.4f}  norm={s.normalized_score:.4f}"
                f"  weight={s.weight:.4g}{evidence}  contribution={s.contribution:.4f}"
            )
        if self.splade_tokens:
            lines.append("  SPLADE tokens (query x doc = product):")
            lines += [
                f"    {t.token:<16} {t.query_weight:6.3f} x {t.doc_weight:6.3f} = {t.product:.4f}"
                for t in self.splade_tokens
            ]
        if self.bm25_terms:
            lines.append("  BM25 terms:")
            lines += [f"    {t.term:<16} {t.contribution:.4f}" for t in self.bm25_terms]
        lines += [f"  {note}" for note in self.notes]
        if self.reranker_score is not None:
            lines.append(f"  reranker score: {self.reranker_score:.4f}")
        return "\n".join(lines)


@dataclass
class Hit:
    """One search result, best first. ``score`` is the final score, ``fused_score`` the fusion's.

    A search's hits make ``sources`` on first access (it is then in ``vars(hit)`` too).
    """

    id: Any
    score: float
    text: str
    rank: int
    sources: dict[str, SourceScore]
    fused_score: float
    fused_rank: int
    metadata: dict[str, Any] = field(default_factory=dict)
    reranker_score: float | None = None
    _row: int = field(default=-1, repr=False, compare=False)
    _explainer: Callable[[Hit, int | None], Explanation] | None = field(
        default=None, repr=False, compare=False
    )

    def __getattr__(self, name: str) -> Any:
        # ``sources`` of a hit built by a search is made on first access, from what the fusion
        # gave (:func:`new_hit`'s ``_sources_from``): most callers never read it
        if name == "sources":
            d = self.__dict__
            made = d.get("_sources_from")
            if made is not None:
                d["sources"] = _sources(*made)
                return d["sources"]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def explain(self, top: int | None = 5) -> Explanation:
        """Per-retriever scores and the ``top`` SPLADE tokens / BM25 terms (None: all of them)."""
        if self._explainer is None:
            raise RuntimeError("this hit carries no explanation context")
        return self._explainer(self, top)

    def to_dict(self, explain: bool = False, top: int | None = 5) -> dict[str, Any]:
        """A JSON-able view of the hit (with its explanation when ``explain``)."""
        out: dict[str, Any] = {
            "id": self.id,
            "rank": self.rank,
            "score": self.score,
            "fused_score": self.fused_score,
            "fused_rank": self.fused_rank,
            "text": self.text,
            "metadata": self.metadata,
            "sources": {
                name: {
                    "rank": s.rank,
                    "score": None if s.score != s.score else s.score,
                    "normalized_score": None
                    if s.normalized_score != s.normalized_score
                    else s.normalized_score,
                    "weight": s.weight,
                    "contribution": s.contribution,
                    **({} if s.evidence is None else {"evidence": s.evidence}),
                }
                for name, s in self.sources.items()
            },
        }
        if self.reranker_score is not None:
            out["reranker_score"] = self.reranker_score
        if explain:
            e = self.explain(top)
            out["splade_tokens"] = [vars(t) for t in e.splade_tokens]
            out["bm25_terms"] = [vars(t) for t in e.bm25_terms]
            if e.weighting is not None:
                out["weighting"] = e.weighting
            if e.notes:
                out["notes"] = list(e.notes)
        return out


def new_hit(fields: dict[str, Any]) -> Hit:
    """``Hit(**fields)`` given every field in order, the same object, built without the
    dataclass's ``__init__`` (every search builds ``k`` of them, holding the GIL); ``fields``
    becomes the hit's ``__dict__``. Instead of ``sources``, ``_sources_from`` may give ``(names,
    ranks, scores, normalized, contributions, weights, evidence)``, one entry per retriever:
    ``sources`` is then made on first access."""
    out = object.__new__(Hit)
    out.__dict__ = fields
    return out


def _sources(names, ranks, scores, normalized, contributions, weights, evidence) -> dict:
    return {
        name: source_score(
            ranks[j], scores[j], normalized[j], contributions[j], weights[j], evidence[j]
        )
        for j, name in enumerate(names)
    }
