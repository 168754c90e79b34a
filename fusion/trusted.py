"""A trusted entry for the padded lists an engine's indexes produce: :func:`fuse_trusted`.

:func:`fusion.fuse_padded` validates whatever a user hands it (any array-likes, any dtypes,
weights and evidence as lists), which costs a search more holding the GIL than its fusion
kernel takes without it. :func:`fuse_trusted` takes the fast road only for what indexes return
(2-D int64 ids and float32/float64 scores of equal shapes, positive finite weights, evidence in
[0, 1]): the same checks done with a few array calls, then the same compiled kernel
(:func:`fusion._kernels.fuse_lists`) with the same arguments as :func:`fusion.fuse_padded`.
Anything else (another dtype, an invalid entry, a method fused step by step, an overflow) goes
through :func:`fusion.fuse_padded` itself, so results and errors are always exactly its.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import methods as _m
from ._core import FusionResult
from ._kernels import NORM_ZSCORE, entries_valid, fuse_lists
from ._options import RANK_METHODS, resolve_options
from ._scale import scale_rows
from .api import _BLOCK_ENTRIES, fuse_padded

_NORM_CODES = {"none": 0, "zscore": NORM_ZSCORE}
_SCORE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)
_FLOAT64 = np.dtype(np.float64)
_TOP_MAX = int(np.iinfo(np.int64).max)


def fuse_trusted(
    lists: Sequence[tuple[np.ndarray, np.ndarray]],
    method: str = "rrf",
    weights: Sequence[float] | None = None,
    norm: str | None = None,
    k: float = 60,
    top: int | None = None,
    *,
    depth: int | None = None,
    evidence: np.ndarray | None = None,
) -> list[FusionResult]:
    """:func:`fusion.fuse_padded` (same arguments but ``bounds``, same results, same errors),
    with fewer calls holding the GIL for lists as indexes produce them."""
    fast = _arrays(lists)
    if fast is not None and method in _m.PER_LIST:
        out = _fuse(lists, fast, method, weights, norm, k, top, depth, evidence)
        if out is not None:
            return out
    return fuse_padded(lists, method, weights, norm, k, top, depth=depth, evidence=evidence)


def _arrays(lists: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, list[int]] | None:
    """The lists side by side (int64 ids, float64 scores) and their widths, when every list is
    a valid pair of 2-D arrays as indexes produce them; None otherwise."""
    if not isinstance(lists, list | tuple) or not lists:
        return None
    n_q = None
    for pair in lists:
        if not isinstance(pair, tuple) or len(pair) != 2:
            return None
        ids, scores = pair
        if not (isinstance(ids, np.ndarray) and isinstance(scores, np.ndarray)):
            return None
        if ids.ndim != 2 or ids.shape != scores.shape or ids.dtype != _INT64:
            return None
        if scores.dtype not in _SCORE_DTYPES or (n_q is not None and ids.shape[0] != n_q):
            return None
        n_q = ids.shape[0]
    if len(lists) == 1:
        ids = np.ascontiguousarray(lists[0][0])
        scores = np.ascontiguousarray(lists[0][1], dtype=np.float64)
    else:
        ids = np.concatenate([p[0] for p in lists], axis=1)
        scores = np.concatenate([p[1] for p in lists], axis=1, dtype=np.float64)
    if not entries_valid(ids, scores):  # fuse_padded names the list and the entry
        return None
    return ids, scores, [p[0].shape[1] for p in lists]


def _checked_weights(weights: Any, n_lists: int) -> np.ndarray | None:
    """Positive finite per-list weights as float64, None for anything else."""
    if weights is None:
        return np.ones(n_lists)
    if not isinstance(weights, list | tuple) or len(weights) != n_lists:
        return None
    for x in weights:
        if type(x) is not float or not (x > 0 and math.isfinite(x)):
            return None
    return np.array(weights, dtype=np.float64)


def _fuse(lists, fast, method, weights, norm, k, top, depth, evidence) -> list | None:
    """The fused results, or None where :func:`fusion.fuse_padded` must decide."""
    ids, scores, widths = fast
    n_lists = len(lists)
    n_q = ids.shape[0]
    norm = resolve_options(method, norm, k, None, n_lists, top)
    if method not in RANK_METHODS and norm not in _NORM_CODES:
        return None
    if depth is not None:
        if type(depth) is not int or depth < 1:
            return None
        depth = min(depth, _TOP_MAX)
    if top is not None:
        if type(top) is not int:
            return None
        top = min(top, _TOP_MAX)
    w = _checked_weights(weights, n_lists)
    if w is None:
        return None
    if evidence is not None:
        if method != "adaptive" or not isinstance(evidence, np.ndarray):
            return None
        if evidence.dtype != _FLOAT64 or evidence.shape != (n_q, n_lists):
            return None
        w_rows, in_range, everywhere = scale_rows(w[None], evidence)
        if not (in_range and everywhere):  # bad evidence, or a list left out for some query
            return None
    else:
        w_rows = np.repeat(w[None], n_q, axis=0)
    if max(1, _BLOCK_ENTRIES // max(sum(widths), 1)) < n_q:
        return None  # fused in several blocks
    return _kernel(ids, scores, widths, norm, method, depth, w_rows, n_lists, k, top)


def _kernel(ids, scores, widths, norm, method, depth, w_rows, n_lists, k, top) -> list | None:
    """One :func:`fusion._kernels.fuse_lists` call, as :func:`fusion.api._fuse_raw` makes it;
    None when a statistic overflowed."""
    spec = _m.PER_LIST[method]
    starts = np.array([0, *itertools.accumulate(widths)], dtype=np.int64)
    ok, *fields, keep = fuse_lists(
        ids,
        scores,
        starts,
        _NORM_CODES.get(norm, 0),
        -1 if depth is None else depth,
        w_rows,
        np.arange(n_lists, dtype=np.int64),
        n_lists,
        spec.uses == "rank",
        spec.term,
        spec.count_power,
        float(k) if method == "rrf" else 0.0,
        -1 if top is None else top,
    )
    if not ok:
        return None
    if ids.shape[0] == 1:
        return [FusionResult(*fields, weights=w_rows[0])]
    cuts = [0, *np.cumsum(keep).tolist()]
    return [
        FusionResult(*(a[lo:hi] for a in fields), weights=w_rows[q])
        for q, (lo, hi) in enumerate(itertools.pairwise(cuts))
    ]
