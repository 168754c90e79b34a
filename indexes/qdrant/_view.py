"""What the three Qdrant views share: one collection's id bookkeeping, deletes, filters,
results, and saving/loading their settings."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from indexes.base import (
    PAD_ID,
    PAD_SCORE,
    SearchResult,
    read_meta,
    write_meta,
)
from indexes.qdrant.connection import (
    FORMAT_VERSION,
    _qdrant,
)
from indexes.qdrant.store import QdrantStore


def _with_filter(requests: list[Any], allowed: Any) -> list[Any]:
    """``requests`` restricted by ``allowed``: a qdrant ``Filter``, or a bool mask over ids
    (sent as the list of allowed ids); None leaves them as they are."""
    if allowed is None:
        return requests
    models = _qdrant().models
    if isinstance(allowed, np.ndarray):
        ids = np.flatnonzero(allowed).tolist()
        allowed = models.Filter(must=[models.HasIdCondition(has_id=ids)])
    return [r if r is None else r.model_copy(update={"filter": allowed}) for r in requests]


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
        arr = np.unique(
            np.asarray(
                list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64
            ).ravel()
        )
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
            path,
            self.kind,
            FORMAT_VERSION,
            store=self.store.settings,
            vector=self.vector,
            next_id=self._next_id,
            n_live=self._n_live,
            extra=extra,
            **self._params(),
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
