"""Exact top-k inverted index for learned-sparse (SPLADE) vectors.

Weights are 16-bit quantised codes (``weight_dtype="uint16"``, the default; ``"float32"``
stores them unquantised). Documents are cut into windows of 32,768: a posting is the document's
16-bit offset in its window and its weight, 4 bytes. The most frequent terms are stored instead
as one weight per document, which SPLADE queries (dominated by such terms) score with a
vectorised add rather than a scatter; terms are moved there in order of frequency while the
index stays within 6 bytes per posting (8 with float32), the size of a plain 32-bit id + weight
posting. Search is exhaustive and exact (see ``indexes/_sparse_kernels.py``): results equal a
brute-force dot product with the *stored* weights (``doc_vectors``), ties broken by the smaller
internal id.

Documents are added in immutable segments that are merged as they grow (no full rebuild);
deleted documents are masked and dropped from postings when their segment is merged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp

from indexes import _sparse_kernels as K
from indexes._base import (
    PAD_ID,
    PAD_SCORE,
    SearchResult,
    check_allowed,
    empty_result,
)
from indexes._sparse_query import overflow_error, search_common
from indexes._sparse_segments import (
    _SEG_ARRAYS,
    WEIGHT_DTYPES,
    _Segment,
    load_index,
    save_index,
)
from indexes._validate import (
    check_choice,
    check_float32_range,
    check_ids,
    check_number,
    check_positive_int,
    check_search_k,
    unique_ids,
)

_QMAX = 65535
_HEADROOM = 1.25  # the first batch's largest weight maps to 65535 / 1.25
_DENSE_MIN_SHARE = 10  # dense rows only for terms in >= 1/10 of a segment's documents


_LAUNCH_LOCK = threading.Lock()


@contextmanager
def _parallel_launch() -> Iterator[None]:
    """Serialise parallel kernel launches unless numba's threading layer is thread-safe (the
    ``workqueue`` layer aborts when two threads launch parallel work at once; ``omp`` and
    ``tbb`` do not)."""
    try:
        safe = numba.threading_layer() in ("omp", "tbb")
    except ValueError:  # no parallel kernel has run yet: the layer is not chosen
        safe = False
    if safe:
        yield
        return
    with _LAUNCH_LOCK:
        yield


def _as_csr(x: Any, what: str) -> sp.csr_matrix:
    """Canonical float CSR, copied only when it must change: summed duplicates, no zeros.

    Weights must be finite, >= 0 and within float32's range (a ``ValueError`` otherwise).
    """
    if not sp.issparse(x):
        raise TypeError(f"{what} must be a scipy sparse matrix (CSR), got {type(x).__name__}")
    if x.dtype.kind not in "fiu":
        raise TypeError(f"{what} must hold real weights, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{what} must be a 2-D sparse matrix, got shape {x.shape}")
    m = x if x.format == "csr" else x.tocsr()
    if m.dtype.kind != "f":
        m = m.astype(np.float32)
    d = m.data
    lo = d.min() if d.size else 1.0
    if not (lo > 0 and m.has_canonical_format):
        m = m.copy()  # never modify the caller's arrays
        m.sum_duplicates()
        m.eliminate_zeros()
        d = m.data
        lo = d.min() if d.size else 1.0
    if not (lo >= 0 and np.isfinite(d.max() if d.size else 0.0)):
        if np.isnan(lo) or not np.all(np.isfinite(d)):
            raise ValueError(f"{what} contain NaN or infinite weights")
        raise ValueError(f"{what} contain negative weights; SPLADE weights must be >= 0")
    if d.dtype != np.float32 and d.size:
        check_float32_range(float(d.max()), what)
    return m


class SparseIndex:
    """Exact dot-product top-k over sparse document vectors (rows of a CSR matrix).

    Args:
        dim: number of vocabulary columns; inferred from the first ``add`` when ``None``.
        weight_dtype: ``"uint16"`` (quantised; at most 6 bytes per posting) or ``"float32"``
            (at most 8).
        quant_step: weight of one uint16 step; by default the first batch's largest weight
            x 1.25 / 65535. A later batch with a larger weight re-quantises the index.
        threads: default number of search threads (``None``: numba's default, all cores).

    Any number of searches may run at once from several Python threads (the kernels release the
    GIL; each search takes its own accumulators). A write (``add``, ``delete``, ``compact``) must
    not run concurrently with anything else on the same index: :class:`hybrid.HybridRetriever`
    guarantees that with its readers-writer lock.
    """

    def __init__(
        self,
        dim: int | None = None,
        weight_dtype: str = "uint16",
        quant_step: float | None = None,
        threads: int | None = None,
    ) -> None:
        check_choice(weight_dtype, "weight_dtype", WEIGHT_DTYPES)
        dim = check_positive_int(dim, "dim", allow_none=True)
        if quant_step is not None:
            quant_step = check_number(quant_step, "quant_step", lo=0.0, lo_open=True)
        check_positive_int(threads, "threads", allow_none=True)
        self.dim = dim
        self.weight_dtype = weight_dtype
        self.quant_step = 1.0 if weight_dtype == "float32" else quant_step
        self.threads = threads
        self._segments: list[_Segment] = []
        self._n_assigned = 0
        self._n_live = 0
        self._pool: list[np.ndarray] = []

    # ------------------------------------------------------------------ sizes

    def __len__(self) -> int:
        return self._n_live

    @property
    def n_postings(self) -> int:
        """Postings stored (deleted documents' postings count until their segment merges)."""
        return sum(s.n_postings for s in self._segments)

    @property
    def nbytes(self) -> int:
        """Bytes of every stored array."""
        return sum(getattr(s, a).nbytes for s in self._segments for a in _SEG_ARRAYS)

    @property
    def bytes_per_posting(self) -> float:
        """Bytes of the postings, dense rows and posting pointers per stored posting.

        At most 6 for uint16 weights (8 for float32), by construction of the dense rows.
        """
        n = self.n_postings
        if n == 0:
            return float(4 + np.dtype(WEIGHT_DTYPES[self.weight_dtype]).itemsize)
        data = sum(
            s.docs.nbytes + s.weights.nbytes + s.dense.nbytes + s.ptr.nbytes for s in self._segments
        )
        return data / n

    # ------------------------------------------------------------------ building

    def add(self, docs: Any) -> np.ndarray:
        """Index the rows of ``docs``; returns their internal ids (consecutive, int64)."""
        x = _as_csr(docs, "document vectors")
        if self.dim is None:
            self.dim = int(x.shape[1])
        elif x.shape[1] > self.dim:
            raise ValueError(f"documents have {x.shape[1]} columns, the index has dim={self.dim}")
        n = int(x.shape[0])
        ids = np.arange(self._n_assigned, self._n_assigned + n, dtype=np.int64)
        if n == 0:
            return ids
        codes = self._quantise(x.data)
        ptr, d, w = K.csr_to_term_major(
            x.indptr.astype(np.int64), x.indices.astype(np.int32), codes, self.dim
        )
        self._segments.append(self._build(self._n_assigned, n, ptr, d, w, np.zeros(n, np.uint8)))
        self._n_assigned += n
        self._n_live += n
        while len(self._segments) > 1 and (
            self._segments[-2].n_postings <= 2 * self._segments[-1].n_postings
        ):
            b = self._segments.pop()
            a = self._segments.pop()
            self._segments.append(self._merge(a, b))
        return ids

    def delete(self, ids: Any) -> None:
        """Delete documents by internal id; unknown or already deleted ids raise ``KeyError``,
        an id given twice ``ValueError``, anything but integers ``TypeError`` (nothing deleted)."""
        ids = unique_ids(ids)
        bad = ids[(ids < 0) | (ids >= self._n_assigned)]
        if bad.size:
            raise KeyError(f"unknown document ids: {bad[:10].tolist()}")
        for seg, local in self._locate(ids):
            if seg.deleted[local].any():
                gone = local[seg.deleted[local] != 0][:10] + seg.base
                raise KeyError(f"documents already deleted: {gone.tolist()}")
        for seg, local in self._locate(ids):
            deleted = np.array(seg.deleted)  # copy on write: checkpoints keep the old array
            deleted[local] = 1
            seg.deleted = deleted
        self._n_live -= int(ids.size)
        for i, seg in enumerate(self._segments):  # purge segments that are mostly dead
            if seg.deleted.sum() * 2 > seg.n_docs and seg.n_postings:
                self._segments[i] = self._rebuild(seg, 1.0)

    def checkpoint(self) -> tuple:
        """An opaque token of the current state, for :meth:`rollback` (O(segments): segments
        are immutable but for their ``deleted`` masks, which writes replace)."""
        return (
            self.dim,
            self.quant_step,
            self._n_assigned,
            self._n_live,
            [(seg, seg.deleted) for seg in self._segments],
        )

    def rollback(self, token: tuple) -> None:
        """Undo every write since :meth:`checkpoint` returned ``token``."""
        self.dim, self.quant_step, self._n_assigned, self._n_live, segments = token
        for seg, deleted in segments:
            seg.deleted = deleted
        self._segments = [seg for seg, _ in segments]

    def compact(self) -> None:
        """Merge all segments into one, dropping deleted documents' postings."""
        while len(self._segments) > 1:
            b = self._segments.pop()
            a = self._segments.pop()
            self._segments.append(self._merge(a, b))
        if self._segments and self._segments[0].deleted.any():
            self._segments[0] = self._rebuild(self._segments[0], 1.0)

    def _quantise(self, data: np.ndarray) -> np.ndarray:
        if self.weight_dtype == "float32":
            return data.astype(np.float32)
        top = float(data.max()) if data.size else 0.0
        if self.quant_step is None:
            if top == 0.0:
                return np.zeros(data.shape, np.uint16)
            self.quant_step = top * _HEADROOM / _QMAX
        elif top > _QMAX * self.quant_step:
            new_step = top * _HEADROOM / _QMAX
            ratio = self.quant_step / new_step
            self._segments = [self._rebuild(s, ratio) for s in self._segments]
            self.quant_step = new_step
        return np.minimum(np.rint(data / self.quant_step), _QMAX).astype(np.uint16)

    @staticmethod
    def _build(base, n_docs, ptr, d, w, deleted) -> _Segment:
        n_postings = int(d.shape[0])
        ptr, d, w, dense_of, dense = K.split_dense(ptr, d, w, n_docs, _DENSE_MIN_SHARE)
        return _Segment(base, n_docs, n_postings, ptr, d, w, dense_of, dense, deleted)

    @staticmethod
    def _term_major(seg: _Segment, offset: int = 0, ratio: float = 1.0):
        return K.to_term_major(
            seg.ptr, seg.docs, seg.weights, seg.dense_of, seg.dense, seg.deleted, offset, ratio
        )

    def _rebuild(self, seg: _Segment, ratio: float) -> _Segment:
        ptr, d, w = self._term_major(seg, 0, ratio)
        return self._build(seg.base, seg.n_docs, ptr, d, w, np.array(seg.deleted))

    def _merge(self, a: _Segment, b: _Segment) -> _Segment:
        pa = self._term_major(a)
        pb = self._term_major(b, b.base - a.base)
        ptr, d, w = K.concat_term_major(*pa, *pb)
        deleted = np.concatenate([a.deleted, b.deleted])
        return self._build(a.base, a.n_docs + b.n_docs, ptr, d, w, deleted)

    def _locate(self, ids: np.ndarray):
        """(segment, sorted local ids) for sorted, valid global ``ids``."""
        for seg in self._segments:
            lo, hi = np.searchsorted(ids, [seg.base, seg.base + seg.n_docs])
            if hi > lo:
                yield seg, ids[lo:hi] - seg.base

    # ------------------------------------------------------------------ searching

    def search(
        self,
        queries: Any,
        k: int = 10,
        threads: int | None = None,
        allowed: np.ndarray | None = None,
    ) -> SearchResult:
        """Exact top-k by dot product for each row of ``queries`` (CSR).

        Returns ids (int64) and scores (float32) of shape ``(n_queries, k)``, best first, ties
        by smaller id; rows with fewer than k matching documents are padded with -1 / -inf.
        ``allowed`` (a bool or uint8 mask over internal ids, one entry per id ever assigned)
        restricts the search to the documents it marks: the kernels skip the others as they
        skip deleted ones, so the result is the unfiltered ranking with the other documents
        removed, with the same scores.
        """
        if threads is None and allowed is None:  # what encoders give: one call, checked in it
            found = search_common(self, queries, k)
            if found is not None:
                return found
        k = check_search_k(k, self._n_live)  # rows min(k, live documents) wide (issue #18)
        check_positive_int(threads, "threads", allow_none=True)
        if allowed is not None:
            allowed = check_allowed(allowed, self._n_assigned)
        q = _as_csr(queries, "query vectors")
        n_q = int(q.shape[0])
        if self.dim is not None and q.shape[1] > self.dim:
            raise ValueError(f"queries have {q.shape[1]} columns, the index has dim={self.dim}")
        if not self._segments or n_q == 0 or k == 0:
            return empty_result(n_q, k)
        q_val = (q.data * self.quant_step).astype(np.float32)
        n_threads = self._n_threads(threads, n_q)
        if n_threads == 1 and len(self._segments) == 1 and not self._segments[0].base:
            return self._search_one_segment(q, q_val, k, allowed)
        q_ptr = q.indptr.astype(np.int64)
        q_idx = q.indices.astype(np.int64)
        best_i = best_s = None
        theta = np.zeros(n_q, np.float32)
        acc = self._workspace(n_threads)
        try:
            for seg in self._segments:
                out_s = np.full((n_q, k), PAD_SCORE, np.float32)
                out_i = np.full((n_q, k), PAD_ID, np.int64)
                out_n = np.zeros(n_q, np.int64)
                excluded = seg.deleted
                if allowed is not None:
                    part = allowed[seg.base : seg.base + seg.n_docs]
                    if not part.any():
                        continue  # nothing to find in this segment
                    excluded = (seg.deleted | ~part).view(np.uint8)
                args = (
                    seg.ptr,
                    seg.docs,
                    seg.weights,
                    seg.dense_of,
                    seg.dense,
                    excluded,
                    q_ptr,
                    q_idx,
                    q_val,
                    k,
                    theta,
                )
                if n_threads == 1:
                    K.search_serial(*args, acc[0], out_s, out_i, out_n)
                else:
                    with _parallel_launch():
                        old = numba.get_num_threads()  # per calling thread
                        numba.set_num_threads(n_threads)
                        try:
                            K.search_parallel(*args, acc, out_s, out_i, out_n)
                        finally:
                            numba.set_num_threads(old)
                if seg.base:
                    out_i = np.where(out_i >= 0, out_i + seg.base, PAD_ID)
                if best_i is None:
                    best_i, best_s = out_i, out_s
                else:
                    ids = np.concatenate([best_i, out_i], axis=1)
                    scores = np.concatenate([best_s, out_s], axis=1)
                    order = np.lexsort((np.where(ids < 0, np.iinfo(np.int64).max, ids), -scores))
                    best_i = np.take_along_axis(ids, order, 1)[:, :k]
                    best_s = np.take_along_axis(scores, order, 1)[:, :k]
                if len(self._segments) > 1:
                    theta = np.where(np.isfinite(best_s[:, -1]), best_s[:, -1], 0)
                    theta = theta.astype(np.float32)
        finally:
            self._pool.append(acc)
        if best_i is None:
            return empty_result(n_q, k)
        if (best_s == np.inf).any():
            raise overflow_error()
        return SearchResult(best_i, best_s)

    def _search_one_segment(self, q, q_val, k, allowed) -> SearchResult:
        """:meth:`search` of an index with one segment in the calling thread."""
        seg = self._segments[0]
        excluded = seg.deleted
        if allowed is not None:
            part = allowed[: seg.n_docs]
            if not part.any():
                return empty_result(int(q.shape[0]), k)
            excluded = (seg.deleted | ~part).view(np.uint8)
        acc = self._workspace(1)
        args = (seg.ptr, seg.docs, seg.weights, seg.dense_of, seg.dense, excluded)
        ids, scores, overflow = K.search_segment(*args, q.indptr, q.indices, q_val, k, acc)
        self._pool.append(acc)
        if overflow:
            raise overflow_error()
        return SearchResult(ids, scores)

    def _n_threads(self, threads: int | None, n_q: int) -> int:
        t = threads if threads is not None else self.threads
        if t is None:
            t = numba.config.NUMBA_NUM_THREADS
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1:
            raise ValueError(f"threads must be a positive integer or None, got {t!r}")
        return int(max(1, min(t, n_q, numba.config.NUMBA_NUM_THREADS)))

    def _workspace(self, n_threads: int) -> np.ndarray:
        """Per-thread accumulator windows (pooled scratch space; each running search takes its
        own, so concurrent searches never share one)."""
        while True:
            try:
                acc = self._pool.pop()  # atomic: two searches never get the same array
            except IndexError:
                return np.zeros((n_threads, K.WINDOW), np.float32)
            if acc.shape[0] >= n_threads:
                return acc

    # ------------------------------------------------------------------ stored vectors

    def doc_vectors(self, ids: Any) -> sp.csr_matrix:
        """Stored (quantised) vectors of live documents ``ids``, one CSR row per id, in order."""
        ids = check_ids(ids)
        uniq, inverse = np.unique(ids, return_inverse=True)
        bad = uniq[(uniq < 0) | (uniq >= self._n_assigned)]
        if bad.size:
            raise KeyError(f"unknown document ids: {bad[:10].tolist()}")
        rows, cols, vals = [], [], []
        start = 0
        for seg, local in self._locate(uniq):
            if seg.deleted[local].any():
                gone = (local[seg.deleted[local] != 0] + seg.base)[:10]
                raise KeyError(f"deleted documents: {gone.tolist()}")
            wanted = local.astype(np.uint32)
            by_scan = wanted.size * 32 * seg.dense_of.size >= seg.docs.size  # else bisect
            r, t, v = K.extract_docs(
                seg.ptr, seg.docs, seg.weights, seg.dense_of, seg.dense, seg.n_docs, wanted, by_scan
            )
            rows.append(r + start)
            cols.append(t)
            vals.append(v)
            start += local.size
        dim = self.dim or 0
        step = self.quant_step or 1.0
        m = sp.csr_matrix(
            (
                (np.concatenate(vals) * step).astype(np.float32)
                if vals
                else np.zeros(0, np.float32),
                (
                    np.concatenate(rows) if rows else np.zeros(0, np.int64),
                    np.concatenate(cols) if cols else np.zeros(0, np.int64),
                ),
            ),
            shape=(uniq.size, dim),
        )
        return m[inverse]

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Write every segment as .npy arrays plus ``meta.json`` (type, format version)."""
        return save_index(self, path)

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> SparseIndex:
        """Open a saved index; posting arrays are memory-mapped read-only when ``mmap``."""
        return load_index(cls, path, mmap)
