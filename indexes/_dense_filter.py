"""Filtered FAISS search for :class:`indexes.dense.DenseIndex` (private).

The allowed ids reach FAISS as an ``IDSelectorBitmap`` in the search parameters, so FAISS
considers only those vectors (an ``IndexIDMap`` translates its internal positions to our ids
before asking the selector):

- **Flat** (and other flat-code indexes: PQ, SQ): every allowed vector is scored, the rest are
  skipped: exact, the unfiltered ranking with the other ids removed. A plain Flat index whose
  allowed vectors fit in ``_CACHE_BYTES`` gathers them and scores them in one matrix product
  (FAISS's selector scan checks every stored id and scores one vector at a time: at 1M
  vectors, 0.1% allowed, 3.6 ms per query).
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
    ``_MAX_EF`` (a capped beam loses recall), or when ``allowed <= graph_step_cost(dim) * ef``,
    the estimated break-even: one beam slot of a graph walk costs about as much as scoring
    ``graph_step_cost(dim)`` vectors in one pass (69 at 384-d, 121 at 128-d). Filtered HNSW
    is slowest, relative to unfiltered, where the two costs cross.

  Exact scoring reads the stored vectors of the allowed rows (flat storage in place) in blocks
  of ``_BLOCK`` rows, so its memory stays bounded; when the caller's ``allowed`` array is
  read-only (the engine's cached filter masks are) and the gathered vectors fit in
  ``_CACHE_BYTES``, they are kept for the next search with the same array, until the index
  changes.
- **IVF**: ``nprobe`` is raised to ``nprobe * live / allowed`` (at most every list), so about
  as many allowed vectors are scanned as an unfiltered search scans. A plain ``IVF{n},Flat``
  whose allowed vectors are no more than an unfiltered search scans (and fit in
  ``_CACHE_BYTES``) reads them from its lists once per filter and scores them exactly.
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
                int(hnsw.hnsw.efSearch), k_eff, len(index), m, index.filter_policy, index.dim
            )
            if exact:
                return _exact_subset(_Vectors(faiss, index, hnsw), q, k, prep)
        elif m * index.dim * 4 <= _CACHE_BYTES and _is_flat(faiss, index):
            return _exact_subset(_Vectors(faiss, index, None), q, k, prep)
        elif m * index.dim * 4 <= _CACHE_BYTES and _ivf_exact(faiss, index, m):
            if "vectors" not in prep:
                prep["rows"], prep["vectors"] = _ivf_gather(faiss, index, prep["mask"])
            return _exact_subset(_Vectors(faiss, index, None), q, k, prep)
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


def graph_step_cost(dim: int) -> float:
    """How many ``dim``-d vectors one exact pass scores in the time a graph walk spends per
    beam slot. Measured, one thread, ``benchmarks/filters.py dense``: a slot costs 3.0-4.5 us
    on 200k x 384-d and 1M x 128-d graphs (memory latency more than arithmetic), a gathered
    vector 63 ns at 384-d and 30 ns at 128-d; modelled as ``(2000 + 7.5 d)`` ns per slot
    against ``(1.5 + 0.18 d)`` ns per vector: 69 at 384-d, 121 at 128-d, 484 at 16-d."""
    return (2000 + 7.5 * dim) / (1.5 + 0.18 * dim)


def hnsw_plan(
    ef_search: int, k: int, live: int, allowed: int, policy: str, dim: int
) -> tuple[int, bool]:
    """``(ef, exact)`` for a filtered HNSW search: the widened beam a graph walk would use and
    whether to score the allowed vectors exactly instead (see the module docstring)."""
    base = max(ef_search, k)
    wanted = math.ceil(base * (live / allowed) ** WIDEN_EXPONENT)
    ef = int(min(wanted, max(base, _MAX_EF)))
    if policy == "exact":
        return ef, True
    if policy == "graph":
        return ef, False
    return ef, wanted > ef or allowed <= max(EXACT_FLOOR, graph_step_cost(dim) * ef)


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


def _is_flat(faiss: Any, index: Any) -> bool:
    """Whether ``index`` keeps its vectors in a plain ``IndexFlat`` under its ``IndexIDMap``."""
    if not isinstance(index._index, faiss.IndexIDMap):
        return False
    return isinstance(faiss.downcast_index(index._index.index), faiss.IndexFlat)


def _ivf_exact(faiss: Any, index: Any, allowed: int) -> bool:
    """Whether an IVF index (plain ``IVF{n},Flat``) should score the allowed vectors exactly:
    when they are no more than an unfiltered search scans (``nprobe`` lists of average size);
    a probed search would then need nearly every list."""
    ivf = faiss.downcast_index(index._index)
    if not isinstance(ivf, faiss.IndexIVFFlat):
        return False
    return allowed * int(ivf.nlist) <= int(ivf.nprobe) * len(index)


def _ivf_gather(faiss: Any, index: Any, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Allowed ids (ascending) and their vectors, read from an ``IndexIVFFlat``'s lists."""
    ivf = faiss.downcast_index(index._index)
    lists, d = ivf.invlists, int(ivf.d)
    ids_parts, vec_parts = [], []
    for i in range(int(ivf.nlist)):
        size = int(lists.list_size(i))
        if size == 0:
            continue
        ids = faiss.rev_swig_ptr(lists.get_ids(i), size)
        keep = mask[ids]
        if keep.any():
            codes = faiss.rev_swig_ptr(lists.get_codes(i), size * d * 4)
            ids_parts.append(ids[keep].copy())
            vec_parts.append(codes.view(np.float32).reshape(size, d)[keep])
    if not ids_parts:
        return np.zeros(0, np.int64), np.zeros((0, d), np.float32)
    ids = np.concatenate(ids_parts)
    order = np.argsort(ids, kind="stable")
    return ids[order], np.concatenate(vec_parts)[order]


