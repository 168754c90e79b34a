"""How a :class:`~indexes.sparse.SparseIndex` lies in memory and on disk: its segments, their
files, and the checks that make a damaged file an error instead of a crash in the kernels."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from indexes import _sparse_kernels as K
from indexes._base import (
    IndexCorruptedError,
    IndexFormatError,
    check_pointers,
    check_range,
    load_array,
    read_meta,
    write_meta,
)

_Index = TypeVar("_Index")  # indexes.sparse.SparseIndex (which imports this module)

FORMAT_VERSION = 3  # 1: weight-tiered postings, 2: 32-bit ids (read no more: rebuild)
WEIGHT_DTYPES = {"uint16": np.uint16, "float32": np.float32}
_SEG_ARRAYS = ("ptr", "docs", "weights", "dense_of", "dense", "deleted")


@dataclass
class _Segment:
    """Postings of the consecutive internal ids ``base .. base + n_docs - 1``."""

    base: int
    n_docs: int
    n_postings: int  # sparse postings + non-zeros of the dense rows
    ptr: np.ndarray  # int64, dim * n_windows + 1: term t's postings in window i start at
    # ptr[t * n_windows + i]
    docs: np.ndarray  # uint16 offsets in the window, ascending within a (term, window)
    weights: np.ndarray  # uint16 codes or float32
    dense_of: np.ndarray  # int32, dim: row of the term in ``dense``, or -1
    dense: np.ndarray  # weights dtype, (n_dense, n_docs); 0 = absent
    deleted: np.ndarray  # uint8, n_docs


def save_index(index: Any, path: str | Path) -> Path:
    """Write every segment as .npy arrays plus ``meta.json`` (type, format version)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    segs = []
    for i, seg in enumerate(index._segments):
        for name in _SEG_ARRAYS:
            tmp = path / f".seg{i}_{name}.tmp.npy"
            np.save(tmp, getattr(seg, name))
            os.replace(tmp, path / f"seg{i}_{name}.npy")  # safe over a memory-mapped file
        segs.append({"base": seg.base, "n_docs": seg.n_docs, "n_postings": seg.n_postings})
    return write_meta(
        path,
        "SparseIndex",
        FORMAT_VERSION,
        dim=index.dim,
        weight_dtype=index.weight_dtype,
        quant_step=index.quant_step,
        n_assigned=index._n_assigned,
        n_live=index._n_live,
        segments=segs,
    )


def load_index(cls: type[_Index], path: str | Path, mmap: bool = True) -> _Index:
    """Open a saved index; posting arrays are memory-mapped read-only when ``mmap``."""
    path = Path(path)
    meta = read_meta(path, "SparseIndex", FORMAT_VERSION)
    if meta["format_version"] < FORMAT_VERSION:
        raise IndexFormatError(
            f"{path} holds a SparseIndex in format version {meta['format_version']}, which "
            f"this release no longer reads; rebuild it from the document vectors"
        )
    try:
        index = cls(meta["dim"], meta["weight_dtype"], meta["quant_step"])
        index._n_assigned = int(meta["n_assigned"])
        index._n_live = int(meta["n_live"])
        specs = [(int(s["base"]), int(s["n_docs"]), int(s["n_postings"])) for s in meta["segments"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexCorruptedError(f"{path}/meta.json: damaged SparseIndex settings: {exc}") from exc
    wdtype = WEIGHT_DTYPES[index.weight_dtype]
    dtypes = {
        "ptr": (np.int64, 1),
        "docs": (np.uint16, 1),
        "weights": (wdtype, 1),
        "dense_of": (np.int32, 1),
        "dense": (wdtype, 2),
        "deleted": (np.uint8, 1),
    }
    base = 0
    for i, (seg_base, n_docs, n_postings) in enumerate(specs):
        arrays = {
            name: load_array(path / f"seg{i}_{name}.npy", *dtypes[name], mmap=mmap)
            for name in _SEG_ARRAYS
        }
        arrays["deleted"] = np.array(arrays["deleted"])
        if seg_base != base or n_docs < 1:
            raise IndexCorruptedError(f"{path}/meta.json: segment {i} is out of sequence")
        _check_segment(path, i, arrays, index.dim or 0, n_docs)
        index._segments.append(_Segment(seg_base, n_docs, n_postings, **arrays))
        base += n_docs
    if base != index._n_assigned or index._n_live != sum(
        int((s.deleted == 0).sum()) for s in index._segments
    ):
        raise IndexCorruptedError(f"{path}/meta.json: document counts disagree with segments")
    return index


def _check_segment(path: Path, i: int, a: dict[str, np.ndarray], dim: int, n_docs: int) -> None:
    """Shapes and ranges the search kernels rely on (so damage cannot crash them)."""
    nw = max(1, -(-n_docs // K.WINDOW))
    name = f"seg{i}"
    if a["ptr"].shape[0] != dim * nw + 1:
        raise IndexCorruptedError(f"{path}/{name}_ptr.npy: wrong length for dim {dim}")
    n_post = a["docs"].shape[0]
    if a["weights"].shape[0] != n_post:
        raise IndexCorruptedError(f"{path}/{name}_weights.npy: length differs from docs")
    check_pointers(a["ptr"], n_post, path / f"{name}_ptr.npy", "the posting pointers")
    check_range(a["docs"], 0, min(K.WINDOW, n_docs), path / f"{name}_docs.npy", "offsets")
    last = nw - 1  # the last window may hold fewer than WINDOW documents
    if last and n_docs - last * K.WINDOW < K.WINDOW:
        ptr = np.asarray(a["ptr"])
        lo, hi = ptr[last:-1:nw], ptr[last + 1 :: nw]
        docs = np.asarray(a["docs"])
        limit = n_docs - last * K.WINDOW
        for a_, b_ in zip(lo.tolist(), hi.tolist(), strict=True):
            if b_ > a_ and int(docs[a_:b_].max()) >= limit:
                raise IndexCorruptedError(f"{path}/{name}_docs.npy: offset past the last doc")
    if a["dense_of"].shape[0] != dim:
        raise IndexCorruptedError(f"{path}/{name}_dense_of.npy: wrong length for dim {dim}")
    n_dense = a["dense"].shape[0]
    check_range(a["dense_of"], -1, n_dense, path / f"{name}_dense_of.npy", "dense rows")
    if a["dense"].shape[1] != n_docs or a["deleted"].shape[0] != n_docs:
        raise IndexCorruptedError(f"{path}/{name}: dense rows or deleted mask of wrong length")
