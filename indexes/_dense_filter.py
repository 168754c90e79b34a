"""Filtered FAISS search for :class:`indexes.dense.DenseIndex` (private).

The allowed ids reach FAISS as an ``IDSelectorBitmap`` in the search parameters, so FAISS
considers only those vectors (an ``IndexIDMap`` translates its internal positions to our ids
before asking the selector):

- **Flat** (and other flat-code indexes: PQ, SQ): every allowed vector is scored, the rest are
  skipped: exact, the unfiltered ranking with the other ids removed.
- **HNSW**: when at most ``index.exact_filter_below`` ids are allowed, their stored vectors are
  scored directly (exact; a graph walk restricted to a few scattered nodes misses most of
  them). Otherwise the graph is walked with the selector and a beam widened to
  ``max(efSearch, k) * live / allowed`` (capped at ``_MAX_EF``), so the beam holds about as
  many allowed nodes as an unfiltered beam holds nodes.
- **IVF**: ``nprobe`` is raised to ``nprobe * live / allowed`` (at most every list), so about
  as many allowed vectors are scanned as an unfiltered search scans.
- Types that take no selector (e.g. refine indexes) are searched for every stored vector and
  filtered afterwards (exact, slow).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from indexes._base import SearchResult, empty_result

if TYPE_CHECKING:
    from indexes.dense import DenseIndex

_MAX_EF = 4096


def search_allowed(
    index: DenseIndex,
    q: np.ndarray,
    k: int,
    mask: np.ndarray,
    threads: int | None,
    source: np.ndarray | None = None,
) -> SearchResult:
    """Top-``k`` of each query row among the ids where ``mask`` (live and allowed) is True.

    ``source`` is the caller's ``allowed`` array: when it is read-only (as the engine's cached
    filter masks are), the vectors gathered for an exact HNSW subset search are kept for the
    next search with the same array, until the index changes.
    """
    from indexes.dense import _faiss, _omp_threads, finish

    n_q = q.shape[0]
    m = int(np.count_nonzero(mask))
    if n_q == 0 or m == 0:
        return empty_result(n_q, k)
    k_eff = min(k, m)
    faiss = _faiss()
    hnsw = index._hnsw()
    with _omp_threads(faiss, threads):
        if hnsw is not None and m <= index.exact_filter_below:
            return _exact_subset(index, hnsw, q, k, mask, source)
        bitmap = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(mask.size, faiss.swig_ptr(bitmap))
        params = _params(faiss, index, hnsw, selector, k_eff, len(index) / m)
        if params is None:  # no selector support: everything, then filter
            n_stored = int(index._index.ntotal)
            scores, ids = index._index.search(q, n_stored)
            bad = ids < 0
            ids[~bad] = np.where(mask[ids[~bad]], ids[~bad], -1)
            return finish(ids, scores, k_eff, k)
        scores, ids = index._index.search(q, k_eff, params=params)
        del selector, bitmap  # FAISS only borrowed them for the call
    return finish(ids, scores, k_eff, k)


def _params(faiss: Any, index: DenseIndex, hnsw: Any, selector: Any, k: int, spread: float) -> Any:
    """Search parameters carrying the selector, with the beam or probes widened by ``spread``
    (live / allowed); None for index types that take no selector."""
    if hnsw is not None:
        params = faiss.SearchParametersHNSW()
        ef = max(int(hnsw.hnsw.efSearch), k)
        params.efSearch = int(min(math.ceil(ef * spread), max(ef, _MAX_EF)))
    elif index.nprobe is not None:
        ivf = faiss.try_extract_index_ivf(index._index)
        params = faiss.SearchParametersIVF()
        params.nprobe = int(min(ivf.nlist, math.ceil(ivf.nprobe * spread)))
    elif index._tombstones.size:
        return None  # tombstoned types other than HNSW may not take a selector
    else:
        params = faiss.SearchParameters()
    params.sel = selector
    return params


def _gather(hnsw: Any, rows: np.ndarray) -> np.ndarray:
    """Stored vectors of ``rows`` (positions) of an HNSW index: read in place from a flat
    storage, else reconstructed."""
    from indexes.dense import _faiss

    faiss = _faiss()
    storage = faiss.downcast_index(hnsw.storage)
    if isinstance(storage, faiss.IndexFlat):
        n, d = int(storage.ntotal), int(storage.d)
        return faiss.rev_swig_ptr(storage.get_xb(), n * d).reshape(n, d)[rows]
    return hnsw.reconstruct_batch(rows)


def _exact_subset(
    index: DenseIndex,
    hnsw: Any,
    q: np.ndarray,
    k: int,
    mask: np.ndarray,
    source: np.ndarray | None,
) -> SearchResult:
    """Score the allowed vectors of an HNSW index directly. Its stored vectors are never
    removed, so position == id (unless undone adds left orphans: then the index maps them);
    ranked score descending, id ascending, as FAISS does."""
    key = (id(source), mask.size, len(index))
    cached = getattr(index, "_subset_cache", None)
    if cached is not None and cached[0] == key and cached[1] is source:
        rows, vectors = cached[2], cached[3]
    else:
        rows = np.flatnonzero(mask).astype(np.int64)
        vectors = _gather(hnsw, index._positions(rows))
        if source is not None and not source.flags.writeable:
            index._subset_cache = (key, source, rows, vectors)
    scores = q @ vectors.T  # (n_q, m)
    k_eff = min(k, rows.size)
    out = empty_result(q.shape[0], k)
    for i in range(q.shape[0]):
        s = scores[i]
        top = np.arange(s.size)
        if k_eff < s.size:  # everything tying the k-th score, so ties go to the smaller id
            top = np.flatnonzero(s >= np.partition(s, s.size - k_eff)[s.size - k_eff])
        order = top[np.lexsort((rows[top], -s[top]))][:k_eff]
        out.ids[i, :k_eff] = rows[order]
        out.scores[i, :k_eff] = s[order]
    return out
