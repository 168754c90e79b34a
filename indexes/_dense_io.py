"""A :class:`~indexes.dense.DenseIndex` on disk: the FAISS file, the live mask and
tombstones, ``meta.json``, and the checks that turn a damaged file into an error naming it."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from indexes import _dense_undo
from indexes._base import IndexCorruptedError, IndexFormatError, read_meta, write_meta
from indexes._faiss import check_threads
from indexes._faiss import faiss_module as _faiss

FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
STATE_FILE = "state.npz"
_Index = TypeVar("_Index")  # indexes.dense.DenseIndex (which imports this module)


def save_index(index: Any, path: str | Path) -> Path:
    """Write the index to folder ``path`` (created if needed); returns the path."""
    faiss = _faiss()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index._index, str(path / INDEX_FILE))
    np.savez(
        path / STATE_FILE,
        alive=np.packbits(index._alive, bitorder="little"),
        tombstones=index._tombstones,
        orphans=np.int64(index._orphans),
    )
    return write_meta(
        path,
        "DenseIndex",
        FORMAT_VERSION,
        dim=index.dim,
        metric=index.metric,
        factory=index.factory,
        model_name=index.model_name,
        threads=index.threads,
        next_id=index.next_id,
        count=len(index),
        nprobe=index.nprobe,
        ef_search=index.ef_search,
        filter_policy=index.filter_policy,
        faiss_version=getattr(faiss, "__version__", None),
    )


def load_index(cls: type[_Index], path: str | Path, threads: int | None = None) -> _Index:
    """Open an index written by ``save``; ``IndexFormatError`` if ``path`` is not one."""
    path = Path(path)
    meta = read_meta(path, "DenseIndex", FORMAT_VERSION)
    for name in (INDEX_FILE, STATE_FILE):
        if not (path / name).is_file():
            raise IndexFormatError(f"{path} is missing {name}")
    faiss = _faiss()
    index = cls.__new__(cls)
    try:
        index.dim = int(meta["dim"])
        index.metric = str(meta["metric"])
        index.factory = str(meta["factory"])
        index.model_name = meta.get("model_name")
        index.threads = check_threads(threads if threads is not None else meta.get("threads"))
        next_id = int(meta["next_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexCorruptedError(f"{path}/meta.json: invalid DenseIndex metadata") from exc
    try:
        with np.load(path / STATE_FILE, allow_pickle=False) as state:
            packed, tombstones = state["alive"], state["tombstones"]
            orphans = int(state["orphans"]) if "orphans" in state.files else 0
    except (KeyError, OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise IndexCorruptedError(f"{path / STATE_FILE}: cannot be read ({exc})") from exc
    if (
        packed.dtype != np.uint8
        or packed.ndim != 1
        or packed.size * 8 < next_id
        or (tombstones.ndim != 1 or tombstones.dtype.kind != "i")
    ):
        raise IndexCorruptedError(f"{path / STATE_FILE}: live mask or tombstones damaged")
    index._alive = np.unpackbits(packed, count=next_id, bitorder="little").astype(bool)
    index._tombstones = tombstones.astype(np.int64)
    if index._tombstones.size and (
        index._tombstones.min() < 0 or index._tombstones.max() >= next_id
    ):
        raise IndexCorruptedError(f"{path / STATE_FILE}: tombstones out of range")
    index._count = int(index._alive.sum())
    index._orphans, index._pos, index._open = orphans, None, False
    index._params = None
    try:
        index._index = faiss.read_index(str(path / INDEX_FILE))
    except RuntimeError as exc:
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        raise IndexCorruptedError(f"{path / INDEX_FILE}: FAISS cannot read it: {msg}") from exc
    index._requires_training = not faiss.index_factory(
        index.dim, index.factory, faiss.METRIC_INNER_PRODUCT
    ).is_trained
    if index._index.d != index.dim:
        raise IndexCorruptedError(f"{path}: FAISS index has dim {index._index.d}, meta {index.dim}")
    if orphans < 0 or int(index._index.ntotal) != len(index) + index._tombstones.size + orphans:
        raise IndexCorruptedError(f"{path}: FAISS index and id state disagree on the count")
    if orphans:
        index._pos = _dense_undo.positions_of(faiss, index._index, next_id, path / INDEX_FILE)
    if not index._index.is_trained and int(index._index.ntotal) == 0 and next_id == 0:
        # FAISS reads an untrained IVF back with another quantizer class, which trains to
        # other centroids: start from the factory, as the index that was saved would
        fresh = cls(index.dim, index.metric, index.factory, index.threads, index.model_name)
        index._index, index._base = fresh._index, fresh._base
    if meta.get("nprobe") is not None:
        index.nprobe = int(meta["nprobe"])
    if meta.get("ef_search") is not None:
        index.ef_search = int(meta["ef_search"])
    index._filter_policy = "auto"
    if meta.get("filter_policy") is not None:
        try:
            index.filter_policy = meta["filter_policy"]
        except ValueError as exc:
            raise IndexCorruptedError(f"{path}/meta.json: {exc}") from exc
    return index
