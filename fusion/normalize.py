"""Score normalisations: one pure function each, applied along the last axis.

Every function takes ``scores`` of shape ``(n,)`` (one list) or ``(n_queries, depth)`` (one list
for many queries) where **NaN marks an absent entry** (padding). Statistics are taken over the
present entries of each row only; absent entries stay NaN in the output. Scores are "higher is
better". Nothing here divides by zero: each degenerate case (one hit, all-equal scores) has a
documented value, chosen so that a list that carries no spread information does not silently
become a perfect 1.0 (see each docstring).
"""

from __future__ import annotations

import numpy as np

from ._kernels import row_moments, zscore_rows
from ._validate import check_real, real_array

__all__ = [
    "bounded_minmax",
    "dbsf_norm",
    "identity_norm",
    "max_norm",
    "minmax_norm",
    "rank_norm",
    "sum_norm",
    "zscore_norm",
]

DEGENERATE_MINMAX = 0.5
"""Value min-max (and DBSF) give every present entry of a list whose scores are all equal."""


_SHRINK = 2.0**-600
"""Rows whose statistics overflow float64 (scores near +-1e308) are multiplied by this exact
power of two first: every normalisation here except ``none`` is scale-invariant, so the result
is the same as with exact arithmetic, and nothing becomes inf or NaN."""


def _as_float(scores: np.ndarray) -> np.ndarray:
    x = real_array(scores, "scores")
    if x.ndim == 0:
        raise ValueError("scores must be a 1-D or 2-D array (NaN marks absent), got a scalar")
    return x


def _shrunk(x: np.ndarray, overflowed: np.ndarray) -> np.ndarray | None:
    """``x`` with the rows flagged in ``overflowed`` (shape ``(..., 1)``) scaled down, or None
    when no row overflowed. An infinite score is refused (it has no normalised value)."""
    if not overflowed.any():
        return None
    if np.isinf(x).any():
        raise ValueError("scores must be finite numbers (NaN marks an absent entry), got inf")
    return np.where(overflowed, x * _SHRINK, x)


def _rows(x: np.ndarray) -> np.ndarray:
    """``x`` as C-ordered 2-D rows (one row per list of a query) for the compiled steps."""
    return np.ascontiguousarray(x.reshape(-1, x.shape[-1]))


def _count(x: np.ndarray) -> np.ndarray:
    return np.sum(~np.isnan(x), axis=-1, keepdims=True)


