"""QdrantStore: one collection, its schema (named vectors) and its points (vectors, payloads)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexes.qdrant.connection import (
    _CLIENTS,
    _CLIENTS_LOCK,
    _METRICS,
    WRITE_BATCH,
    _is_embedded,
    _qdrant,
    _serialised,
)


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
        given = [
            n
            for n, v in (("path", path), ("location", location), ("url", url), ("client", client))
            if v is not None
        ]
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
        self._payload_indexes: dict[str, str] = {}  # payload key -> index type made
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
                dense = {
                    n: self._vector_params(s)
                    for n, s in self._vectors.items()
                    if s["kind"] == "dense"
                }
                sparse = {
                    n: self._vector_params(s)
                    for n, s in self._vectors.items()
                    if s["kind"] != "dense"
                }
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
                        self.collection,
                        name,
                        models.DenseVectorNameConfig(
                            dense=models.DenseVectorConfig(
                                size=int(spec["dim"]),
                                distance=self._vector_params(spec).distance,
                            )
                        ),
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
                        self.collection,
                        name,
                        models.SparseVectorNameConfig(
                            sparse=models.SparseVectorConfig(
                                modifier=self._vector_params(spec).modifier,
                            )
                        ),
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
            chunk = ids[lo : lo + 1024].tolist()
            records = self.client.retrieve(
                self.collection,
                chunk,
                with_payload=False,
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
            new = [
                models.PointStruct(id=int(i), vector={name: v}, payload={})
                for i, v, e in zip(ids[sl], vectors[sl], exists[sl], strict=True)
                if not e
            ]
            old = [
                models.PointVectors(id=int(i), vector={name: v})
                for i, v, e in zip(ids[sl], vectors[sl], exists[sl], strict=True)
                if e
            ]
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
        empty = [
            int(r.id)
            for lo in range(0, ids.size, 1024)
            for r in self.client.retrieve(
                self.collection, ids[lo : lo + 1024].tolist(), with_payload=False, with_vectors=True
            )
            if not r.vector
        ]
        if empty:
            self.client.delete(
                self.collection, points_selector=models.PointIdsList(points=empty), wait=True
            )

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
                for i, p in zip(
                    ids[lo : lo + WRITE_BATCH], payloads[lo : lo + WRITE_BATCH], strict=True
                )
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
        records = self.client.retrieve(
            self.collection, [int(i) for i in ids], with_payload=False, with_vectors=[vector]
        )
        return {
            int(r.id): (r.vector or {}).get(vector)
            for r in records
            if (r.vector or {}).get(vector) is not None
        }

    @_serialised
    def ensure_payload_index(self, key: str, schema: str) -> None:
        """Index payload field ``key`` (``"keyword"``, ``"integer"``, ``"float"``, ``"bool"``)
        for filtered searches, once per field (later batches never change its type). Local
        (embedded) mode has no payload indexes: the field is only recorded."""
        if key in self._payload_indexes:
            return
        if not _is_embedded(self.client):  # embedded (local) mode has no payload indexes
            self.client.create_payload_index(self.collection, key, field_schema=schema, wait=True)
        self._payload_indexes[key] = schema

    @_serialised
    def query(self, requests: list[Any]) -> list[Any]:
        """Run ``QueryRequest``s in one batch call; returns their point lists."""
        if not requests:
            return []
        out = self.client.query_batch_points(self.collection, requests=requests)
        return [r.points for r in out]
