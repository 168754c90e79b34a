"""Rerankers: re-score the top fused candidates of a query. One small interface, several backends.

A reranker receives the query and the candidates (their texts, and their internal ids for
backends that read stored vectors) and returns one score per candidate, higher is better. Any
callable ``(query: str, texts: list[str]) -> list[float]`` is accepted as a reranker too.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hybrid.encoders.base import auto_device, require
from hybrid.protocols import EngineLike


@dataclass(frozen=True)
class RerankCandidates:
    """The candidates of one query: texts and internal row ids, plus the engine that holds them."""

    texts: list[str]
    rows: np.ndarray
    engine: EngineLike


class Reranker(ABC):
    """Scores candidates for a query; higher is better."""

    name: str = "reranker"
    reads_index: bool = False
    """True for rerankers that read the engine's indexes (not only the texts): the engine then
    reranks inside the search's read lock, so a concurrent write cannot change them meanwhile."""

    @abstractmethod
    def score(self, query: str, candidates: RerankCandidates) -> np.ndarray:
        """One float score per candidate, in the candidates' order."""


class CallableReranker(Reranker):
    """Wraps any ``(query, texts) -> scores`` function."""

    def __init__(self, fn: Callable[[str, list[str]], Sequence[float]], name: str = "custom"):
        if not callable(fn):
            raise TypeError(f"a reranker must be callable, got {type(fn).__name__}")
        self.fn = fn
        self.name = name

    def score(self, query: str, candidates: RerankCandidates) -> np.ndarray:
        return np.asarray(self.fn(query, candidates.texts), dtype=np.float64)


class CrossEncoderReranker(Reranker):
    """A sentence-transformers ``CrossEncoder`` scoring (query, text) pairs jointly."""

    def __init__(
        self,
        model_name_or_path: str,
        *,
        batch_size: int = 32,
        device: str | None = None,
        max_length: int | None = None,
    ) -> None:
        st = require("sentence_transformers", "models")
        self.name = f"cross-encoder:{model_name_or_path}"
        self.batch_size = batch_size
        self.model = st.CrossEncoder(
            model_name_or_path, device=auto_device(device), max_length=max_length
        )

    def score(self, query: str, candidates: RerankCandidates) -> np.ndarray:
        pairs = [(query, text) for text in candidates.texts]
        scores = self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return np.asarray(scores, dtype=np.float64).reshape(len(pairs), -1)[:, -1]


class DenseRescorer(Reranker):
    """Exact similarity between the query and candidate embeddings of a dense retriever's model.

    Useful after an approximate index (HNSW, IVF-PQ), or to give a dense score to candidates the
    dense retriever did not return. Candidates are encoded with the retriever's encoder.
    """

    def __init__(self, retriever: str = "dense") -> None:
        self.retriever = retriever
        self.name = f"dense-rescore:{retriever}"

    def score(self, query: str, candidates: RerankCandidates) -> np.ndarray:
        encoder = _retriever(candidates.engine, self.retriever, "dense").encoder
        q = np.asarray(encoder.encode_queries([query]), dtype=np.float64)[0]
        docs = np.asarray(encoder.encode_documents(candidates.texts), dtype=np.float64)
        if getattr(encoder, "metric", "ip") == "cosine":
            q = q / max(np.linalg.norm(q), 1e-12)
            docs = docs / np.maximum(np.linalg.norm(docs, axis=1, keepdims=True), 1e-12)
        return docs @ q


class SpladeRescorer(Reranker):
    """Exact SPLADE dot product of the query with the stored document vectors.

    Gives every candidate its SPLADE score, including those the SPLADE retriever did not return.
    """

    reads_index = True

    def __init__(self, retriever: str = "splade") -> None:
        self.retriever = retriever
        self.name = f"splade-rescore:{retriever}"

    def score(self, query: str, candidates: RerankCandidates) -> np.ndarray:
        splade = _retriever(candidates.engine, self.retriever, "splade")
        q = splade.encoder.encode_queries([query])
        docs = splade.index.doc_vectors(candidates.rows)
        return np.asarray((docs @ q.T).toarray()).ravel().astype(np.float64)


def _retriever(engine: EngineLike, name: str, kind: str) -> Any:
    if name not in engine.retrievers:
        raise ValueError(f"no retriever {name!r} to rescore with; the engine has: {engine.names}")
    retriever = engine.retrievers[name]
    if retriever.kind != kind:
        raise ValueError(f"retriever {name!r} is {retriever.kind!r}, not {kind!r}")
    return retriever


RERANKERS: dict[str, Callable[[], Reranker]] = {
    "dense": DenseRescorer,
    "splade": SpladeRescorer,
}
"""Rerankers available by name (``search(..., reranker="dense")``)."""


def get_reranker(spec: str | Reranker | Callable[[str, list[str]], Sequence[float]]) -> Reranker:
    """A :class:`Reranker` from a name in :data:`RERANKERS`, an instance, or a callable."""
    if isinstance(spec, Reranker):
        return spec
    if isinstance(spec, str):
        if spec.startswith("cross-encoder:"):
            return CrossEncoderReranker(spec.split(":", 1)[1])
        if spec not in RERANKERS:
            choices = ", ".join([*RERANKERS, "cross-encoder:<model>"])
            raise ValueError(f"unknown reranker {spec!r}; choose one of: {choices}")
        return RERANKERS[spec]()
    if callable(spec):
        return CallableReranker(spec)
    raise TypeError(f"reranker must be a name, a Reranker or a callable, got {type(spec).__name__}")