def _lo_hi(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # fmin/fmax ignore NaN; an all-NaN row gives NaN (and is masked out by the callers).
    return (
        np.fmin.reduce(x, axis=-1, keepdims=True),
        np.fmax.reduce(x, axis=-1, keepdims=True),
    )


def _mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's mean and population std over its present entries (``(..., 1)`` each), by
    the same compiled pass as :func:`zscore_norm` (:func:`fusion._kernels.row_moments`)."""
    mean, std = row_moments(_rows(x))
    shape = (*x.shape[:-1], 1)
    return mean.reshape(shape), std.reshape(shape)


def _finish(out: np.ndarray, x: np.ndarray) -> np.ndarray:
    out[np.isnan(x)] = np.nan
    return out


def minmax_norm(scores: np.ndarray) -> np.ndarray:
    """Min-max normalisation ``(s - min) / (max - min)`` to [0, 1].

    Source: the "Standard" normalisation of Lee 1997 ("Analyses of multiple evidence
    combination", SIGIR) and Montague & Aslam 2001 ("Relevance score normalization for
    metasearch", CIKM); ranx ``min_max_norm``.

    Degenerate range (one hit, or all scores equal): every present entry maps to **0.5**, the
    midpoint of the range. Such a list tells us the documents matched but nothing about how well,
    so it must neither jump to 1.0 (as ``x / max(x)`` style guards do) nor vanish to 0.0 (as
    ranx's ``1e-9`` denominator does). Use :func:`bounded_minmax` when the range is known.
    """
    x = _as_float(scores)
    if x.shape[-1] == 0:
        return x.copy()
    lo, hi = _lo_hi(x)
    with np.errstate(over="ignore"):
        span = hi - lo
    shrunk = _shrunk(x, np.isinf(span))
    if shrunk is not None:
        return minmax_norm(shrunk)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), DEGENERATE_MINMAX)
    return _finish(out, x)


def bounded_minmax(
    scores: np.ndarray, lo: float, hi: float, *, tolerance: float = 1e-6
) -> np.ndarray:
    """Min-max with the retriever's known theoretical score range ``[lo, hi]``.

    ``(s - lo) / (hi - lo)``: unlike :func:`minmax_norm` the result does not depend on the other
    hits, so a lone hit keeps its absolute standing (a cosine of 0.9 in ``[-1, 1]`` maps to 0.95
    whether it is alone or not). Related: the theoretical min-max ("TMM") of Bruch, Gai & Ingber
    2023 ("An analysis of fusion functions for hybrid retrieval", ACM TOIS), which fixes the
    lower end at the theoretical minimum; here both ends are the declared bounds.

    Scores outside ``[lo, hi]`` by more than ``tolerance * (hi - lo)`` raise ``ValueError`` (the
    declared bounds are wrong); smaller excursions (float rounding) are clipped.
    """
    lo, hi = check_real(lo, "lo (bound)"), check_real(hi, "hi (bound)")
    tolerance = check_real(tolerance, "tolerance", lo=0.0)
    if not lo < hi:
        raise ValueError(f"bounds must be finite with lo < hi, got ({lo}, {hi})")
    x = _as_float(scores)
    if not np.isfinite(hi - lo):  # bounds near +-1e308: halve everything (exact)
        x, lo, hi = x * 0.5, lo * 0.5, hi * 0.5
    slack = tolerance * (hi - lo)
    present = x[~np.isnan(x)]
    if present.size and (present.min() < lo - slack or present.max() > hi + slack):
        raise ValueError(
            f"scores in [{present.min()}, {present.max()}] fall outside the declared "
            f"bounds ({lo}, {hi}); fix the bounds or use norm='minmax'"
        )
    out = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return _finish(out, x)


def zscore_norm(scores: np.ndarray) -> np.ndarray:
    """Z-score ``(s - mean) / std`` (population std), "ZMUV" of Montague & Aslam 2001.

    Matches ranx ``zmuv_norm``. All-equal scores (or one hit): std is 0 and every present entry
    maps to **0.0**, the list mean, i.e. the same value an absent document contributes.
    """
    x = _as_float(scores)
    if x.shape[-1] == 0:
        return x.copy()
    out, overflowed = zscore_rows(_rows(x))
    shrunk = _shrunk(x, overflowed.reshape(*x.shape[:-1], 1))
    if shrunk is not None:
        return zscore_norm(shrunk)
    return out.reshape(x.shape)


def dbsf_norm(scores: np.ndarray) -> np.ndarray:
    """Distribution-based score fusion normalisation: min-max with limits ``mean +- 3 std``.

    ``(s - (mean - 3 std)) / (6 std)``, population std, not clipped (a score beyond 3 std keeps
    its order). Source: Mazzeschi 2023, "Distribution-based score fusion"; Qdrant's ``dbsf``
    fusion (Qdrant 1.11). All-equal scores (or one hit): **0.5**, where the mean maps.
    """
    x = _as_float(scores)
    if x.shape[-1] == 0:
        return x.copy()
    mean, std = _mean_std(x)
    shrunk = _shrunk(x, ~np.isfinite(mean) | ~np.isfinite(std))
    if shrunk is not None:
        return dbsf_norm(shrunk)
    with np.errstate(invalid="ignore", divide="ignore"):
        safe = np.where(std > 0, std, 1.0)
        out = np.where(std > 0, (x - (mean - 3.0 * std)) / (6.0 * safe), DEGENERATE_MINMAX)
    return _finish(out, x)


def max_norm(scores: np.ndarray) -> np.ndarray:
    """Scale by the maximum: ``s / max`` (Montague & Aslam 2001; ranx ``max_norm``).

    Only defined for non-negative scores (BM25, SPLADE dot products): a negative present score
    raises ``ValueError``; use ``minmax`` or ``bounded`` for cosine-like scores. Zero is a true
    zero here, so a lone positive hit maps to 1.0 *by definition* (it is the maximum), not as a
    division guard; a list of only zeros maps to 0.0.
    """
    x = _as_float(scores)
    if x.shape[-1] == 0:
        return x.copy()
    if np.any(x < 0):
        raise ValueError("norm='max' needs non-negative scores; use 'minmax' or 'bounded'")
    _, hi = _lo_hi(x)
    _shrunk(x, np.isinf(hi))  # refuses inf (a finite maximum cannot overflow x / max)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(hi > 0, x / np.where(hi > 0, hi, 1.0), 0.0)
    return _finish(out, x)


def sum_norm(scores: np.ndarray) -> np.ndarray:
    """Shift the minimum to 0, then scale so the list sums to 1 (Montague & Aslam 2001 "Sum").

    ``(s - min) / sum(s - min)``; matches ranx ``sum_norm``. All-equal scores (or one hit): every
    present entry gets the uniform share **1 / n** (so the list still sums to 1; for a lone hit
    that is 1.0 because it holds the whole mass, as in any list where one entry stands out).
    """
    x = _as_float(scores)
    if x.shape[-1] == 0:
        return x.copy()
    lo, _ = _lo_hi(x)
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = x - lo
        total = np.nansum(shifted, axis=-1, keepdims=True)
    shrunk = _shrunk(x, ~np.isfinite(total))
    if shrunk is not None:
        return sum_norm(shrunk)
    n = np.maximum(_count(x), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, shifted / np.where(total > 0, total, 1.0), 1.0 / n)
    return _finish(out, x)


def rank_norm(scores: np.ndarray) -> np.ndarray:
    """Rank-based normalisation ``1 - (rank - 1) / n`` (ranx ``rank_norm``; Renda & Straccia 2003).

    ``rank`` is 1-based by descending score, ties broken by position; ``n`` is the number of
    present entries. The best entry maps to 1.0 and the last to ``1 / n`` (so a one-hit list
    gives 1.0: its rank is 1 of 1, which is the definition, not a guard). Scores only set order.
    """
    x = _as_float(scores)
    if x.shape[-1] == 0:
        return x.copy()
    order = np.argsort(np.where(np.isnan(x), np.inf, -x), axis=-1, kind="stable")
    ranks = np.empty(x.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, np.arange(1, x.shape[-1] + 1, dtype=np.float64), axis=-1)
    n = np.maximum(_count(x), 1)
    return _finish(1.0 - (ranks - 1.0) / n, x)


def identity_norm(scores: np.ndarray) -> np.ndarray:
    """No normalisation: raw scores (for already comparable scores, or classic raw CombSUM)."""
    return _as_float(scores).copy()
