"""Saving and loading :class:`indexes.bm25.BM25Index` (private): .npy arrays per segment,
``terms.json`` and ``meta.json``; loads memory-map the arrays and bounds-check every one that
reaches a numba kernel."""

from __future__ import annotations

import json
import mmap as _mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from indexes._base import (
    IndexCorruptedError,
    IndexFormatError,
    check_pointers,
    check_range,
    read_meta,
    write_meta,
)

_Index = TypeVar("_Index")  # indexes.bm25.BM25Index (which imports this module)

FORMAT_VERSION = 2  # 1: one postings list with precomputed impacts (still read)
KIND = "BM25Index"
_SEG_ARRAYS = ("indptr", "docs", "tfs", "fwd_ptr", "fwd_terms")
_V1_ARRAYS = ("indptr", "docs", "tfs", "doc_len", "live")


@dataclass
class _Segment:
    """Postings of documents ``base .. base + n_docs - 1`` (ids local to the segment)."""

    base: int
    n_docs: int
    indptr: np.ndarray  # int64, (segment vocabulary + 1): term-major postings
    docs: np.ndarray  # int32 local ids, ascending within a term
    tfs: np.ndarray  # int32 term frequencies
    fwd_ptr: np.ndarray  # int64, n_docs + 1: each document's terms (for deletes' statistics)
    fwd_terms: np.ndarray  # int32 term ids, ascending within a document

    @property
    def n_postings(self) -> int:
        return int(self.docs.shape[0])