class _Vectors:
    """The stored vectors of an HNSW (position == id: its vectors are never removed; undone
    adds leave orphans, which ``DenseIndex._positions`` maps around) or of a
    Flat index under an ``IndexIDMap`` (positions follow the id map, which removals compact
    in order), read in place from flat storage, else reconstructed (SQ, PQ storages)."""

    def __init__(self, faiss: Any, index: Any, hnsw: Any) -> None:
        self.hnsw = hnsw
        self.index = index
        storage = None
        if hnsw is not None:
            storage = faiss.downcast_index(hnsw.storage)
        elif isinstance(index._index, faiss.IndexIDMap):
            storage = faiss.downcast_index(index._index.index)
        self.array = None
        if isinstance(storage, faiss.IndexFlat):
            n, d = int(storage.ntotal), int(storage.d)
            self.array = faiss.rev_swig_ptr(storage.get_xb(), n * d).reshape(n, d)
        self.faiss = faiss

    def positions(self, ids: np.ndarray) -> np.ndarray:
        if self.hnsw is not None:  # position == id, unless undone adds left orphans
            return self.index._positions(ids)
        id_map = self.faiss.vector_to_array(self.index._index.id_map)
        return np.searchsorted(id_map, ids)

    def gather(self, positions: np.ndarray) -> np.ndarray:
        if self.array is not None:
            return self.array[positions]
        return self.hnsw.reconstruct_batch(positions)


def _blocks(vectors: _Vectors, prep: dict):
    """``(ids, vectors)`` blocks covering the allowed ids in order; the whole subset at once,
    kept in ``prep``, when it fits in ``_CACHE_BYTES``."""
    if "vectors" in prep:
        yield prep["rows"], prep["vectors"]
        return
    rows = prep.get("rows")
    if rows is None:
        rows = prep["rows"] = np.flatnonzero(prep["mask"]).astype(np.int64)
    positions = vectors.positions(rows)
    if rows.size * int(vectors.index.dim) * 4 <= _CACHE_BYTES:
        subset = prep["vectors"] = vectors.gather(positions)
        yield rows, subset
        return
    for start in range(0, rows.size, _BLOCK):
        yield rows[start : start + _BLOCK], vectors.gather(positions[start : start + _BLOCK])


def _exact_subset(vectors: _Vectors, q: np.ndarray, k: int, prep: dict) -> SearchResult:
    """Score the allowed vectors directly with FAISS's own brute-force kernel, so scores and
    the order of equal scores are those of a Flat search over them (the kernel switches to
    BLAS from 20 queries, as a Flat search does). Subsets beyond ``_CACHE_BYTES`` go block by
    block with a running top-``k`` per query, equal scores across blocks by id."""
    faiss = vectors.faiss
    n_q = q.shape[0]
    best_ids = best = None
    for rows, block in _blocks(vectors, prep):
        scores, pos = faiss.knn(q, block, min(k, rows.size), metric=faiss.METRIC_INNER_PRODUCT)
        ids = rows[pos]
        if best is not None:
            ids = np.concatenate([best_ids, ids], axis=1)
            scores = np.concatenate([best, scores], axis=1)
            order = _order(ids, scores, k)
            ids = np.take_along_axis(ids, order, axis=1)
            scores = np.take_along_axis(scores, order, axis=1)
        best_ids, best = ids, scores
    out = empty_result(n_q, k)
    if best is not None:
        out.ids[:, : best.shape[1]] = best_ids
        out.scores[:, : best.shape[1]] = best
    return out


def _order(ids: np.ndarray, scores: np.ndarray, k: int) -> np.ndarray:
    """Per row, the positions of the ``k`` best: score descending, then id ascending."""
    return np.stack([np.lexsort((i, -s))[:k] for i, s in zip(ids, scores, strict=True)])
