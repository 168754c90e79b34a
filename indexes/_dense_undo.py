"""Undoing a :class:`~indexes.dense.DenseIndex` write completely (adds and deletes).

``checkpoint`` opens a write. While it is open, deletes are tombstones only (filtered at
search time, like a graph's), so undoing them is restoring the live mask; the next
``checkpoint`` or ``settle`` (the write is final) drops them physically from removable indexes
(IVF, flat codes). Undone adds are removed from removable indexes; a graph (HNSW), which cannot
remove, keeps their vectors as nameless "orphans" (id -1 in FAISS's id map, never returned)
and frees the ids for the next add, which then sits at other positions (``_pos`` maps them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from indexes._base import PAD_ID, IndexCorruptedError
from indexes._faiss import faiss_module


def checkpoint(index: Any) -> tuple:
    """Open a write on ``index`` (settling the previous one); the token for :func:`rollback`."""
    settle(index)
    index._open = True
    return (
        index._alive,
        index._tombstones,
        index._count,
        bool(index._index.is_trained),
        int(index._index.ntotal),
    )


def settle(index: Any) -> None:
    """Close the open write: drop its deleted vectors from removable indexes."""
    index._open = False
    faiss = faiss_module()
    if index._tombstones.size and index._can_remove(faiss):
        dead = index._tombstones
        removed = index._index.remove_ids(faiss.IDSelectorBatch(dead))
        if removed != dead.size:  # pragma: no cover - FAISS invariant
            raise RuntimeError(f"FAISS removed {removed} of {dead.size} ids")
        index._tombstones = np.zeros(0, dtype=np.int64)
        index._params = None


def rollback(index: Any, token: tuple) -> None:
    """Undo every add and delete made to ``index`` since :func:`checkpoint` gave ``token``."""
    alive, tombstones, count, trained, n_stored = token
    if not index._open:
        raise RuntimeError("DenseIndex.rollback: no open write (settle() made it final)")
    n_old = alive.size
    index._open = False
    index._params = None
    index.__dict__.pop("_filter_cache", None)
    if index.next_id == n_old:
        index._alive, index._tombstones, index._count = alive, tombstones, count
        return
    faiss = faiss_module()
    if not trained:  # the index was empty and untrained: start again, same settings
        params = {"nprobe": index.nprobe, "ef_search": index.ef_search}
        fresh = type(index)(index.dim, index.metric, index.factory, index.threads, index.model_name)
        fresh._filter_policy = index._filter_policy
        index.__dict__.update(fresh.__dict__)
        for name, value in params.items():
            if value is not None:
                setattr(index, name, value)
        return
    new = np.arange(n_old, index.next_id, dtype=np.int64)
    if index._can_remove(faiss):
        removed = index._index.remove_ids(faiss.IDSelectorBatch(new))
        if removed != new.size:  # pragma: no cover - FAISS invariant
            raise RuntimeError(f"FAISS removed {removed} of {new.size} ids")
    else:  # positions n_stored.. hold the new vectors: take their ids away
        n_new = int(index._index.ntotal) - n_stored
        id_map = faiss.rev_swig_ptr(index._index.id_map.data(), int(index._index.ntotal))
        id_map[n_stored:] = PAD_ID
        if index._pos is None:
            index._pos = np.arange(n_old, dtype=np.int64)
        else:
            index._pos = index._pos[:n_old].copy()
        index._orphans += n_new
    index._alive, index._tombstones, index._count = alive, tombstones, count


def positions_of(faiss: Any, index: Any, next_id: int, where: Path) -> np.ndarray:
    """id -> position from an ``IndexIDMap``'s id map holding orphans (-1); every id below
    ``next_id`` must appear exactly once."""
    if not isinstance(index, faiss.IndexIDMap):
        raise IndexCorruptedError(f"{where}: orphans recorded for an index without an id map")
    id_map = faiss.vector_to_array(index.id_map).astype(np.int64)
    named = np.flatnonzero(id_map >= 0)
    ids = id_map[named]
    if (id_map < -1).any() or ids.size != next_id or (ids.size and ids.max() >= next_id):
        raise IndexCorruptedError(f"{where}: its id map is damaged")
    pos = np.full(next_id, -1, dtype=np.int64)
    pos[ids] = named
    if (pos < 0).any():
        raise IndexCorruptedError(f"{where}: its id map is damaged")
    return pos
