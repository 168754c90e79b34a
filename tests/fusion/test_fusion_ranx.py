"""Parity with ``ranx.fusion`` for every method and normalisation that ranx also implements.

Randomised runs with distinct scores within each list and at least two hits per list (where ranx
and this package define min-max etc. the same way; ranx maps degenerate lists to 0, we do not).
ranx is a test dependency only. Its numba kernels compile on first use (tens of seconds,
cached afterwards), hence the ``slow`` mark.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import fusion

ranx = pytest.importorskip("ranx")
pytestmark = pytest.mark.slow

METHODS = {  # ours -> ranx
    "rrf": "rrf",
    "isr": "isr",
    "borda": "bordafuse",
    "wsum": "wsum",
    "combsum": "sum",
    "combmnz": "mnz",
    "combmax": "max",
    "combmin": "min",
    "combanz": "anz",
}
NORMS = {"minmax": "min-max", "zscore": "zmuv", "max": "max", "sum": "sum", "rank": "rank"}


def random_runs(seed: int, n_queries: int = 6, n_lists: int = 3) -> list[list[tuple]]:
    """Per query, per list: (ids, scores) with 2..20 distinct ids from 0..39, distinct scores."""
    rng = np.random.default_rng(seed)
    queries = []
    for _ in range(n_queries):
        lists = []
        for _ in range(n_lists):
            n = int(rng.integers(2, 21))
            ids = rng.choice(40, size=n, replace=False)
            scores = rng.permutation(n) + rng.random(n) * 0.5 + 0.1  # distinct, positive
            lists.append((ids, scores))
        queries.append(lists)
    return queries


def to_ranx(queries: list[list[tuple]], j: int):
    return ranx.Run(
        {
            f"q{i}": {str(d): float(s) for d, s in zip(*q[j], strict=True)}
            for i, q in enumerate(queries)
        }
    )


def assert_same(ours: list[fusion.FusionResult], theirs) -> None:
    for i, res in enumerate(ours):
        ranked = sorted(theirs.run[f"q{i}"].items(), key=lambda kv: -kv[1])
        their_scores = np.array([s for _, s in ranked])
        np.testing.assert_allclose(res.scores, their_scores, rtol=0, atol=1e-6)
        got = dict(zip(res.ids.tolist(), res.scores.tolist(), strict=True))
        for d, s in ranked:
            assert abs(got[int(d)] - s) <= 1e-6
        # identical rankings up to the order inside groups of (near-)tied scores
        ids = [int(d) for d, _ in ranked]
        start = 0
        for end in range(1, len(ids) + 1):
            if end == len(ids) or their_scores[end - 1] - their_scores[end] > 1e-9:
                assert set(res.ids[start:end].tolist()) == set(ids[start:end])
                start = end


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("method", ["rrf", "isr", "borda"])
def test_rank_methods_match_ranx(method: str, seed: int) -> None:
    queries = random_runs(seed)
    runs = [to_ranx(queries, j) for j in range(3)]
    theirs = ranx.fuse(runs, norm=None, method=METHODS[method])
    assert_same(fusion.fuse_batch(queries, method=method), theirs)


@pytest.mark.parametrize("norm", list(NORMS))
@pytest.mark.parametrize("method", ["wsum", "combsum", "combmnz", "combmax", "combmin", "combanz"])
def test_score_methods_match_ranx(method: str, norm: str) -> None:
    queries = random_runs(zlib.crc32(f"{method}/{norm}".encode()))
    runs = [to_ranx(queries, j) for j in range(3)]
    weights = [0.5, 0.3, 0.2]
    params = {"weights": weights} if method == "wsum" else {}
    theirs = ranx.fuse(runs, norm=NORMS[norm], method=METHODS[method], params=params)
    ours = fusion.fuse_batch(
        queries, method=method, norm=norm, weights=weights if method == "wsum" else None
    )
    assert_same(ours, theirs)


def test_raw_combsum_matches_ranx_without_normalisation() -> None:
    queries = random_runs(7)
    runs = [to_ranx(queries, j) for j in range(3)]
    theirs = ranx.fuse(runs, norm=None, method="sum")
    assert_same(fusion.fuse_batch(queries, method="combsum", norm="none"), theirs)
