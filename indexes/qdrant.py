"""Qdrant-backed indexes: one collection, three named vectors, the local index interface.

A :class:`QdrantStore` is a client plus a collection name. Thin *views* over it expose exactly
the methods of the local indexes, so the engine's retrievers take them as their ``index``:

- :class:`QdrantSparseIndex` (like ``SparseIndex``): SPLADE vectors as a Qdrant sparse vector
  (default name ``"splade"``), dot-product scores, ``doc_vectors`` for explanations.
- :class:`QdrantDenseIndex` (like ``DenseIndex``): a dense named vector (``"dense"``), metric
  ``"ip"`` (Qdrant ``Dot``) or ``"cosine"`` (Qdrant ``Cosine``).
- :class:`QdrantBM25Index` (like ``BM25Index``): BM25 as a sparse vector (``"bm25"``) with
  Qdrant's IDF modifier. Tokens come from *our* analyzer (Korean morphemes included); each
  token maps to a stable 32-bit term id (``term_id``), so any client with the same analyzer
  can query the collection without a shared vocabulary file.

Point ids are the engine's internal integer ids (consecutive from 0, as the local indexes
assign them), so every view of one store agrees with the engine's document store. Each view
writes only its own named vector: the first view to write a point creates it (``upsert``),
the others add their vector to it (``update_vectors``). ``delete`` removes the view's vector;
a point left without vectors is deleted. Payloads (document id, text, metadata) are written
by :meth:`QdrantStore.set_payloads` (the engine glue in ``hybrid.qdrant`` does it).

BM25 through Qdrant. Qdrant computes, per query term, ``idf = ln(1 + (N - df + 0.5) /
(df + 0.5))`` over the points that hold the ``bm25`` vector, multiplies it by the query value
(the term's count in the query) and by the stored document value. We store, per document term,
Lucene's length-normalised term frequency ``tf / (tf + k1 (1 - b + b dl / avgdl))`` (k1=1.2,
b=0.75), so the score has the form of ``BM25Index(variant="lucene")``. It differs where Qdrant
cannot know what a local index recomputes: ``avgdl`` is the running mean document length *at
write time* (documents written earlier keep their normalisation; the local index recomputes
it for all documents after every write), and on a Qdrant server IDF statistics are counted
per shard, and deleted points may count until segments are optimised (local mode counts live
points only). On a collection written in one batch, scores equal local Lucene BM25 up to float
rounding. Term ids are 32-bit hashes: two distinct terms collide with probability about
``V**2 / 2**33`` for a vocabulary of V terms (about one pair at V = 100k); a collision merges
their statistics, never drops a document.

Saving a view writes only the connection settings (path or url, collection, vector name and
parameters) and a format version with ``write_meta``; the data lives in Qdrant. ``api_key`` is
never written: :meth:`QdrantStore.from_settings` reads it from ``QDRANT_API_KEY``.

``qdrant-client`` is an optional dependency: ``pip install 'splade-hybrid[qdrant]'``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from indexes._base import (
    PAD_ID,
    PAD_SCORE,
    IndexFormatError,
    SearchResult,
    check_k,
    empty_result,
    read_meta,
    write_meta,
)
from indexes._validate import unique_ids

FORMAT_VERSION = 1
KIND_SPARSE = "QdrantSparseIndex"
KIND_DENSE = "QdrantDenseIndex"
KIND_BM25 = "QdrantBM25Index"
KINDS = (KIND_SPARSE, KIND_DENSE, KIND_BM25)
WRITE_BATCH = 256
"""Points per upsert / update request."""
_METRICS = {"ip": "Dot", "cosine": "Cosine"}

# Embedded local mode (path=...) locks its folder: every store on one path must share one client.
_CLIENTS: weakref.WeakValueDictionary[tuple[str, str], Any] = weakref.WeakValueDictionary()
_CLIENTS_LOCK = threading.Lock()


def _qdrant() -> Any:
    try:
        import qdrant_client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the Qdrant backend needs qdrant-client: pip install 'splade-hybrid[qdrant]'"
        ) from exc
    return qdrant_client


def _serialised(method):
    """Run a store method under its client's I/O lock (embedded mode is not thread-safe)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._io:
            return method(self, *args, **kwargs)

    return wrapper


