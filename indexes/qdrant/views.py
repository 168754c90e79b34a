"""The three views over a QdrantStore (sparse, dense, BM25) with the local indexes' interface."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from indexes.base import (
    IndexFormatError,
    SearchResult,
    check_k,
    empty_result,
)
from indexes.qdrant._view import _QdrantView, _to_result, _with_filter
from indexes.qdrant.connection import (
    _METRICS,
    KIND_BM25,
    KIND_DENSE,
    KIND_SPARSE,
    _qdrant,
    _sparse_query,
    term_id,
)
from indexes.qdrant.store import QdrantStore


class QdrantSparseIndex(_QdrantView):
    """SPLADE (or any learned-sparse) vectors in a Qdrant sparse named vector; dot product."""

    kind = KIND_SPARSE

    def __init__(self, store: QdrantStore, vector: str = "splade", dim: int = 30522) -> None:
        super().__init__(store, vector)
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        self.dim = int(dim)
        store.declare(vector, "sparse")

    def _params(self) -> dict[str, Any]:
        return {"dim": self.dim}

    @classmethod
    def _from_meta(cls, store, meta):
        return cls(store, meta["vector"], dim=int(meta["dim"]))

    def _csr(self, x: Any, what: str) -> sp.csr_matrix:
        m = sp.csr_matrix(x, dtype=np.float32)
        if m.ndim != 2 or m.shape[1] > self.dim:
            raise ValueError(f"{what} must have at most {self.dim} columns, got shape {m.shape}")
        if m.nnz and not np.isfinite(m.data).all():
            raise ValueError(f"{what} contain NaN or infinite weights")
        m.sum_duplicates()
        m.sort_indices()
        return m

    def add(self, docs: Any) -> np.ndarray:
        """Index the rows of a CSR matrix; returns their ids (consecutive, int64)."""
        m = self._csr(docs, "documents")
        ids = self._assign(m.shape[0])
        if ids.size:
            models = _qdrant().models
            vecs = [
                _sparse_query(
                    models,
                    m.indices[m.indptr[i] : m.indptr[i + 1]],
                    m.data[m.indptr[i] : m.indptr[i + 1]],
                )
                for i in range(m.shape[0])
            ]
            self.store.write_vectors(self.vector, ids, vecs)
        self._commit(ids.size)
        return ids

    def search(self, queries: Any, k: int = 10, allowed: Any = None) -> SearchResult:
        """Top-``k`` documents by dot product for each query row (CSR); ``allowed`` (a
        qdrant ``Filter`` or a bool mask over ids) restricts them."""
        k = check_k(k)
        q = self._csr(queries, "queries")
        n_q = q.shape[0]
        if n_q == 0 or self._n_live == 0:
            return empty_result(n_q, k)
        self.store.ensure(self.vector)
        requests = _with_filter(self.query_requests(q, k), allowed)
        rows = [i for i, r in enumerate(requests) if r is not None]
        return _to_result(self.store.query([requests[i] for i in rows]), rows, n_q, k)

    def query_requests(self, queries: Any, limit: int) -> list[Any]:
        """One Qdrant ``QueryRequest`` per query row (None for an empty row); used as
        prefetches by server-side fusion."""
        q = self._csr(queries, "queries")
        models = _qdrant().models
        return [
            models.QueryRequest(
                query=_sparse_query(
                    models,
                    q.indices[q.indptr[i] : q.indptr[i + 1]],
                    q.data[q.indptr[i] : q.indptr[i + 1]],
                ),
                using=self.vector,
                limit=limit,
                with_payload=False,
            )
            if q.indptr[i + 1] > q.indptr[i]
            else None
            for i in range(q.shape[0])
        ]

    def doc_vectors(self, ids: Any) -> sp.csr_matrix:
        """Stored vectors of documents ``ids`` as a CSR matrix (one row per id, in order)."""
        arr = np.asarray(ids, dtype=np.int64).ravel()
        by_id = self.store.retrieve(np.unique(arr).tolist(), self.vector)
        indptr, indices, data = [0], [], []
        for i in arr.tolist():
            v = by_id.get(i)
            if v is None:
                raise KeyError(f"{i} is not a live document id")
            indices.extend(v.indices)
            data.extend(v.values)
            indptr.append(len(indices))
        return sp.csr_matrix(
            (np.asarray(data, np.float32), np.asarray(indices, np.int32), np.asarray(indptr)),
            shape=(arr.size, self.dim),
        )


class QdrantDenseIndex(_QdrantView):
    """Dense vectors in a Qdrant named vector; metric ``"ip"`` (Dot) or ``"cosine"``."""

    kind = KIND_DENSE

    def __init__(
        self,
        store: QdrantStore,
        vector: str = "dense",
        dim: int | None = None,
        metric: str = "ip",
        model_name: str | None = None,
    ) -> None:
        super().__init__(store, vector)
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}")
        self.dim = int(dim)
        self.metric = metric
        self.model_name = model_name
        store.declare(vector, "dense", dim=self.dim, metric=metric)

    def _params(self) -> dict[str, Any]:
        return {"dim": self.dim, "metric": self.metric, "model_name": self.model_name}

    @classmethod
    def _from_meta(cls, store, meta):
        return cls(
            store,
            meta["vector"],
            dim=int(meta["dim"]),
            metric=meta["metric"],
            model_name=meta.get("model_name"),
        )

    def _matrix(self, x: Any, what: str) -> np.ndarray:
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ValueError(
                f"dimension mismatch: {what} have shape {arr.shape}, this index holds "
                f"{self.dim}-d vectors; encode with the same model"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} contain NaN or infinite values")
        return arr

    def add(self, vectors: Any) -> np.ndarray:
        """Add an (n, dim) array; returns the ids assigned (consecutive, int64)."""
        x = self._matrix(vectors, "vectors")
        ids = self._assign(x.shape[0])
        if ids.size:
            self.store.write_vectors(self.vector, ids, x.tolist())
        self._commit(ids.size)
        return ids

    def search(
        self, queries: Any, k: int, model_name: str | None = None, allowed: Any = None
    ) -> SearchResult:
        """Top-``k`` ids and scores (higher is better) for each query row; ``allowed`` (a
        qdrant ``Filter`` or a bool mask over ids) restricts them."""
        k = check_k(k)
        q = self._matrix(queries, "query vectors")
        if model_name and self.model_name and model_name != self.model_name:
            raise ValueError(
                f"query vectors come from model {model_name!r} but this index was built with "
                f"{self.model_name!r}"
            )
        n_q = q.shape[0]
        if n_q == 0 or self._n_live == 0:
            return empty_result(n_q, k)
        self.store.ensure(self.vector)
        requests = _with_filter(self.query_requests(q, k), allowed)
        return _to_result(self.store.query(requests), list(range(n_q)), n_q, k)

    def query_requests(self, queries: Any, limit: int) -> list[Any]:
        """One Qdrant ``QueryRequest`` per query vector; used as prefetches by server-side
        fusion."""
        models = _qdrant().models
        q = self._matrix(queries, "query vectors")
        return [
            models.QueryRequest(query=row, using=self.vector, limit=limit, with_payload=False)
            for row in q.tolist()
        ]


class QdrantBM25Index(_QdrantView):
    """BM25 over our analyzer's tokens, scored by Qdrant (sparse vector + IDF modifier).

    Stored per document term: ``tf / (tf + k1 (1 - b + b dl / avgdl))`` with ``avgdl`` the
    running mean length of the documents written so far (this batch included); see the module
    docstring for how the scores compare with ``BM25Index(variant="lucene")``.
    """

    kind = KIND_BM25

    def __init__(
        self,
        store: QdrantStore,
        vector: str = "bm25",
        k1: float = 1.2,
        b: float = 0.75,
        avgdl: float | None = None,
    ) -> None:
        super().__init__(store, vector)
        if k1 < 0 or not 0.0 <= b <= 1.0:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1 = float(k1)
        self.b = float(b)
        self.fixed_avgdl = None if avgdl is None else float(avgdl)
        self._docs_written = 0
        self._tokens_written = 0
        self.extra: dict[str, Any] | None = None
        store.declare(vector, "bm25")

    @property
    def variant(self) -> str:
        return "lucene"

    @property
    def params(self) -> dict[str, float]:
        return {"k1": self.k1, "b": self.b}

    def _params(self) -> dict[str, Any]:
        return {
            "k1": self.k1,
            "b": self.b,
            "avgdl": self.fixed_avgdl,
            "docs_written": self._docs_written,
            "tokens_written": self._tokens_written,
        }

    @classmethod
    def _from_meta(cls, store, meta):
        view = cls(store, meta["vector"], k1=meta["k1"], b=meta["b"], avgdl=meta.get("avgdl"))
        view._docs_written = int(meta.get("docs_written", 0))
        view._tokens_written = int(meta.get("tokens_written", 0))
        return view

    @staticmethod
    def _check(token_lists: Any, what: str) -> None:
        if isinstance(token_lists, str) or (
            len(token_lists) > 0 and isinstance(token_lists[0], str)
        ):
            raise TypeError(
                f"{what} must be a list of token lists (one list of strings per item), "
                "got a single string or a flat list of strings; wrap one item as [tokens]"
            )

    @staticmethod
    def _term_vector(tokens: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Distinct term ids (sorted) and their counts in ``tokens``."""
        counts: Counter[int] = Counter(term_id(t) for t in tokens)
        if not counts:
            return np.zeros(0, np.int64), np.zeros(0, np.float64)
        idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        val = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        order = np.argsort(idx)
        return idx[order], val[order]

    def avgdl(self) -> float:
        """Average document length used for the normalisation of the next write."""
        if self.fixed_avgdl is not None:
            return self.fixed_avgdl
        return self._tokens_written / self._docs_written if self._docs_written else 1.0

    def add(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """Index documents given as token lists; returns their ids (consecutive, int64)."""
        self._check(token_lists, "documents")
        ids = self._assign(len(token_lists))
        if not ids.size:
            return ids
        self._docs_written += len(token_lists)
        self._tokens_written += sum(len(t) for t in token_lists)
        avgdl = self.avgdl() or 1.0
        models = _qdrant().models
        vecs = []
        for tokens in token_lists:
            idx, tf = self._term_vector(tokens)
            norm = self.k1 * (1.0 - self.b + self.b * len(tokens) / avgdl)
            vecs.append(_sparse_query(models, idx, tf / (tf + norm)))
        self.store.write_vectors(self.vector, ids, vecs)
        self._commit(ids.size)
        return ids

    def query_requests(self, token_lists: Sequence[Sequence[str]], limit: int) -> list[Any]:
        """One Qdrant ``QueryRequest`` per query (None for an empty one); used as prefetches
        by server-side fusion."""
        self._check(token_lists, "queries")
        return [self._request(t, limit) if len(t) else None for t in token_lists]

    def _request(self, tokens: Sequence[str], k: int, doc_id: int | None = None) -> Any:
        models = _qdrant().models
        idx, counts = self._term_vector(tokens)
        flt = None
        if doc_id is not None:
            flt = models.Filter(must=[models.HasIdCondition(has_id=[int(doc_id)])])
        return models.QueryRequest(
            query=_sparse_query(models, idx, counts),
            using=self.vector,
            limit=k,
            with_payload=False,
            filter=flt,
        )

    def search(
        self, token_lists: Sequence[Sequence[str]], k: int, allowed: Any = None
    ) -> SearchResult:
        """Top-k documents for each query (a token list): ids int64, scores float32, padded;
        ``allowed`` (a qdrant ``Filter`` or a bool mask over ids) restricts them."""
        k = check_k(k)
        self._check(token_lists, "queries")
        n_q = len(token_lists)
        if n_q == 0 or self._n_live == 0:
            return empty_result(n_q, k)
        self.store.ensure(self.vector)
        rows = [i for i, t in enumerate(token_lists) if len(t)]
        requests = _with_filter([self._request(token_lists[i], k) for i in rows], allowed)
        return _to_result(self.store.query(requests), rows, n_q, k)

    def explain(self, query_tokens: Sequence[str], doc_id: int) -> list[tuple[str, float]]:
        """Per-term contributions (as Qdrant scores them) of one document, largest first."""
        if isinstance(query_tokens, str):
            raise TypeError("query_tokens must be a list of tokens, not a string")
        doc_id = int(doc_id)
        if not self.store.existing(np.array([doc_id]), self.vector)[0]:
            raise KeyError(f"{doc_id} is not a live document id")
        terms = list(Counter(query_tokens).items())
        if not terms:
            return []
        requests = [self._request([t] * c, 1, doc_id) for t, c in terms]
        out = []
        for (term, _), points in zip(terms, self.store.query(requests), strict=True):
            if points and points[0].score != 0.0:
                out.append((term, float(points[0].score)))
        out.sort(key=lambda tv: (-tv[1], tv[0]))
        return out


_VIEWS = {c.kind: c for c in (QdrantSparseIndex, QdrantDenseIndex, QdrantBM25Index)}


def is_qdrant_index(path: str | Path) -> bool:
    """Whether folder ``path`` holds a saved Qdrant view (as opposed to a local index)."""
    import json

    meta = Path(path) / "meta.json"
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("type") in _VIEWS
    except ValueError:
        return False


def load_qdrant_index(path: str | Path, store: QdrantStore | None = None, **overrides: Any):
    """Open whichever Qdrant view ``path`` holds (``IndexFormatError`` if none)."""
    import json

    meta_file = Path(path) / "meta.json"
    kind = None
    if meta_file.is_file():
        try:
            kind = json.loads(meta_file.read_text()).get("type")
        except ValueError:
            kind = None
    if kind not in _VIEWS:
        raise IndexFormatError(f"{path} is not a saved Qdrant index (type {kind!r})")
    return _VIEWS[kind].load(path, store=store, **overrides)


QdrantView = _QdrantView
"""The common base of the three views (public name: ``isinstance(index, QdrantView)``)."""