def save(self: Any, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the index as .npy arrays (per segment) + terms.json + meta.json; ``extra`` must
    be JSON-able."""
    extra = self.extra if extra is None else extra
    json.dumps(extra)  # fail before writing anything
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    arrays = {"doc_len": self._doc_len, "live": self._live, "df": self._df}
    for i, seg in enumerate(self._segments):
        arrays.update({f"seg{i}_{name}": getattr(seg, name) for name in _SEG_ARRAYS})
    # Write beside and rename over: the old files may be memory-mapped by this very index.
    for name, arr in arrays.items():
        tmp = path / f"{name}.npy.tmp"
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(arr))
        os.replace(tmp, path / f"{name}.npy")
    (path / "terms.json").write_text(json.dumps(list(self._vocab), ensure_ascii=False))
    return write_meta(
        path,
        KIND,
        FORMAT_VERSION,
        variant=self.variant,
        params=self.params,
        n_terms=len(self._vocab),
        extra=extra,
        n_live=self._n_live,
        total_len=self._total_len,
        segments=[{"base": s.base, "n_docs": s.n_docs} for s in self._segments],
    )


def load(cls: type[_Index], path: str | Path, mmap: bool = True) -> _Index:
    """Open a saved index; arrays are memory-mapped read-only unless ``mmap=False``."""
    path = Path(path)
    meta = read_meta(path, KIND, FORMAT_VERSION)
    version = meta["format_version"]
    if version >= 2:
        names = ["doc_len", "live", "df"] + [
            f"seg{i}_{a}" for i in range(len(meta.get("segments", []))) for a in _SEG_ARRAYS
        ]
    else:
        names = list(_V1_ARRAYS)
    missing = [f"{n}.npy" for n in names if not (path / f"{n}.npy").is_file()]
    if not (path / "terms.json").is_file():
        missing.append("terms.json")
    if missing:
        raise IndexCorruptedError(f"{path} is missing {missing}")
    try:
        index = cls(meta["variant"], **meta["params"])
    except (KeyError, TypeError, ValueError) as exc:
        raise IndexFormatError(f"{path}: bad BM25 parameters in meta.json: {exc}") from exc
    terms = json.loads((path / "terms.json").read_text())
    index._vocab = {t: i for i, t in enumerate(terms)}
    mode = "r" if mmap else None
    arrays = {n: np.load(path / f"{n}.npy", mmap_mode=mode) for n in names}
    try:
        if version >= 2:
            _load_segments(index, meta, arrays, len(terms), path)
        else:
            _load_v1(index, arrays, len(terms), path)
    except IndexCorruptedError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise IndexCorruptedError(f"{path} holds a damaged BM25Index: {exc}") from exc
    index.extra = meta.get("extra")
    index._publish()
    for arr in arrays.values():  # checked: their pages need not stay in this process
        _drop_pages(arr)
    return index


def _load_segments(
    self: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray], n_terms: int, path: Path
) -> None:
    self._doc_len, self._live = arrays["doc_len"], arrays["live"]
    self._df = np.array(arrays["df"], dtype=np.int64)
    self._n_live, self._total_len = int(meta["n_live"]), int(meta["total_len"])
    if self._df.shape[0] != n_terms or self._n_live != int(self._live.sum()):
        raise ValueError("document frequencies or live count do not match terms.json")
    n_ids = self._doc_len.shape[0]
    if self._live.shape[0] != n_ids:
        raise IndexCorruptedError(f"{path / 'live.npy'}: length differs from doc_len.npy")
    check_range(self._doc_len, 0, np.iinfo(np.int32).max, path / "doc_len.npy", "lengths")
    base = 0
    for i, s in enumerate(meta["segments"]):
        seg = _Segment(
            int(s["base"]), int(s["n_docs"]), *(arrays[f"seg{i}_{a}"] for a in _SEG_ARRAYS)
        )
        f = {a: path / f"seg{i}_{a}.npy" for a in _SEG_ARRAYS}
        if seg.base != base or seg.base + seg.n_docs > n_ids or seg.indptr.shape[0] < 1:
            raise IndexCorruptedError(f"{f['indptr']}: segment bounds do not match doc_len.npy")
        if seg.indptr.shape[0] > n_terms + 1 or seg.tfs.shape[0] != seg.n_postings:
            raise IndexCorruptedError(f"{f['tfs']}: postings do not match terms.json")
        if seg.fwd_ptr.shape[0] != seg.n_docs + 1:
            raise IndexCorruptedError(f"{f['fwd_ptr']}: does not match the segment's documents")
        check_pointers(seg.indptr, seg.n_postings, f["indptr"], "the term pointers")
        check_range(seg.docs, 0, seg.n_docs, f["docs"], "document ids")
        n_fwd = seg.fwd_terms.shape[0]
        check_pointers(seg.fwd_ptr, n_fwd, f["fwd_ptr"], "the forward pointers")
        check_range(seg.fwd_terms, 0, n_terms, f["fwd_terms"], "term ids")
        base += seg.n_docs
        self._segments.append(seg)


def _load_v1(self: Any, arrays: dict[str, np.ndarray], n_terms: int, path: Path) -> None:
    """A format-1 save (one compacted postings list): one segment, forward index rebuilt."""
    indptr, docs, tfs = arrays["indptr"], arrays["docs"], arrays["tfs"]
    if indptr.shape[0] != n_terms + 1:
        raise IndexCorruptedError(f"{path / 'indptr.npy'} does not match terms.json")
    self._doc_len, self._live = arrays["doc_len"], arrays["live"]
    n = self._doc_len.shape[0]
    if tfs.shape[0] != docs.shape[0] or self._live.shape[0] != n:
        raise IndexCorruptedError("tfs.npy or live.npy: length differs from docs / doc_len")
    check_pointers(indptr, docs.shape[0], path / "indptr.npy", "the term pointers")
    check_range(docs, 0, n, path / "docs.npy", "document ids")
    keep = self._live[docs]
    terms = np.repeat(np.arange(n_terms, dtype=np.int32), np.diff(indptr))[keep]
    d_keep = docs[keep]
    order = np.argsort(d_keep, kind="stable")
    fwd_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(d_keep, minlength=n), out=fwd_ptr[1:])
    self._df = np.bincount(terms, minlength=n_terms).astype(np.int64)
    self._n_live = int(self._live.sum())
    self._total_len = int(self._doc_len[self._live].sum(dtype=np.int64))
    if n:
        self._segments = [_Segment(0, n, indptr, docs, tfs, fwd_ptr, terms[order])]
        if not keep.all():
            self._segments[0] = self._compact(self._segments[0])


def _drop_pages(arr: np.ndarray) -> None:
    """Unmap the resident pages of a memory-mapped array (``MADV_DONTNEED``): the load-time
    bounds checks read every page of the index files, which would otherwise stay counted in
    the process's resident memory until evicted; a later access maps them again from the
    page cache (a minor fault)."""
    mm = getattr(arr, "_mmap", None)
    if mm is not None and hasattr(_mmap, "MADV_DONTNEED"):
        try:
            mm.madvise(_mmap.MADV_DONTNEED)
        except (OSError, ValueError):  # not supported here: the pages merely stay
            pass
