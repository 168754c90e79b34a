"""The fusion methods and normalisations by name, and the checks of every option a fusion
call takes (method, norm, RRF k, bounds, depth, weights, evidence), with messages that name the
argument, the value and what is accepted."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import normalize as _n
from ._validate import check_real, check_sequence, real_array, short

RANK_METHODS = ("rrf", "isr", "borda")
"""Methods that use only ranks (``norm`` does not apply)."""

SCORE_METHODS = ("wsum", "combsum", "combmnz", "combmax", "combmin", "combanz")
"""Methods that combine normalised scores (``norm`` defaults to ``"minmax"``)."""

ADAPTIVE = "adaptive"
"""Evidence-weighted sum of z-scores (:func:`fusion.methods.adaptive`): a score method whose
weights are scaled per query by each list's ``evidence`` (``norm`` defaults to ``"zscore"``)."""

METHODS = RANK_METHODS + SCORE_METHODS + (ADAPTIVE,)

NORM_FUNCS = {
    "minmax": _n.minmax_norm,
    "zscore": _n.zscore_norm,
    "max": _n.max_norm,
    "sum": _n.sum_norm,
    "rank": _n.rank_norm,
    "dbsf": _n.dbsf_norm,
    "bounded": None,  # needs per-list bounds, see _normalize
    "none": _n.identity_norm,
}
NORMS = tuple(NORM_FUNCS)
"""Normalisation names for score methods. ``"bounded"`` needs ``bounds``."""

Bounds = Sequence[tuple[float, float] | None] | None


def resolve_options(
    method: str, norm: str | None, k: float, bounds: Bounds, n_lists: int, top: Any
) -> str | None:
    """Check one fusion call's options; returns the norm that applies (the method's default
    when ``norm`` is None, None for rank methods)."""
    if not isinstance(method, str):
        raise TypeError(
            f"method must be a string, one of {', '.join(METHODS)}; got {short(method)}"
        )
    if norm is not None and not isinstance(norm, str):
        raise TypeError(
            f"norm must be a string or None, one of {', '.join(NORMS)}; got {short(norm)}"
        )
    if method not in METHODS:
        raise ValueError(f"unknown fusion method {method!r}; valid: {', '.join(METHODS)}")
    if method in RANK_METHODS:
        if norm is not None:
            raise ValueError(
                f"norm={norm!r} does not apply to the rank-based method {method!r} (it uses "
                f"only ranks); pass norm=None, or a score method: {', '.join(SCORE_METHODS)}"
            )
    else:
        if norm is None:
            norm = "zscore" if method == ADAPTIVE else "minmax"
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
    if bounds is not None and norm != "bounded":
        raise ValueError("bounds only apply with norm='bounded'")
    if bounds is not None:
        check_sequence(bounds, "bounds", "a list with one (lo, hi) pair or None per list")
    if norm == "bounded":
        if bounds is None or len(bounds) != n_lists:
            raise ValueError(
                f"norm='bounded' needs bounds: one (lo, hi) or None per list ({n_lists} lists)"
            )
    if method == "rrf":
        check_real(k, "RRF k", lo=0.0)
    is_int = isinstance(top, int | np.integer) and not isinstance(top, bool)
    if top is not None and not (is_int and top >= 1):
        raise ValueError(f"top must be a positive integer or None, got {top!r}")
    return norm


def check_depth(depth: Any) -> int | None:
    is_int = isinstance(depth, int | np.integer) and not isinstance(depth, bool)
    if depth is not None and not (is_int and depth >= 1):
        raise ValueError(f"depth must be a positive integer or None, got {depth!r}")
    return None if depth is None else int(depth)


def check_weights(weights: Any, n_lists: int, n_q: int) -> np.ndarray:
    """Per-list ``(L,)`` or per-query ``(n_q, L)`` weights, validated, as float64."""
    if weights is None:
        return np.ones(n_lists)
    w = real_array(weights, "weights")
    if w.shape not in ((n_lists,), (n_q, n_lists)):
        raise ValueError(
            f"weights must have one value per list ({n_lists}), or shape (n_queries, n_lists) = "
            f"({n_q}, {n_lists}), got {w.shape}"
        )
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        bad = w[~(np.isfinite(w) & (w >= 0))]
        raise ValueError(f"weights must be finite and >= 0, got {bad[:3].tolist()}")
    if w.ndim == 1 and not np.any(w > 0):
        raise ValueError("at least one weight must be positive")
    if w.ndim == 2:
        dead = np.flatnonzero(~np.any(w > 0, axis=1))
        if dead.size:
            raise ValueError(
                f"at least one weight must be positive for every query; query {int(dead[0])}"
                f" has all-zero weights ({dead.size} such queries)"
            )
    return w


def check_evidence(evidence: Any, method: str, n_lists: int, n_q: int) -> np.ndarray | None:
    if evidence is None:
        return None
    if method != ADAPTIVE:
        raise ValueError(f"evidence only applies to method={ADAPTIVE!r}, not {method!r}")
    e = real_array(evidence, "evidence")
    if e.ndim == 1 and n_q == 1:
        e = e[None, :]
    if e.shape != (n_q, n_lists):
        raise ValueError(
            f"evidence must have shape (n_queries, n_lists) = ({n_q}, {n_lists}), got {e.shape}"
        )
    if not np.all(np.isfinite(e)) or np.any(e < 0) or np.any(e > 1):
        raise ValueError("evidence values must be finite numbers in [0, 1]")
    return e


def check_options(method: str, norm: str | None = None, k: float = 60) -> str | None:
    """Validate a method / norm / RRF-k choice without fusing; returns the norm that applies.

    Lets callers (an engine's configuration, a CLI) fail early with the same messages
    :func:`fuse` would give.
    """
    return resolve_options(method, norm, k, None, 1, None)
