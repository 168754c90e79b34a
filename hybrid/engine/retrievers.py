"""Retrievers: an encoder (or analyzer) paired with the index it feeds.

Each retriever encodes first and indexes second, so a failure while encoding leaves its index
untouched. All retrievers of one engine receive the same documents in the same order, so their
internal ids (consecutive integers assigned by the indexes) agree.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hybrid.encoders.lazy import LazyEncoder
from hybrid.engine.coverage import known_characters, token_coverage
from hybrid.engine.evidence import STATS_FILE, CollectionStats
from hybrid.engine.sample import VectorSample
from hybrid.protocols import DenseEncoder, SparseEncoder
from indexes.base import Index, SearchResult

RETRIEVER_FILE = "retriever.json"


class Retriever(ABC):
    """Base class: ``encode_*`` turns texts into the index's input, ``search`` ranks documents.

    Subclasses hold their index as ``self.index`` (an object with ``add``, ``search``,
    ``delete``, ``save`` and ``len``); :meth:`_live_index` may create it on first use.
    """

    kind: ClassVar[str]
    index: Index | None
    script_bound: ClassVar[bool] = False
    """Matches surface forms, so only finds documents in the query's script (BM25, SPLADE): such a
    retriever keeps :class:`~hybrid.engine.evidence.CollectionStats` of its documents."""
    stats: CollectionStats | VectorSample | None = None
    """What the retriever keeps about its documents beyond the index: script-bound retrievers
    their :class:`CollectionStats`, dense ones a :class:`VectorSample` (saved as
    ``collection_stats.npz`` beside the index, restored when a write is undone)."""

    @abstractmethod
    def encode_documents(self, texts: list[str]) -> Any: ...

    @abstractmethod
    def encode_queries(self, texts: list[str]) -> Any: ...

    def _live_index(self) -> Index:
        """The index, created here by subclasses that can only build it once data arrives."""
        return self.index

    def add_encoded(self, encoded: Any) -> np.ndarray:
        """Index encoded documents; returns their internal ids."""
        return self._live_index().add(encoded)

    def search_encoded(
        self, encoded: Any, k: int, allowed: np.ndarray | None = None
    ) -> SearchResult:
        """Top-``k`` documents for already encoded queries; ``allowed`` (a bool mask over
        internal ids) restricts the search to the documents it marks."""
        if allowed is None:
            return self._live_index().search(encoded, k)
        return self._live_index().search(encoded, k, allowed=allowed)

    def delete(self, ids: np.ndarray) -> None:
        self._live_index().delete(ids)
        if self.stats is not None:
            self.stats.delete(ids)

    def observe_documents(self, texts: Sequence[str], ids: np.ndarray) -> None:
        """Describe just-indexed documents (their internal ``ids``) in :attr:`stats`, the
        collection statistics behind :func:`hybrid.engine.evidence.stratum_reach`. A no-op for
        retrievers that are not :attr:`script_bound`. Statistics that would not line up with
        the index (documents indexed without them, e.g. a retriever saved before they existed)
        are dropped, and evidence is then taken from the query alone, as before."""
        if not self.script_bound or len(texts) == 0:
            return
        first = int(np.asarray(ids).ravel()[0])
        if self.stats is None and first == 0:
            self.stats = CollectionStats()
        if self.stats is None or first != self.stats.n_rows:
            self.stats = None
            return
        self.stats.add(texts, self._intact_chars())

    def _intact_chars(self):
        """Which characters the retriever reads intact (None: every character)."""
        return None

    def collection_stats(self) -> CollectionStats | None:
        """:attr:`stats` when it describes every live document of the index, else None."""
        if self.stats is None or len(self.stats) != len(self):
            return None
        return self.stats

    def __len__(self) -> int:
        return 0 if self.index is None else len(self.index)

    @abstractmethod
    def _settings(self) -> dict[str, Any]:
        """JSON-able description of the encoder/analyzer, saved beside the index."""

    def settings(self) -> dict[str, Any]:
        """What this retriever's encodings and rankings depend on (JSON-able): the encoder's or
        analyzer's description, as saved beside the index."""
        return self._settings()

    @abstractmethod
    def _save_index(self, path: Path) -> None: ...

    @classmethod
    @abstractmethod
    def _load(
        cls, settings: dict[str, Any], path: Path, encoder: Any | None, index: Any | None = None
    ) -> Retriever: ...

    def add(self, texts: list[str]) -> np.ndarray:
        """Encode and index documents."""
        ids = self.add_encoded(self.encode_documents(texts))
        self.observe_documents(texts, ids)
        return ids

    def search(self, queries: list[str], k: int) -> SearchResult:
        """Encode queries and return their top-``k`` documents."""
        return self.search_encoded(self.encode_queries(queries), k)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._save_index(path / "index")
        if self.stats is not None:
            self.stats.save(path / STATS_FILE)
        settings = {"type": self.kind, **self._settings()}
        (path / RETRIEVER_FILE).write_text(json.dumps(settings, indent=2, ensure_ascii=False))

    @staticmethod
    def load(path: str | Path, encoder: Any | None = None, index: Index | None = None) -> Retriever:
        """Open a saved retriever; ``encoder`` replaces the saved encoder (needed for callables),
        ``index`` an index already opened (e.g. a Qdrant view) instead of ``<path>/index``.

        A saved SPLADE or dense encoder is not loaded here: the retriever holds a
        :class:`~hybrid.encoders.lazy.LazyEncoder` that builds it on first use."""
        path = Path(path)
        spec_file = path / RETRIEVER_FILE
        if not spec_file.is_file():
            from indexes import IndexFormatError

            raise IndexFormatError(f"{path} is not a saved retriever: no {RETRIEVER_FILE}")
        try:
            settings = json.loads(spec_file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            from indexes import IndexCorruptedError

            raise IndexCorruptedError(f"{spec_file} is not valid JSON: {exc}") from exc
        if not isinstance(settings, dict):
            from indexes import IndexCorruptedError

            raise IndexCorruptedError(f"{spec_file} does not hold a JSON object")
        kinds = {cls.kind: cls for cls in (SpladeRetriever, DenseRetriever, BM25Retriever)}
        if settings.get("type") not in kinds:
            raise ValueError(f"{spec_file}: unknown retriever type {settings.get('type')!r}")
        retriever = kinds[settings["type"]]._load(settings, path, encoder, index)
        if (path / STATS_FILE).is_file():
            retriever.stats = retriever._load_stats(path / STATS_FILE)
        return retriever

    def _load_stats(self, path: Path) -> Any:
        """The statistics saved at ``path`` (script-bound retrievers: their
        :class:`CollectionStats`; others keep none)."""
        return CollectionStats.load(path) if self.script_bound else None

    def explain_terms(self, encoded_query: Any, doc_id: int, top: int | None) -> list[Any]:
        """Token- or term-level contributions of one document to one query (default: none)."""
        return []

    def describe_evidence(self, value: float) -> str:
        """One query's evidence in words, for explanations."""
        return "no evidence measure, always 1"

    def evidence(self, queries: Sequence[str], encoded: Any) -> np.ndarray:
        """How much signal this retriever can carry for each query: ``(n_queries,)`` in [0, 1].

        ``queries`` are the texts, ``encoded`` what :meth:`encode_queries` returned for them.
        The ``"adaptive"`` fusion multiplies each retriever's weight by it, per query. The
        default (dense retrievers, custom ones) is 1.0: no cheap measure of a failure to read
        the query. It must be cheap (microseconds per query): it runs on every search.
        """
        return np.ones(len(queries))


class SpladeRetriever(Retriever):
    """SPLADE encoder + exact sparse inverted index."""

    kind = "splade"
    script_bound = True

    def __init__(self, encoder: SparseEncoder, index: Index | None = None) -> None:
        from indexes import SparseIndex

        self.encoder = encoder
        self.index = index if index is not None else SparseIndex(dim=encoder.dim)
        self._known_chars: dict[str, bool] = {}  # token_coverage's per-character cache

    def encode_documents(self, texts: list[str]):
        return self.encoder.encode_documents(texts)

    def encode_queries(self, texts: list[str]):
        return self.encoder.encode_queries(texts)

    def describe_evidence(self, value: float) -> str:
        return f"{value:.0%} of the query's characters are whole tokens of its vocabulary"

    def evidence(self, queries: Sequence[str], encoded: Any) -> np.ndarray:
        """:func:`token_coverage` of the queries under the model's tokenizer (1.0 when the
        encoder has no tokenizer to measure it with). Characters are cached per retriever."""
        tokenizer = getattr(self.encoder, "tokenizer", None)
        if tokenizer is None:
            return np.ones(len(queries))
        return token_coverage(tokenizer, queries, self._known_chars)

    def _intact_chars(self):
        tokenizer = getattr(self.encoder, "tokenizer", None)
        if tokenizer is None:
            return None
        return partial(known_characters, tokenizer, known=self._known_chars)

    def explain_terms(self, encoded_query, doc_id: int, top: int | None) -> list[Any]:
        from hybrid.engine.results import TokenContribution

        query = encoded_query.tocsr()
        doc = self.index.doc_vectors(np.array([doc_id])).tocsr()
        shared, q_pos, d_pos = np.intersect1d(
            query.indices, doc.indices, assume_unique=True, return_indices=True
        )
        q_w = query.data[q_pos].astype(np.float64)
        d_w = doc.data[d_pos].astype(np.float64)
        products = q_w * d_w
        order = np.lexsort((shared, -products))
        if top is not None:
            order = order[:top]
        tokens = self.encoder.decode(shared[order])
        return [
            TokenContribution(tok, int(shared[i]), float(q_w[i]), float(d_w[i]), float(products[i]))
            for tok, i in zip(tokens, order, strict=True)
        ]

    def _settings(self) -> dict[str, Any]:
        return {"encoder": self.encoder.spec}

    def _save_index(self, path: Path) -> None:
        self.index.save(path)

    @classmethod
    def _load(cls, settings, path, encoder, index=None):
        from indexes import SparseIndex

        if encoder is None:  # built from its spec on first use: opening loads no model
            encoder = LazyEncoder(settings["encoder"], _splade_from_spec)
        return cls(encoder, index if index is not None else SparseIndex.load(path / "index"))


class DenseRetriever(Retriever):
    """Dense encoder (sentence-transformers or any callable) + FAISS index."""

    kind = "dense"

    def __init__(
        self, encoder: DenseEncoder, index: Index | None = None, factory: str = "Flat"
    ) -> None:
        self.encoder = encoder
        self.factory = factory
        self.index = index

    def _live_index(self) -> Index:
        if self.index is None:
            from indexes import DenseIndex

            self.index = DenseIndex(
                self.encoder.dim,
                metric=self.encoder.metric,
                factory=self.factory,
                model_name=self.encoder.name,
            )
        return self.index

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode_documents(texts)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode_queries(texts)

    def add_encoded(self, encoded: Any) -> np.ndarray:
        """Index document vectors, and offer them to :attr:`stats`, a
        :class:`~hybrid.engine.sample.VectorSample` of the collection (dropped when it would
        not line up with the index: vectors indexed without it, e.g. an older saved index)."""
        ids = np.asarray(super().add_encoded(encoded))
        if ids.size:
            vectors = self._as_searched(encoded)
            if self.stats is None and int(ids[0]) == 0:
                self.stats = VectorSample(vectors.shape[1])
            if self.stats is not None and int(ids[0]) == self.stats.n_rows:
                self.stats.add(ids, vectors)
            else:
                self.stats = None
        return ids

    def _as_searched(self, vectors: Any) -> np.ndarray:
        """Vectors as the index compares them (unit length under the cosine metric)."""
        x = np.asarray(vectors, dtype=np.float32)
        x = x.reshape(1, -1) if x.ndim == 1 else x
        if getattr(self.index, "metric", "ip") == "cosine":
            norms = np.linalg.norm(x, axis=1, keepdims=True)
            x = x / np.where(norms > 0, norms, 1.0)
        return x

    def _load_stats(self, path: Path) -> Any:
        return VectorSample.load(path)

    def collection_stats(self) -> None:
        """Dense retrievers read every script: no collection statistics of scripts."""
        return None

    def vector_sample(self) -> VectorSample | None:
        """:attr:`stats` when it samples every document indexed so far, else None."""
        sample = self.stats
        n_ids = getattr(self.index, "next_id", None)
        if sample is None or (n_ids is not None and sample.n_rows != n_ids):
            return None
        return sample

    def script_baselines(self, encoded: Any, stats: CollectionStats) -> np.ndarray | None:
        """``(n_queries, n_scripts + 1)``: each query's mean similarity to the documents of
        each script of ``stats`` (column ``code + 1``; column 0: documents without letters),
        estimated from :meth:`vector_sample`; None without a sample."""
        sample = self.vector_sample()
        if sample is None or len(sample) == 0:
            return None
        centroids = sample.centroids(stats.doc_script, len(stats.scripts))
        return self._as_searched(encoded).astype(np.float64) @ centroids.T

    def _settings(self) -> dict[str, Any]:
        return {"encoder": self.encoder.spec, "factory": self.factory}

    def _save_index(self, path: Path) -> None:
        self._live_index().save(path)

    @classmethod
    def _load(cls, settings, path, encoder, index=None):
        from indexes import DenseIndex

        if encoder is None:  # built from its spec on first use: opening loads no model
            encoder = _dense_encoder_or_lazy(settings["encoder"])
        index = index if index is not None else DenseIndex.load(path / "index")
        return cls(encoder, index, factory=settings.get("factory", "Flat"))


def _splade_from_spec(spec: dict[str, Any]) -> Any:
    from hybrid.encoders.splade import splade_encoder_from_spec

    return splade_encoder_from_spec(spec)


def _dense_from_spec(spec: dict[str, Any]) -> Any:
    from hybrid.encoders.dense import dense_encoder_from_spec

    return dense_encoder_from_spec(spec)


def _dense_encoder_or_lazy(spec: dict[str, Any]) -> Any:
    """A lazy dense encoder; a callable-built one cannot be rebuilt, which is said at once."""
    if isinstance(spec, dict) and spec.get("type") == "callable":
        return _dense_from_spec(spec)  # raises: pass the encoder object when loading
    return LazyEncoder(spec, _dense_from_spec)


class BM25Retriever(Retriever):
    """Text analyzer (Korean-aware by default) + BM25 index."""

    kind = "bm25"
    script_bound = True

    def __init__(self, analyzer: Any = "multilingual", index: Index | None = None) -> None:
        from hybrid.encoders.analyzers import get_analyzer
        from indexes import BM25Index

        self.analyzer = get_analyzer(analyzer)
        self.index = index if index is not None else BM25Index()

    def encode_documents(self, texts: list[str]) -> list[list[str]]:
        return self.analyzer.analyze_batch(texts)

    def encode_queries(self, texts: list[str]) -> list[list[str]]:
        return self.analyzer.analyze_batch(texts, progress=False)

    def describe_evidence(self, value: float) -> str:
        return f"{value:.0%} of the query's terms occur in the index"

    def evidence(self, queries: Sequence[str], encoded: list[list[str]]) -> np.ndarray:
        """Share of each query's analysed terms that occur in the indexed documents (0 for a
        query with no terms): a query in another language than the documents matches only
        numbers and names, so BM25 has little to say about it. 1.0 for indexes that do not
        expose their vocabulary (e.g. the Qdrant view)."""
        known = getattr(self.index, "vocabulary", None)
        if known is None:
            return np.ones(len(encoded))
        has = known.__contains__
        return np.array([sum(map(has, terms)) / len(terms) if terms else 0.0 for terms in encoded])

    def explain_terms(self, encoded_query, doc_id: int, top: int | None) -> list[Any]:
        from hybrid.engine.results import TermContribution

        terms = self.index.explain(encoded_query, int(doc_id))
        if top is not None:
            terms = terms[:top]
        return [TermContribution(t, float(c)) for t, c in terms]

    def _settings(self) -> dict[str, Any]:
        return {"analyzer": self.analyzer.config}

    def _save_index(self, path: Path) -> None:
        self.index.save(path, extra={"analyzer": self.analyzer.config})

    @classmethod
    def _load(cls, settings, path, encoder, index=None):
        from hybrid.encoders.analyzers import analyzer_from_config
        from indexes import BM25Index

        analyzer = encoder if encoder is not None else analyzer_from_config(settings["analyzer"])
        return cls(analyzer, index if index is not None else BM25Index.load(path / "index"))