def term_id(token: str) -> int:
    """Stable 32-bit id of a BM25 term (first 4 bytes of its BLAKE2b digest, big-endian)."""
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest(), "big")


def _is_embedded(client: Any) -> bool:
    """Whether a QdrantClient runs in embedded local mode (no server)."""
    try:
        from qdrant_client.local.qdrant_local import QdrantLocal
    except ImportError:  # pragma: no cover - layout of other client versions
        return False
    return isinstance(getattr(client, "_client", None), QdrantLocal)


def _sparse_query(models: Any, indices: np.ndarray, values: np.ndarray) -> Any:
    return models.SparseVector(indices=indices.tolist(), values=values.tolist())


# ---------------------------------------------------------------------------------------- store


class QdrantStore:
    """A Qdrant collection holding one point per document, with named vectors per retriever.

    Connect with exactly one of ``path`` (embedded local mode, a folder), ``location``
    (``":memory:"``, embedded, not persisted), ``url`` (a server or cluster, e.g.
    ``"http://qdrant:6333"``; ``api_key`` or the ``QDRANT_API_KEY`` environment variable) or an
    existing ``client``. The collection is created on first use with every vector the views
    declared; a vector declared later is added to an existing collection (``create_vector_name``,
    which needs a recent Qdrant: with an older server, create every view before the first write).
    ``client_options`` go to ``QdrantClient`` (e.g. ``prefer_grpc=True``, ``timeout=60``).
    """

    def __init__(
        self,
        collection: str = "hybrid",
        *,
        path: str | Path | None = None,
        location: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: Any | None = None,
        **client_options: Any,
    ) -> None:
        given = [n for n, v in (("path", path), ("location", location), ("url", url),
                                ("client", client)) if v is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of path= (embedded local mode), location=':memory:', url= "
                f"(server or cluster) or client=; got {given or 'none'}"
            )
        if not isinstance(collection, str) or not collection:
            raise ValueError(f"collection must be a non-empty string, got {collection!r}")
        self.collection = collection
        self.path = str(Path(path).resolve()) if path is not None else None
        self.location = location
        self.url = url
        self.client_options = dict(client_options)
        if client is not None:
            self.client = client
        else:
            self.client = self._connect(api_key)
        self._io: Any = contextlib.nullcontext()
        if (self.url is None and client is None) or _is_embedded(self.client):
            # the engine searches its retrievers from several threads; an embedded client
            # (pure Python, SQLite-backed with path=) must see one call at a time
            lock = getattr(self.client, "_hybrid_io_lock", None)
            if lock is None:
                lock = threading.RLock()
                self.client._hybrid_io_lock = lock
            self._io = lock
        self._vectors: dict[str, dict[str, Any]] = {}
        self._ready: set[str] = set()
        self._lock = threading.Lock()
        self._avg_len: dict[str, tuple[int, int]] = {}  # bm25 vector -> (docs, tokens) written

    def _connect(self, api_key: str | None) -> Any:
        qc = _qdrant()
        if self.url is not None:
            key = api_key if api_key is not None else os.environ.get("QDRANT_API_KEY")
            return qc.QdrantClient(url=self.url, api_key=key, **self.client_options)
        target = ("path", self.path) if self.path is not None else ("location", self.location)
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(target)
            if client is None:
                kwargs = {target[0]: target[1]}
                client = qc.QdrantClient(**kwargs, **self.client_options)
                _CLIENTS[target] = client
        return client

    @property
    def settings(self) -> dict[str, Any]:
        """JSON-able connection settings (never the API key)."""
        if self.path is None and self.location is None and self.url is None:
            raise ValueError(
                "this QdrantStore was built from a client object, whose connection cannot be "
                "saved; build it with path=, location= or url= to save indexes that use it"
            )
        return {
            "collection": self.collection,
            "path": self.path,
            "location": self.location,
            "url": self.url,
            "client_options": self.client_options,
        }

    @classmethod
    def from_settings(cls, settings: dict[str, Any], **overrides: Any) -> QdrantStore:
        """Reconnect from :attr:`settings`; ``overrides`` replace fields (e.g. ``url=``)."""
        s = {**settings, **overrides}
        targets = {k: s.get(k) for k in ("path", "location", "url", "client")}
        if "client" in overrides or any(k in overrides for k in ("path", "location", "url")):
            # an override names the target: drop the saved one
            targets = {k: overrides.get(k) for k in targets}
        return cls(
            s["collection"],
            **{k: v for k, v in targets.items() if v is not None},
            api_key=s.get("api_key"),
            **dict(s.get("client_options") or {}),
        )

    def __repr__(self) -> str:
        where = self.url or self.path or self.location or "client"
        return f"QdrantStore({self.collection!r} at {where})"

    # -- schema ----------------------------------------------------------------------------------

    def declare(self, name: str, kind: str, **params: Any) -> None:
        """Declare named vector ``name`` (``kind``: "sparse", "bm25" or "dense" with dim/metric)."""
        spec = {"kind": kind, **params}
        old = self._vectors.get(name)
        if old is not None and old != spec:
            raise ValueError(f"vector {name!r} already declared as {old}, not {spec}")
        self._vectors[name] = spec
        self._ready.discard(name)

    def _vector_params(self, spec: dict[str, Any]) -> Any:
        models = _qdrant().models
        if spec["kind"] == "dense":
            distance = getattr(models.Distance, _METRICS[spec["metric"]].upper())
            return models.VectorParams(size=int(spec["dim"]), distance=distance)
        modifier = models.Modifier.IDF if spec["kind"] == "bm25" else None
        return models.SparseVectorParams(modifier=modifier)

    @_serialised
    def ensure(self, name: str) -> None:
        """Create the collection (or add vector ``name`` to it) if needed; check its config."""
        if name in self._ready:
            return
        with self._lock:
            if name in self._ready:
                return
            models = _qdrant().models
            client = self.client
            if not client.collection_exists(self.collection):
                dense = {n: self._vector_params(s) for n, s in self._vectors.items()
                         if s["kind"] == "dense"}
                sparse = {n: self._vector_params(s) for n, s in self._vectors.items()
                          if s["kind"] != "dense"}
                client.create_collection(
                    self.collection, vectors_config=dense, sparse_vectors_config=sparse
                )
                self._ready.update(self._vectors)
                return
            info = client.get_collection(self.collection).config.params
            dense_cfg = info.vectors if isinstance(info.vectors, dict) else {}
            sparse_cfg = info.sparse_vectors or {}
            spec = self._vectors[name]
            if spec["kind"] == "dense":
                have = dense_cfg.get(name)
                if have is None:
                    client.create_vector_name(
                        self.collection, name,
                        models.DenseVectorNameConfig(dense=models.DenseVectorConfig(
                            size=int(spec["dim"]),
                            distance=self._vector_params(spec).distance,
                        )),
                    )
                else:
                    want = self._vector_params(spec)
                    if have.size != want.size or have.distance != want.distance:
                        raise ValueError(
                            f"collection {self.collection!r} holds vector {name!r} as "
                            f"{have.size}-d {have.distance}, not {want.size}-d {want.distance}"
                        )
            else:
                have = sparse_cfg.get(name)
                if have is None:
                    client.create_vector_name(
                        self.collection, name,
                        models.SparseVectorNameConfig(sparse=models.SparseVectorConfig(
                            modifier=self._vector_params(spec).modifier,
                        )),
                    )
                else:
                    idf = have.modifier == models.Modifier.IDF
                    if idf != (spec["kind"] == "bm25"):
                        raise ValueError(
                            f"collection {self.collection!r} holds sparse vector {name!r} "
                            f"{'with' if idf else 'without'} the IDF modifier; "
                            f"{spec['kind']} needs the opposite"
                        )
            self._ready.add(name)

    # -- points ----------------------------------------------------------------------------------

    @_serialised
    def existing(self, ids: np.ndarray, vector: str | None = None) -> np.ndarray:
        """Boolean mask: which ``ids`` are points (holding ``vector`` when given)."""
        if ids.size == 0 or not self.client.collection_exists(self.collection):
            return np.zeros(ids.shape, dtype=bool)
        found: set[int] = set()
        for lo in range(0, ids.size, 1024):
            chunk = ids[lo: lo + 1024].tolist()
            records = self.client.retrieve(
                self.collection, chunk, with_payload=False,
                with_vectors=[vector] if vector is not None else False,
            )
            for r in records:
                if vector is None or (isinstance(r.vector, dict) and vector in r.vector):
                    found.add(int(r.id))
        return np.fromiter((int(i) in found for i in ids), dtype=bool, count=ids.size)

    @_serialised
    def write_vectors(self, name: str, ids: np.ndarray, vectors: list[Any]) -> None:
        """Write named vector ``name`` of points ``ids``, keeping their other vectors."""
        self.ensure(name)
        models = _qdrant().models
        exists = self.existing(ids)
        for lo in range(0, ids.size, WRITE_BATCH):
            sl = slice(lo, lo + WRITE_BATCH)
            new = [models.PointStruct(id=int(i), vector={name: v}, payload={})
                   for i, v, e in zip(ids[sl], vectors[sl], exists[sl], strict=True) if not e]
            old = [models.PointVectors(id=int(i), vector={name: v})
                   for i, v, e in zip(ids[sl], vectors[sl], exists[sl], strict=True) if e]
            if new:
                self.client.upsert(self.collection, points=new, wait=True)
            if old:
                self.client.update_vectors(self.collection, points=old, wait=True)

    @_serialised
    def delete_vectors(self, name: str, ids: np.ndarray) -> None:
        """Remove vector ``name`` from points ``ids``; points left without vectors are deleted."""
        models = _qdrant().models
        sel = models.PointIdsList(points=ids.tolist())
        self.client.delete_vectors(self.collection, vectors=[name], points=sel, wait=True)
        empty = [int(r.id) for lo in range(0, ids.size, 1024)
                 for r in self.client.retrieve(self.collection, ids[lo: lo + 1024].tolist(),
                                               with_payload=False, with_vectors=True)
                 if not r.vector]
        if empty:
            self.client.delete(self.collection, points_selector=models.PointIdsList(points=empty),
                               wait=True)

    @_serialised
    def set_payloads(self, ids: Sequence[int], payloads: Sequence[dict[str, Any]]) -> None:
        """Set each point's payload (merged into what it has), e.g. doc id, text, metadata."""
        if len(ids) != len(payloads):
            raise ValueError(f"{len(ids)} ids but {len(payloads)} payloads")
        if not len(ids):
            return
        models = _qdrant().models
        exists = self.existing(np.asarray(ids, dtype=np.int64))
        missing = [int(i) for i, e in zip(ids, exists, strict=True) if not e]
        if missing:
            raise KeyError(f"no points with ids {missing[:10]} (write a vector first)")
        for lo in range(0, len(ids), WRITE_BATCH):
            ops = [
                models.SetPayloadOperation(
                    set_payload=models.SetPayload(payload=p, points=[int(i)])
                )
                for i, p in zip(ids[lo: lo + WRITE_BATCH], payloads[lo: lo + WRITE_BATCH],
                                strict=True)
            ]
            self.client.batch_update_points(self.collection, update_operations=ops, wait=True)

    @_serialised
    def payloads(self, ids: Sequence[int]) -> list[dict[str, Any] | None]:
        """Payloads of points ``ids`` (``None`` for a missing point), in order."""
        if not len(ids):
            return []
        records = self.client.retrieve(self.collection, [int(i) for i in ids], with_payload=True)
        by_id = {int(r.id): r.payload for r in records}
        return [by_id.get(int(i)) for i in ids]

    @_serialised
    def count(self) -> int:
        """Points in the collection (0 when it does not exist yet)."""
        if not self.client.collection_exists(self.collection):
            return 0
        return int(self.client.count(self.collection, exact=True).count)

    @_serialised
    def drop(self) -> None:
        """Delete the whole collection."""
        if self.client.collection_exists(self.collection):
            self.client.delete_collection(self.collection)
        self._ready.clear()

    @_serialised
    def retrieve(self, ids: Sequence[int], vector: str) -> dict[int, Any]:
        """Named vector ``vector`` of points ``ids`` (id -> vector; absent ones left out)."""
        records = self.client.retrieve(self.collection, [int(i) for i in ids],
                                       with_payload=False, with_vectors=[vector])
        return {int(r.id): (r.vector or {}).get(vector) for r in records
                if (r.vector or {}).get(vector) is not None}

    @_serialised
    def query(self, requests: list[Any]) -> list[Any]:
        """Run ``QueryRequest``s in one batch call; returns their point lists."""
        if not requests:
            return []
        out = self.client.query_batch_points(self.collection, requests=requests)
        return [r.points for r in out]


