"""FAISS dense-vector index with stable ids, deletion, training, thread control and persistence.

``DenseIndex`` wraps any FAISS factory string (``"Flat"``, ``"HNSW32"``, ``"IVF1024,Flat"``,
``"IVF1024,PQ48"``, ...) built for inner-product search, and adds what the engine needs on top:

* **Stable ids.** ``add`` assigns consecutive int64 ids starting at the number of vectors ever
  added; an id is never reused, even after ``delete``. FAISS stores exactly these ids (IVF
  indexes natively, every other type through an ``IndexIDMap``), so FAISS ids == our ids.
* **Deletion.** IVF indexes and flat-code indexes (Flat, PQ, SQ) drop the vectors. Graph
  indexes (HNSW) cannot remove, so deleted ids become tombstones filtered inside the FAISS
  search by an ``IDSelector`` (the graph still routes through them: rebuild the index once most
  of it is deleted). Other types (e.g. ``...,RFlat`` refine indexes) also keep tombstones, and
  their searches fetch ``k + #tombstones`` candidates and drop the deleted ones.
* **Undo.** ``checkpoint()`` opens a write that ``rollback(token)`` undoes completely, adds and
  deletes alike: while it is open, deletes are tombstones only (dropped physically by the next
  ``checkpoint()`` or ``settle()``, once the write is final), and the adds are removed again
  (IVF, flat codes) or, for graphs, which cannot remove, unlinked from their ids: the vectors
  stay in the graph as nameless "orphans" (id -1 in FAISS's id map), filtered like tombstones,
  and the ids are free for the next add.
* **Metric.** ``"ip"`` scores by raw inner product. ``"cosine"`` L2-normalises every stored and
  every query vector (on copies), then uses inner product; a zero vector stays zero and scores 0.
* **Training.** ``train(vectors)`` trains explicitly. Otherwise the first ``add`` trains on the
  vectors it is given, provided there are enough (IVF{n} needs >= n, PQ needs >= 256); too few
  raise a ``ValueError`` that says how many are needed. FAISS's polysemous training, which
  ``index_factory`` turns on for 8-bit PQ but which only serves polysemous search (off here),
  is switched off: it cost ~100 s for a 3,000-vector PQ8 on this 2-core machine.
* **Concurrency.** Any number of searches may run at once from several Python threads (FAISS
  releases the GIL while it searches). A write (``add``, ``delete``, ``train``) must not run
  concurrently with anything else on the same index (FAISS indexes are not safe to search while
  they change): :class:`hybrid.HybridRetriever` guarantees that with its readers-writer lock.
* **Threads.** ``threads`` (per index, or per ``add``/``train``/``search`` call) sets FAISS's
  OpenMP thread count for that call and restores the previous value afterwards. Caveat: FAISS's
  thread count is process-global, so two calls with different ``threads`` running concurrently
  in different Python threads will see each other's setting. Nothing is set at import.
* **Padding.** Results are ``(n_queries, k)``; rows with fewer hits are padded with ``PAD_ID``
  (-1) and ``PAD_SCORE`` (-inf) at the end, and a padding entry is never a hit.
* **Persistence.** ``save(path)`` writes ``index.faiss`` (``faiss.write_index``), ``state.npz``
  (live mask, tombstones) and ``meta.json`` (type ``"DenseIndex"``, format version 1, dimension,
  metric, factory, model name, search parameters). ``DenseIndex.load(path)`` restores it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from indexes import _dense_undo
from indexes._base import (
    PAD_ID,
    SearchResult,
    empty_result,
)
from indexes._dense_filter import FILTER_POLICIES, search_allowed
from indexes._dense_io import load_index, save_index
from indexes._dense_query import search_common, unit_rows
from indexes._faiss import check_threads, finish, stores_ids
from indexes._faiss import faiss_module as _faiss
from indexes._faiss import omp_threads as _omp_threads
from indexes._validate import check_positive_int, check_search_k, short, unique_ids

METRICS = ("ip", "cosine")


class DenseIndex:
    """Top-k inner-product / cosine search over float32 vectors with FAISS.

    Args:
        dim: vector dimension.
        metric: ``"ip"`` (inner product) or ``"cosine"`` (vectors normalised, then inner product).
        factory: a FAISS ``index_factory`` string without an ``IDMap`` prefix, e.g. ``"Flat"``,
            ``"HNSW32"``, ``"IVF1024,Flat"``, ``"IVF1024,PQ48"``.
        threads: FAISS threads for this index's calls (``None``: leave FAISS's setting alone).
        model_name: name of the model that produced the vectors; recorded when saved and used
            in error messages and to refuse queries from another model.
    """

    def __init__(
        self,
        dim: int,
        metric: str = "ip",
        factory: str = "Flat",
        threads: int | None = None,
        model_name: str | None = None,
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if not isinstance(metric, str) or metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {short(metric)}")
        if not isinstance(factory, str) or not factory.strip():
            raise ValueError(f"factory must be a FAISS index_factory string, got {factory!r}")
        if model_name is not None and not isinstance(model_name, str):
            raise TypeError(f"model_name must be a string or None, got {short(model_name)}")
        factory = factory.strip()
        if factory.upper().startswith("IDMAP"):
            raise ValueError(
                f"factory {factory!r}: leave out the IDMap prefix, DenseIndex maps ids itself"
            )
        self.dim = int(dim)
        self.metric = metric
        self.factory = factory
        self.threads = check_threads(threads)
        self.model_name = model_name
        faiss = _faiss()
        try:
            base = faiss.index_factory(self.dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:
            raise ValueError(
                f"FAISS cannot build factory {factory!r} for dim {self.dim} (examples: 'Flat', "
                f"'HNSW32', 'IVF1024,Flat', 'IVF1024,PQ48' with 48 dividing dim): "
                f"{str(exc).strip().splitlines()[-1]}"
            ) from exc
        self._requires_training = not base.is_trained
        self._index = base if stores_ids(faiss, base) else faiss.IndexIDMap(base)
        self._base = base  # the IDMap does not own it: keep it alive
        for part in self._parts():
            # index_factory turns on polysemous training for 8-bit PQ; it only serves
            # polysemous (Hamming-filtered) search, which is off, and costs minutes on 2 cores
            if getattr(part, "do_polysemous_training", False):
                part.do_polysemous_training = False
        self._alive = np.zeros(0, dtype=bool)  # _alive[i]: id i was added and not deleted
        self._tombstones = np.zeros(0, dtype=np.int64)  # deleted ids still inside FAISS
        self._count = 0  # live vectors
        self._orphans = 0  # vectors in FAISS that no id names (HNSW adds that were undone)
        self._pos: np.ndarray | None = None  # id -> FAISS position, when orphans shift them
        self._open = False  # inside checkpoint(): deletes are tombstones until settle()
        self._params: Any = None  # cached (bitmap, IDSelectorBitmap) over live ids
        self._filter_policy = "auto"

    # ------------------------------------------------------------------ properties

    def __len__(self) -> int:
        """Number of live (added and not deleted) vectors."""
        return self._count

    def __repr__(self) -> str:
        return (
            f"DenseIndex(dim={self.dim}, metric={self.metric!r}, factory={self.factory!r}, "
            f"model_name={self.model_name!r}, live={len(self)})"
        )

    @property
    def next_id(self) -> int:
        """The id the next added vector will get (= number of vectors ever added)."""
        return int(self._alive.size)

    @property
    def is_trained(self) -> bool:
        """Whether the FAISS index is trained (always true for Flat and HNSW)."""
        return bool(self._index.is_trained)

    def _parts(self) -> list[Any]:
        """The FAISS index and the sub-indexes inside it (IVF, pre-transformed, HNSW storage)."""
        faiss = _faiss()
        parts, todo = [], [self._index]
        while todo:
            part = faiss.downcast_index(todo.pop())
            parts.append(part)
            for attr in ("index", "storage", "base_index"):
                sub = getattr(part, attr, None)
                if isinstance(sub, faiss.Index):
                    todo.append(sub)
        ivf = faiss.try_extract_index_ivf(self._index)
        if ivf is not None:
            parts.append(faiss.downcast_index(ivf))
        return parts

    @property
    def min_train_size(self) -> int:
        """Fewest training vectors FAISS accepts for this factory (IVF{n}: n; PQ: 2^nbits)."""
        need = 1
        for part in self._parts():
            if hasattr(part, "nlist") and hasattr(part, "quantizer"):
                need = max(need, int(part.nlist))
            pq = getattr(part, "pq", None)
            if pq is not None:
                need = max(need, int(pq.ksub))
        return need

    def live_ids(self) -> np.ndarray:
        """Sorted int64 ids of the live vectors."""
        return np.flatnonzero(self._alive).astype(np.int64)

    @property
    def nprobe(self) -> int | None:
        """IVF lists visited per query (``None`` for non-IVF indexes). Settable."""
        ivf = _faiss().try_extract_index_ivf(self._index)
        return None if ivf is None else int(ivf.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        ivf = _faiss().try_extract_index_ivf(self._index)
        if ivf is None:
            raise ValueError(f"nprobe applies to IVF indexes, not {self.factory!r}")
        ivf.nprobe = check_positive_int(value, "nprobe")

    @property
    def ef_search(self) -> int | None:
        """HNSW search beam width (``None`` for non-HNSW indexes). Settable."""
        hnsw = self._hnsw()
        return None if hnsw is None else int(hnsw.hnsw.efSearch)

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        hnsw = self._hnsw()
        if hnsw is None:
            raise ValueError(f"ef_search applies to HNSW indexes, not {self.factory!r}")
        hnsw.hnsw.efSearch = check_positive_int(value, "ef_search")

    @property
    def filter_policy(self) -> str:
        """How a filtered HNSW search runs (``search(allowed=...)``). Settable.

        ``"auto"`` (default): whichever of the two below is estimated cheaper for the number of
        allowed vectors; ``"exact"``: score every allowed vector (exact, cost grows with their
        number); ``"graph"``: walk the graph with an ID selector and ``efSearch`` widened by
        live / allowed (approximate). See :mod:`indexes._dense_filter`. Other index types
        ignore it.
        """
        return self._filter_policy

    @filter_policy.setter
    def filter_policy(self, value: str) -> None:
        if not isinstance(value, str) or value not in FILTER_POLICIES:
            raise ValueError(f"filter_policy must be one of {FILTER_POLICIES}, got {short(value)}")
        self._filter_policy = value

    def _can_remove(self, faiss: Any) -> bool:
        """Physical removal keeps ids right only for IVF (ids stored) and for flat-code indexes
        under the IDMap (which compact in order); anything else gets tombstones."""
        if not isinstance(self._index, faiss.IndexIDMap):
            return True  # an IVF storing our ids
        return isinstance(faiss.downcast_index(self._index.index), faiss.IndexFlatCodes)

    def _hnsw(self) -> Any:
        faiss = _faiss()
        inner = faiss.downcast_index(self._index)
        if isinstance(inner, faiss.IndexIDMap):
            inner = faiss.downcast_index(inner.index)
        return inner if hasattr(inner, "hnsw") else None

    # ------------------------------------------------------------------ validation

    def _where(self) -> str:
        return f" (index model: {self.model_name!r})" if self.model_name else ""

    def _as_matrix(self, vectors: Any, what: str, model_name: str | None = None) -> np.ndarray:
        """Validate to a C-contiguous float32 (n, dim) matrix; cosine rows normalised (copy)."""
        if (  # what encoders return: one check instead of the general path's dozen calls
            isinstance(vectors, np.ndarray)
            and vectors.dtype == np.float32
            and vectors.ndim == 2
            and vectors.shape[1] == self.dim
            and vectors.flags.c_contiguous
            and np.isfinite(vectors).all()
        ):
            return unit_rows(vectors) if self.metric == "cosine" else vectors
        try:
            raw = vectors if isinstance(vectors, np.ndarray) else np.asarray(vectors)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"{what} must be a numeric array of shape (n, {self.dim}), got {short(vectors)}"
            ) from exc
        if raw.dtype.kind not in "iuf":
            raise ValueError(
                f"{what} must be a real-valued array of shape (n, {self.dim}), got dtype "
                f"{raw.dtype}: {short(vectors)}"
            )
        if raw.dtype.kind == "f" and raw.dtype.itemsize > 4 and raw.size:
            with np.errstate(invalid="ignore"):
                big = np.abs(raw) > np.finfo(np.float32).max
            if big.any():
                rows = np.flatnonzero(big.reshape(-1, big.shape[-1] if big.ndim else 1).any(1))
                raise ValueError(
                    f"{what} hold values beyond float32's range (+-3.4e38) in row(s) "
                    f"{rows[:10].tolist()}; scale them down"
                )
        arr = raw.astype(np.float32, copy=False)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        if arr.ndim != 2:
            raise ValueError(f"{what} must have shape (n, {self.dim}), got shape {arr.shape}")
        if arr.shape[1] != self.dim:
            other = f" from model {model_name!r}" if model_name else ""
            raise ValueError(
                f"dimension mismatch: {what}{other} have dimension {arr.shape[1]}, but this "
                f"index holds {self.dim}-d vectors{self._where()}; encode with the same model"
            )
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)
            raise ValueError(
                f"{what} contain NaN or infinite values in {rows.size} row(s), "
                f"first rows: {rows[:10].tolist()}"
            )
        return unit_rows(arr) if self.metric == "cosine" else np.ascontiguousarray(arr)

    def _threads(self, threads: int | None) -> int | None:
        return check_threads(threads) if threads is not None else self.threads

    # ------------------------------------------------------------------ building

    def train(self, vectors: Any, threads: int | None = None) -> None:
        """Train the FAISS index (IVF centroids, PQ codebooks); a no-op for Flat and HNSW.

        Training twice is refused: FAISS would keep the first centroids.
        """
        x = self._as_matrix(vectors, "training vectors")
        if not self._requires_training:
            return
        if self._index.is_trained:
            raise ValueError(f"{self.factory!r} index is already trained")
        self._train(x, threads)

    def _train(self, x: np.ndarray, threads: int | None) -> None:
        need = self.min_train_size
        if x.shape[0] < need:
            raise ValueError(
                f"factory {self.factory!r} needs at least {need} training vectors, got "
                f"{x.shape[0]}; add more vectors at once, call train() with a larger sample, "
                f"or use a smaller factory (e.g. fewer IVF lists or 'Flat')"
            )
        faiss = _faiss()
        with _omp_threads(faiss, self._threads(threads)):
            try:
                self._index.train(x)
            except RuntimeError as exc:
                raise ValueError(
                    f"FAISS could not train {self.factory!r} on {x.shape[0]} vectors: "
                    f"{str(exc).strip().splitlines()[-1]}"
                ) from exc

    def add(self, vectors: Any, threads: int | None = None) -> np.ndarray:
        """Add an (n, dim) float32 array; returns the int64 ids assigned (consecutive).

        Trains the index on these vectors first if it needs training and is untrained.
        Rejects NaN / infinite values and wrong dimensions before changing anything.
        """
        x = self._as_matrix(vectors, "vectors")
        n = x.shape[0]
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        if not self._index.is_trained:
            self._train(x, threads)
        ids = np.arange(self.next_id, self.next_id + n, dtype=np.int64)
        faiss = _faiss()
        first = int(self._index.ntotal)
        with _omp_threads(faiss, self._threads(threads)):
            self._index.add_with_ids(x, ids)
        if self._pos is not None:
            self._pos = np.concatenate([self._pos, np.arange(first, first + n, dtype=np.int64)])
        self._alive = np.concatenate([self._alive, np.ones(n, dtype=bool)])
        self._count += n
        self._params = None
        return ids

    def delete(self, ids: Any) -> int:
        """Delete vectors by id; returns how many were deleted.

        Unknown or already deleted ids raise ``KeyError`` and nothing is deleted.
        """
        arr = unique_ids(ids)
        if arr.size == 0:
            return 0
        valid = (arr >= 0) & (arr < self.next_id)
        valid[valid] = self._alive[arr[valid]]
        if not valid.all():
            missing = arr[~valid]
            raise KeyError(
                f"{missing.size} id(s) not in the index (unknown or already deleted), "
                f"first: {missing[:10].tolist()}"
            )
        faiss = _faiss()
        if self._can_remove(faiss) and not self._open:
            removed = self._index.remove_ids(faiss.IDSelectorBatch(arr))
            if removed != arr.size:  # pragma: no cover - FAISS invariant
                raise RuntimeError(f"FAISS removed {removed} of {arr.size} ids")
        else:  # graphs (HNSW), refine indexes, or a write in progress: tombstones, filtered
            self._tombstones = np.union1d(self._tombstones, arr)
        alive = self._alive.copy()  # copy on write: checkpoints keep the old array
        alive[arr] = False
        self._alive = alive
        self._count -= int(arr.size)
        self._params = None
        return int(arr.size)

    def checkpoint(self) -> tuple:
        """Open a write: an opaque token of the current state, for :meth:`rollback` (O(1)).
        The write opened before (if any) is final: its deletes are dropped physically first."""
        return _dense_undo.checkpoint(self)

    def settle(self) -> None:
        """Close the open write: drop its deleted vectors from removable indexes (IVF, flat
        codes); until then they are tombstones, filtered at search time."""
        _dense_undo.settle(self)

    def rollback(self, token: tuple) -> None:
        """Undo every add and delete since :meth:`checkpoint` returned ``token`` (see
        :mod:`indexes._dense_undo`: deletes were tombstones; adds are removed, or, in a graph,
        which cannot remove, unlinked from their ids)."""
        _dense_undo.rollback(self, token)

    def _positions(self, ids: np.ndarray) -> np.ndarray:
        """FAISS storage positions of ``ids`` (equal to the ids unless orphans shift them)."""
        return ids if self._pos is None else self._pos[ids]

    # ------------------------------------------------------------------ search

    def _search_params(self, faiss: Any) -> Any:
        """HNSW SearchParameters filtering out tombstones; None without tombstones; False for
        other tombstoned types, which are over-fetched and filtered instead."""
        if self._tombstones.size == 0 and self._orphans == 0:
            return None
        hnsw = self._hnsw()
        if hnsw is None:
            return False  # other tombstoned types (refine, ...) may not take a selector
        cached = self._params  # one reference: another search may replace the attribute
        if cached is None:  # the bitmap selector, rebuilt after add / delete
            bitmap = np.packbits(self._alive, bitorder="little")
            cached = (bitmap, faiss.IDSelectorBitmap(bitmap.size, faiss.swig_ptr(bitmap)))
            self._params = cached
        params = faiss.SearchParametersHNSW()
        params.efSearch = int(hnsw.hnsw.efSearch)
        params.sel = cached[1]
        params._keep = cached  # the bitmap and selector must outlive the FAISS call
        return params

    def search(
        self,
        queries: Any,
        k: int,
        threads: int | None = None,
        model_name: str | None = None,
        allowed: np.ndarray | None = None,
    ) -> SearchResult:
        """Top-``k`` ids and scores (higher is better) for each query row.

        ``queries`` is (n, dim) or a single (dim,) vector (gives one row). ``model_name``, when
        given and the index has one too, must match it: a query from another model is refused
        even when the dimensions happen to agree. ``allowed`` (a bool or uint8 mask over ids,
        one entry per id ever assigned) restricts the search to the vectors it marks, inside
        FAISS (see :mod:`indexes._dense_filter`): exact for Flat, and for HNSW when scoring the
        allowed vectors directly is estimated cheaper than a graph walk (``filter_policy``);
        otherwise approximate with a widened beam (HNSW ``efSearch``) or more probed lists (IVF
        ``nprobe``).
        """
        if allowed is None and threads is None and model_name is None:
            found = search_common(self, queries, k)  # the common case, in fewer steps
            if found is not None:
                return found
        k = check_search_k(k, len(self))
        threads = self._threads(threads)
        q = self._as_matrix(queries, "query vectors", model_name)
        if model_name and self.model_name and model_name != self.model_name:
            raise ValueError(
                f"query vectors come from model {model_name!r} but this index was built with "
                f"{self.model_name!r}"
            )
        n_q = q.shape[0]
        n_stored = int(self._index.ntotal)
        if allowed is not None:
            return search_allowed(self, q, k, allowed, threads)
        if n_q == 0 or len(self) == 0:
            return empty_result(n_q, k)
        k_eff = min(k, n_stored)
        faiss = _faiss()
        params = self._search_params(faiss)
        if params is None and threads is None:  # the common case, without a context manager
            scores, ids = self._index.search(q, k_eff)
            return finish(ids, scores, k_eff, k)
        with _omp_threads(faiss, threads):
            if params is None:
                scores, ids = self._index.search(q, k_eff)
            elif params is not False:
                scores, ids = self._index.search(q, k_eff, params=params)
            else:  # no selector support: over-fetch by the tombstone count, then filter
                k_eff = min(k, len(self))
                k_fetch = min(n_stored, k_eff + self._tombstones.size + self._orphans)
                scores, ids = self._index.search(q, k_fetch)
                dead = np.isin(ids, self._tombstones)
                ids[dead] = PAD_ID
        return finish(ids, scores, k_eff, k)

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path) -> Path:
        """Write the index to folder ``path`` (created if needed); returns the path."""
        return save_index(self, path)

    @classmethod
    def load(cls, path: str | Path, threads: int | None = None) -> DenseIndex:
        """Open an index written by ``save``; ``IndexFormatError`` if ``path`` is not one."""
        return load_index(cls, path, threads)
