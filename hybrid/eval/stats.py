"""Significance: paired tests of per-query values (by scipy.stats) and bootstrap intervals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TESTS = ("t-test", "bootstrap", "randomization")


def bootstrap_ci(
    values: np.ndarray, alpha: float = 0.05, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of per-query values (NaN dropped).

    The percentile bootstrap of a mean is a few lines of numpy (the same interval as
    ``scipy.stats.bootstrap(..., method="percentile")``); kept here so that every ``hybrid
    tune`` does not pay for importing ``scipy.stats`` (seconds on a busy machine).
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 1000):
        stop = min(n_resamples, start + 1000)
        idx = rng.integers(0, values.size, size=(stop - start, values.size))
        means[start:stop] = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class PairedTest:
    """Result of comparing per-query scores ``a`` and ``b`` (same queries, same order)."""

    method: str
    mean_a: float
    mean_b: float
    diff: float
    """mean(b - a)."""
    p_value: float
    ci: tuple[float, float]
    """Confidence interval of the mean difference (bootstrap for every method)."""
    n: int

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def paired_test(
    a: np.ndarray,
    b: np.ndarray,
    method: str = "t-test",
    n_resamples: int = 10_000,
    alpha: float = 0.05,
    seed: int = 0,
) -> PairedTest:
    """Two-sided paired test of ``b`` against ``a``: ``"t-test"`` (:func:`scipy.stats.ttest_rel`),
    ``"bootstrap"`` (the mean difference shifted to 0, resampled by
    :func:`scipy.stats.bootstrap`) or ``"randomization"`` (Fisher's sign flipping,
    :func:`scipy.stats.permutation_test`; Smucker et al. 2007 recommend it for IR)."""
    from scipy import stats

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"a and b must be 1-d per-query values of one shape, got {a.shape}, {b.shape}"
        )
    if method not in TESTS:
        raise ValueError(f"unknown test {method!r}; valid: {', '.join(TESTS)}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    d = b - a
    n = d.size
    if n < 2:
        raise ValueError("a paired test needs at least 2 queries")
    rng = np.random.default_rng(seed)
    if np.allclose(d, d[0]):  # no spread: every test is decided by the sign of the difference
        p = 1.0 if np.isclose(d[0], 0) else 0.0
    elif method == "t-test":
        p = float(stats.ttest_rel(b, a).pvalue)
    elif method == "bootstrap":
        res = stats.bootstrap(
            (d - d.mean(),), np.mean, n_resamples=n_resamples, method="percentile", rng=rng
        )
        null = res.bootstrap_distribution
        p = float((np.sum(np.abs(null) >= abs(d.mean()) - 1e-12) + 1) / (n_resamples + 1))
    else:
        res = stats.permutation_test(
            (d,), np.mean, permutation_type="samples", n_resamples=n_resamples, rng=rng
        )
        p = float(res.pvalue)
    ci = bootstrap_ci(d, alpha, n_resamples, seed)
    return PairedTest(method, float(a.mean()), float(b.mean()), float(d.mean()), p, ci, n)