def _to_result(point_lists: list[list[Any]], rows: list[int], n_q: int, k: int) -> SearchResult:
    ids = np.full((n_q, k), PAD_ID, dtype=np.int64)
    scores = np.full((n_q, k), PAD_SCORE, dtype=np.float32)
    for row, points in zip(rows, point_lists, strict=True):
        n = min(len(points), k)
        if n:
            ids[row, :n] = [int(p.id) for p in points[:n]]
            scores[row, :n] = [p.score for p in points[:n]]
    return SearchResult(ids, scores)


# ---------------------------------------------------------------------------------------- views


class _QdrantView:
    """Common part of the views: id assignment, deletes, length, save/load of settings."""

    kind: str = ""

    def __init__(self, store: QdrantStore, vector: str) -> None:
        if not isinstance(store, QdrantStore):
            raise TypeError(f"store must be a QdrantStore, got {type(store).__name__}")
        if not isinstance(vector, str) or not vector:
            raise ValueError(f"vector must be a non-empty name, got {vector!r}")
        self.store = store
        self.vector = vector
        self._next_id = 0
        self._n_live = 0

    def __len__(self) -> int:
        return self._n_live

    @property
    def next_id(self) -> int:
        return self._next_id

    def _assign(self, n: int) -> np.ndarray:
        return np.arange(self._next_id, self._next_id + n, dtype=np.int64)

    def _commit(self, n: int) -> None:
        self._next_id += n
        self._n_live += n

    def delete(self, ids: Iterable[int]) -> int:
        """Remove documents by id; ``KeyError`` (nothing removed) if any is not live here."""
        arr = unique_ids(ids)  # exact integers, each once (issue #18)
        if arr.size == 0:
            return 0
        has = self.store.existing(arr, self.vector) & (arr >= 0) & (arr < self._next_id)
        if not has.all():
            raise KeyError(f"not live document ids: {arr[~has][:10].tolist()}")
        self.store.delete_vectors(self.vector, arr)
        self._n_live -= int(arr.size)
        return int(arr.size)

    def _params(self) -> dict[str, Any]:
        return {}

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write the connection settings and counters (not the data, which lives in Qdrant)."""
        return write_meta(
            path, self.kind, FORMAT_VERSION, store=self.store.settings, vector=self.vector,
            next_id=self._next_id, n_live=self._n_live, extra=extra, **self._params(),
        )

    @classmethod
    def load(cls, path: str | Path, store: QdrantStore | None = None, **store_overrides: Any):
        """Reconnect a saved view; ``store`` (or e.g. ``url=``) replaces the saved connection."""
        meta = read_meta(path, cls.kind, FORMAT_VERSION)
        if store is None:
            store = QdrantStore.from_settings(meta["store"], **store_overrides)
        view = cls._from_meta(store, meta)
        view._next_id = int(meta["next_id"])
        view._n_live = int(meta["n_live"])
        view.extra = meta.get("extra")
        return view

    @classmethod
    def _from_meta(cls, store: QdrantStore, meta: dict[str, Any]):  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r}, vector={self.vector!r}, {len(self)} docs)"


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
                _sparse_query(models, m.indices[m.indptr[i]: m.indptr[i + 1]],
                              m.data[m.indptr[i]: m.indptr[i + 1]])
                for i in range(m.shape[0])
            ]
            self.store.write_vectors(self.vector, ids, vecs)
        self._commit(ids.size)
        return ids

    def search(self, queries: Any, k: int = 10) -> SearchResult:
        """Top-``k`` documents by dot product for each query row (CSR)."""
        k = check_k(k)
        q = self._csr(queries, "queries")
        n_q = q.shape[0]
        if n_q == 0 or self._n_live == 0:
            return empty_result(n_q, k)
        self.store.ensure(self.vector)
        requests = self.query_requests(q, k)
        rows = [i for i, r in enumerate(requests) if r is not None]
        return _to_result(self.store.query([requests[i] for i in rows]), rows, n_q, k)

    def query_requests(self, queries: Any, limit: int) -> list[Any]:
        """One Qdrant ``QueryRequest`` per query row (None for an empty row); used as
        prefetches by server-side fusion."""
        q = self._csr(queries, "queries")
        models = _qdrant().models
        return [
            models.QueryRequest(
                query=_sparse_query(models, q.indices[q.indptr[i]: q.indptr[i + 1]],
                                    q.data[q.indptr[i]: q.indptr[i + 1]]),
                using=self.vector, limit=limit, with_payload=False,
            ) if q.indptr[i + 1] > q.indptr[i] else None
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
        return cls(store, meta["vector"], dim=int(meta["dim"]), metric=meta["metric"],
                   model_name=meta.get("model_name"))

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

    def search(self, queries: Any, k: int, model_name: str | None = None) -> SearchResult:
        """Top-``k`` ids and scores (higher is better) for each query row."""
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
        return _to_result(self.store.query(self.query_requests(q, k)), list(range(n_q)), n_q, k)

    def query_requests(self, queries: Any, limit: int) -> list[Any]:
        """One Qdrant ``QueryRequest`` per query vector; used as prefetches by server-side
        fusion."""
        models = _qdrant().models
        q = self._matrix(queries, "query vectors")
        return [models.QueryRequest(query=row, using=self.vector, limit=limit,
                                    with_payload=False) for row in q.tolist()]


class QdrantBM25Index(_QdrantView):
    """BM25 over our analyzer's tokens, scored by Qdrant (sparse vector + IDF modifier).

    Stored per document term: ``tf / (tf + k1 (1 - b + b dl / avgdl))`` with ``avgdl`` the
    running mean length of the documents written so far (this batch included); see the module
    docstring for how the scores compare with ``BM25Index(variant="lucene")``.
    """

    kind = KIND_BM25

    def __init__(
        self, store: QdrantStore, vector: str = "bm25", k1: float = 1.2, b: float = 0.75,
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
        return {"k1": self.k1, "b": self.b, "avgdl": self.fixed_avgdl,
                "docs_written": self._docs_written, "tokens_written": self._tokens_written}

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
        return models.QueryRequest(query=_sparse_query(models, idx, counts), using=self.vector,
                                   limit=k, with_payload=False, filter=flt)

    def search(self, token_lists: Sequence[Sequence[str]], k: int) -> SearchResult:
        """Top-k documents for each query (a token list): ids int64, scores float32, padded."""
        k = check_k(k)
        self._check(token_lists, "queries")
        n_q = len(token_lists)
        if n_q == 0 or self._n_live == 0:
            return empty_result(n_q, k)
        self.store.ensure(self.vector)
        rows = [i for i, t in enumerate(token_lists) if len(t)]
        requests = [self._request(token_lists[i], k) for i in rows]
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
