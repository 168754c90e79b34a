"""Filtered FAISS search for :class:`indexes.dense.DenseIndex` (private).

The allowed ids reach FAISS as an ``IDSelectorBitmap`` in the search parameters, so FAISS
considers only those vectors (an ``IndexIDMap`` translates its internal positions to our ids
before asking the selector):

- **Flat** (and other flat-code indexes: PQ, SQ): every allowed vector is scored, the rest are
  skipped: exact, the unfiltered ranking with the other ids removed.
- **HNSW**, by ``index.filter_policy``:

  - ``"graph"``: the graph is walked with the selector. FAISS's beam holds every visited node,
    allowed or not (only allowed ones become results), so the beam is widened to
    ``ef = max(efSearch, k) * (live / allowed) ** WIDEN_EXPONENT`` (capped at ``_MAX_EF``).
    Widening by live / allowed alone (the beam then holds about as many allowed nodes as an
    unfiltered beam holds nodes) falls short of the unfiltered recall when few are allowed:
    their nearest lie further out along the graph. Measured recall@10 against exact filtered
    search, clustered vectors: 6,000 x 32-d, HNSW16, efSearch 16 (unfiltered 0.948): 10%
    allowed 0.94 at 10x the beam, 0.97 at 16x; 2% allowed 0.90 at 32x, 0.96 at 64x, 0.99 at
    128x. 100k x 384-d, HNSW32, efSearch 64 (unfiltered 0.988): 10% allowed 0.97 at 8x, 0.99
    at 16x. The exponent 1.2 gives 16x at 10% and 109x at 2%. The cost grows with ``ef``.
  - ``"exact"``: the allowed vectors are scored directly (exact, cost grows with their number).
  - ``"auto"`` (default): exact when at most ``EXACT_FLOOR`` vectors are allowed (a fraction
    of a millisecond; small collections get exact filtered results), when the beam would pass
    ``_MAX_EF`` (a capped beam loses recall), or when ``allowed <= GRAPH_STEP_COST * ef``, the
    estimated break-even: one beam slot of a graph walk cost about as much as scoring 40
    vectors in one pass (100k x 384-d HNSW32, one thread: 3.6 us per slot, 0.07-0.11 us per
    vector). Filtered HNSW is slowest, relative to unfiltered, where the two costs cross.

  Exact scoring reads the stored vectors of the allowed rows (flat storage in place) in blocks
  of ``_BLOCK`` rows, so its memory stays bounded; when the caller's ``allowed`` array is
  read-only (the engine's cached filter masks are) and the gathered vectors fit in
  ``_CACHE_BYTES``, they are kept for the next search with the same array, until the index
  changes.
- **IVF**: ``nprobe`` is raised to ``nprobe * live / allowed`` (at most every list), so about
  as many allowed vectors are scanned as an unfiltered search scans.
- Types that take no selector (e.g. refine indexes) are searched for every stored vector and
  filtered afterwards (exact, slow).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from indexes._base import SearchResult, check_allowed, empty_result
from indexes._faiss import faiss_module, finish, omp_threads

FILTER_POLICIES = ("auto", "exact", "graph")
WIDEN_EXPONENT = 1.2  # the beam grows as (live / allowed) ** WIDEN_EXPONENT
GRAPH_STEP_COST = 40  # one slot of HNSW beam ~ this many vectors scored exactly (384-d)
EXACT_FLOOR = 4096  # "auto" scores allowed sets this small exactly
_MAX_EF = 4096
_BLOCK = 16_384  # allowed rows scored per block on the exact path
_CACHE_BYTES = 1 << 27  # largest gathered subset kept between searches (128 MiB)


def search_allowed(
    index: Any, q: np.ndarray, k: int, allowed: Any, threads: int | None
) -> SearchResult:
    """Top-``k`` of each query row of ``index`` (a ``DenseIndex``) among its live ids that
    ``allowed`` (a bool or uint8 mask over every id ever assigned) marks."""
    prep = _prepare(index, allowed)
    n_q, m = q.shape[0], prep["count"]
    if n_q == 0 or m == 0:
        return empty_result(n_q, k)
    k_eff = min(k, m)
    faiss = faiss_module()
    hnsw = index._hnsw()
    with omp_threads(faiss, threads):
        ef = None
        if hnsw is not None:
            ef, exact = hnsw_plan(
                int(hnsw.hnsw.efSearch), k_eff, len(index), m, index.filter_policy
            )
            if exact:
                return _exact_subset(hnsw, q, k, prep)
        if "selector" not in prep:
            bitmap = np.packbits(prep["mask"], bitorder="little")
            prep["bitmap"] = bitmap  # the selector only borrows it
            prep["selector"] = faiss.IDSelectorBitmap(prep["mask"].size, faiss.swig_ptr(bitmap))
        params = _params(faiss, index, ef, prep["selector"], len(index) / m)
        if params is None:  # no selector support: everything, then filter
            n_stored = int(index._index.ntotal)
            scores, ids = index._index.search(q, n_stored)
            bad = ids < 0
            ids[~bad] = np.where(prep["mask"][ids[~bad]], ids[~bad], -1)
            return finish(ids, scores, k_eff, k)
        params._keep = prep  # the bitmap and selector must outlive the FAISS call
        scores, ids = index._index.search(q, k_eff, params=params)
    return finish(ids, scores, k_eff, k)


def _prepare(index: Any, allowed: Any) -> dict:
    """The live and allowed mask and its count (plus, filled in as searches need them, its
    FAISS selector and the gathered HNSW vectors). Kept on the index for the next search with
    the same read-only ``allowed`` array (the engine's cached filter masks are read-only) until
    the index's live set changes (every add or delete replaces ``index._alive``)."""
    alive = index._alive
    cached = getattr(index, "_filter_cache", None)
    if cached is not None and cached[0] is allowed and cached[1] is alive:
        return cached[2]
    mask = check_allowed(allowed, alive.size) & alive
    prep = {"mask": mask, "count": int(np.count_nonzero(mask))}
    if isinstance(allowed, np.ndarray) and not allowed.flags.writeable:
        index._filter_cache = (allowed, alive, prep)
    return prep


def hnsw_plan(ef_search: int, k: int, live: int, allowed: int, policy: str) -> tuple[int, bool]:
    """``(ef, exact)`` for a filtered HNSW search: the widened beam a graph walk would use and
    whether to score the allowed vectors exactly instead (see the module docstring)."""
    base = max(ef_search, k)
    wanted = math.ceil(base * (live / allowed) ** WIDEN_EXPONENT)
    ef = int(min(wanted, max(base, _MAX_EF)))
    if policy == "exact":
        return ef, True
    if policy == "graph":
        return ef, False
    return ef, wanted > ef or allowed <= max(EXACT_FLOOR, GRAPH_STEP_COST * ef)


def _params(faiss: Any, index: Any, ef: int | None, selector: Any, spread: float) -> Any:
    """Search parameters carrying the selector, with the HNSW beam ``ef`` or the IVF probes
    widened by ``spread`` (live / allowed); None for index types that take no selector."""
    if ef is not None:
        params = faiss.SearchParametersHNSW()
        params.efSearch = ef
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


def _storage(hnsw: Any) -> np.ndarray | None:
    """The (n, d) float32 vectors of an HNSW's flat storage, in place; None for other
    storages (SQ, PQ), whose vectors are reconstructed."""
    faiss = faiss_module()
    storage = faiss.downcast_index(hnsw.storage)
    if not isinstance(storage, faiss.IndexFlat):
        return None
    n, d = int(storage.ntotal), int(storage.d)
    return faiss.rev_swig_ptr(storage.get_xb(), n * d).reshape(n, d)


def _blocks(hnsw: Any, prep: dict):
    """``(rows, vectors)`` blocks covering the allowed rows in order (positions == ids: an
    HNSW's stored vectors are never removed); the whole subset at once, kept in ``prep``, when
    it fits in ``_CACHE_BYTES``."""
    if "vectors" in prep:
        yield prep["rows"], prep["vectors"]
        return
    rows = prep.get("rows")
    if rows is None:
        rows = prep["rows"] = np.flatnonzero(prep["mask"]).astype(np.int64)
    stored = _storage(hnsw)

    def gather(part: np.ndarray) -> np.ndarray:
        return stored[part] if stored is not None else hnsw.reconstruct_batch(part)

    if rows.size * int(hnsw.d) * 4 <= _CACHE_BYTES:
        vectors = prep["vectors"] = gather(rows)
        yield rows, vectors
        return
    for start in range(0, rows.size, _BLOCK):
        part = rows[start : start + _BLOCK]
        yield part, gather(part)


def _exact_subset(hnsw: Any, q: np.ndarray, k: int, prep: dict) -> SearchResult:
    """Score the allowed vectors of an HNSW index directly, block by block with a running
    top-``k`` per query; ranked score descending, id ascending, as FAISS does."""
    n_q = q.shape[0]
    best_ids = [np.zeros(0, dtype=np.int64)] * n_q
    best = [np.zeros(0, dtype=np.float32)] * n_q
    for rows, vectors in _blocks(hnsw, prep):
        scores = q @ vectors.T  # (n_q, block)
        for i in range(n_q):
            top = _top(scores[i], k)
            ids = np.concatenate([best_ids[i], rows[top]])
            s = np.concatenate([best[i], scores[i, top]])
            order = np.lexsort((ids, -s))[:k]
            best_ids[i], best[i] = ids[order], s[order]
    out = empty_result(n_q, k)
    for i in range(n_q):
        out.ids[i, : best_ids[i].size] = best_ids[i]
        out.scores[i, : best[i].size] = best[i]
    return out


def _top(s: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest of ``s`` and of everything tying the k-th (so that ties
    can go to the smaller id), unordered."""
    if k >= s.size:
        return np.arange(s.size)
    return np.flatnonzero(s >= np.partition(s, s.size - k)[s.size - k])
