"""A trusted entry for the padded lists an engine's indexes produce: :func:`fuse_trusted`.

:func:`fusion.fuse_padded` validates whatever a user hands it (any array-likes, any dtypes,
weights and evidence as lists), which costs a search more holding the GIL than its fusion
kernel takes without it. :func:`fuse_trusted` takes the fast road only for what indexes return
(2-D int64 ids and float32/float64 scores of equal shapes, positive finite weights, evidence in
[0, 1]): the lists side by side, then one GIL-free call (:func:`fusion._scale.fuse_checked`)
that checks their entries, scales the weights by the evidence and runs the same kernel
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
from ._kernels import NORM_ZSCORE
from ._options import RANK_METHODS, resolve_options
from ._scale import FUSED, fuse_checked
from .api import _BLOCK_ENTRIES, fuse_padded

_NORM_CODES = {"none": 0, "zscore": NORM_ZSCORE}
_SCORE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)
_FLOAT64 = np.dtype(np.float64)
_TOP_MAX = int(np.iinfo(np.int64).max)
_NO_EVIDENCE = np.empty((0, 0))


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


def _arrays(lists: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]] | None:
    """The lists side by side (int64 ids, float64 scores) and their widths, when every list is
    a pair of 2-D arrays as indexes produce them (their entries are checked in the kernel);
    None otherwise."""
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
    return ids, scores, tuple(p[0].shape[1] for p in lists)


_INVALID = object()
_RESOLVED: dict[tuple, Any] = {}  # checked options -> the norm that applies (a few entries)
_STARTS: dict[tuple[int, ...], np.ndarray] = {}  # list widths -> first columns (never written)


def _resolved(method: Any, norm: Any, k: Any, n_lists: int, top: Any) -> Any:
    """:func:`resolve_options` (no bounds) remembered per distinct options; ``_INVALID`` where
    it raises."""
    key = (type(method), method, type(norm), norm, type(k), k, n_lists, type(top), top)
    try:
        return _RESOLVED[key]
    except KeyError:
        pass
    except TypeError:  # unhashable options: check them every time
        key = None
    try:
        out = resolve_options(method, norm, k, None, n_lists, top)
    except (TypeError, ValueError):
        out = _INVALID
    if key is not None and len(_RESOLVED) < 256:
        _RESOLVED[key] = out
    return out


def _checked_weights(weights: Any, n_lists: int) -> np.ndarray | None:
    """Positive finite per-list weights as a float64 ``(1, n_lists)`` row, None otherwise."""
    if weights is None:
        return np.ones((1, n_lists))
    if not isinstance(weights, list | tuple) or len(weights) != n_lists:
        return None
    for x in weights:
        if type(x) is not float or not (x > 0 and math.isfinite(x)):
            return None
    return np.array([weights], dtype=np.float64)


def _fuse(lists, fast, method, weights, norm, k, top, depth, evidence) -> list | None:
    """The fused results, or None where :func:`fusion.fuse_padded` must decide (an invalid
    entry, bad evidence, a list left out for some query, an overflow, several blocks)."""
    ids, scores, widths = fast
    n_lists = len(lists)
    n_q = ids.shape[0]
    norm = _resolved(method, norm, k, n_lists, top)
    if norm is _INVALID:
        return None  # fuse_padded raises it, after checking the lists first
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
    if max(1, _BLOCK_ENTRIES // max(sum(widths), 1)) < n_q:
        return None  # fused in several blocks
    spec = _m.PER_LIST[method]
    starts = _STARTS.get(widths)
    if starts is None:
        starts = np.array([0, *itertools.accumulate(widths)], dtype=np.int64)
        if len(_STARTS) < 256:
            _STARTS[widths] = starts
    status, w_rows, *fields, keep = fuse_checked(
        ids,
        scores,
        starts,
        _NORM_CODES.get(norm, 0),
        -1 if depth is None else depth,
        w,
        _NO_EVIDENCE if evidence is None else evidence,
        evidence is not None,
        spec.uses == "rank",
        spec.term,
        spec.count_power,
        float(k) if method == "rrf" else 0.0,  # what fuse_padded passes (only RRF reads k)
        -1 if top is None else top,
    )
    if status != FUSED:
        return None
    if n_q == 1:
        return [FusionResult(*fields, weights=w_rows[0])]
    cuts = [0, *np.cumsum(keep).tolist()]
    return [
        FusionResult(*(a[lo:hi] for a in fields), weights=w_rows[q])
        for q, (lo, hi) in enumerate(itertools.pairwise(cuts))
    ]
