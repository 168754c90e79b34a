"""FAISS helpers shared by :mod:`indexes.dense` and :mod:`indexes._dense_filter` (private):
the lazy import, the per-call OpenMP thread count and the shaping of FAISS's output."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from indexes._base import PAD_ID, PAD_SCORE, SearchResult, empty_result


def faiss_module() -> Any:
    """The ``faiss`` module, or an ``ImportError`` with the install hint."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "DenseIndex needs FAISS: pip install 'splade-hybrid[models]' (or faiss-cpu / faiss-gpu)"
        ) from exc
    return faiss


@contextmanager
def omp_threads(faiss: Any, threads: int | None) -> Iterator[None]:
    """Set FAISS's (process-global) OpenMP thread count for the block, then restore it."""
    if threads is None:
        yield
        return
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(threads))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def finish(ids: np.ndarray, scores: np.ndarray, k_eff: int, k: int) -> SearchResult:
    """FAISS output as a :class:`SearchResult`: padding (id -1) moved to the end of each row
    with ``PAD_SCORE``, ``k_eff`` columns kept, then padded out to ``k``."""
    n_q = ids.shape[0]
    ids = ids.astype(np.int64, copy=False)
    scores = scores.astype(np.float32, copy=False)
    if k_eff == k == ids.shape[1] and (ids.size == 0 or ids.min() >= 0):  # full rows, no padding
        return SearchResult(np.ascontiguousarray(ids), np.ascontiguousarray(scores))
    pad = ids < 0
    if pad.any():
        # move padding to the end of each row, keeping hit order, and give it PAD_SCORE
        order = np.argsort(pad, axis=1, kind="stable")
        ids = np.take_along_axis(ids, order, axis=1)
        scores = np.take_along_axis(scores, order, axis=1)
        pad = np.take_along_axis(pad, order, axis=1)
        ids[pad] = PAD_ID
        scores[pad] = PAD_SCORE
    ids, scores = ids[:, :k_eff], scores[:, :k_eff]
    if k_eff < k:
        out = empty_result(n_q, k)
        out.ids[:, :k_eff] = ids
        out.scores[:, :k_eff] = scores
        return out
    return SearchResult(np.ascontiguousarray(ids), np.ascontiguousarray(scores))


def check_threads(threads: int | None) -> int | None:
    """A FAISS thread count as given: None (FAISS's default) or a positive integer."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return int(threads)


def stores_ids(faiss: Any, base: Any) -> bool:
    """Whether ``base`` stores arbitrary ids itself: an IVF, possibly behind a pre-transform."""
    inner = faiss.downcast_index(base)
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    return isinstance(inner, faiss.IndexIVF)
