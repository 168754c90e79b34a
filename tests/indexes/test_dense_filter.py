"""Filtered DenseIndex search: the HNSW policy (exact scoring or a widened graph walk), its
recall against exact filtered search, the blocked exact path, and the per-mask cache."""

from __future__ import annotations

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from indexes import DenseIndex, IndexCorruptedError  # noqa: E402
from indexes import _dense_filter as df  # noqa: E402
from indexes._dense_filter import hnsw_plan  # noqa: E402


def clustered(
    n: int, n_queries: int, dim: int = 32, clusters: int = 50, seed: int = 0, scale: float = 1.0
):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32) * scale
    x = centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim)).astype(np.float32)
    q = centres[rng.integers(0, clusters, n_queries)]
    q = q + rng.standard_normal((n_queries, dim)).astype(np.float32)
    return x.astype(np.float32), q.astype(np.float32)


def exact_filtered(x: np.ndarray, q: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    rows = np.flatnonzero(allowed)
    scores = q @ x[rows].T
    return rows[np.argsort(-scores, axis=1, kind="stable")[:, :k]]


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(np.intersect1d(f, t)) / t.size for f, t in zip(found, truth, strict=True)])
    )


# ------------------------------------------------------------------------------------ plan


def test_graph_step_cost():
    assert df.graph_step_cost(384) == pytest.approx(4880 / 70.62)  # 69.1
    assert df.graph_step_cost(128) == pytest.approx(2960 / 24.54)  # 120.6


def test_plan_hand_worked_values():
    # 1M live, 384-d (one beam slot ~ 69.1 vectors), efSearch 64, k 10: the beam is widened
    # by (live / allowed) ** 1.2
    assert hnsw_plan(64, 10, 1_000_000, 500_000, "auto", 384) == (
        148,
        False,
    )  # 64 * 2.297; 500k > 10,227
    assert hnsw_plan(64, 10, 1_000_000, 100_000, "auto", 384) == (
        1015,
        False,
    )  # 64 * 15.85; > 70,139
    assert hnsw_plan(64, 10, 1_000_000, 50_000, "auto", 384) == (
        2331,
        True,
    )  # 64 * 36.41; <= 161,077
    # the beam would pass _MAX_EF (64 * 109.3 = 6,996 > 4,096): exact, however many are allowed
    assert hnsw_plan(64, 10, 1_000_000, 20_000, "auto", 384) == (4096, True)
    # tiny allowed sets are always exact; k above efSearch widens from k
    assert hnsw_plan(16, 10, 8_000, 4_000, "auto", 384) == (37, True)  # 16 * 2.297 = 36.8
    assert hnsw_plan(16, 100, 100_000, 50_000, "auto", 384) == (230, False)  # 100 * 2.297
    # forced policies keep the same beam
    assert hnsw_plan(64, 10, 1_000_000, 100_000, "exact", 384) == (1015, True)
    assert hnsw_plan(64, 10, 1_000_000, 20_000, "graph", 384) == (4096, False)
    assert hnsw_plan(64, 10, 1_000_000, 1_000_000, "graph", 384) == (64, False)


def test_filter_policy_is_checked_and_saved(tmp_path):
    index = DenseIndex(8, factory="HNSW8")
    assert index.filter_policy == "auto"
    with pytest.raises(ValueError, match="filter_policy must be one of .*'graph'.*got 'fast'"):
        index.filter_policy = "fast"
    index.filter_policy = "graph"
    index.add(np.eye(8, dtype=np.float32))
    index.save(tmp_path / "d")
    assert DenseIndex.load(tmp_path / "d").filter_policy == "graph"
    meta = (tmp_path / "d" / "meta.json").read_text().replace('"graph"', '"nope"')
    (tmp_path / "d" / "meta.json").write_text(meta)
    with pytest.raises(IndexCorruptedError, match="filter_policy must be one of"):
        DenseIndex.load(tmp_path / "d")


# ------------------------------------------------------------------------------------ recall


@pytest.fixture(scope="module")
def hnsw_data():
    x, q = clustered(6000, 60)
    index = DenseIndex(32, factory="HNSW16")
    assert len(x) > df.EXACT_FLOOR  # else "auto" is always exact
    index.add(x)
    index.ef_search = 16
    truth = exact_filtered(x, q, np.ones(len(x), bool), 10)
    unfiltered = recall(index.search(q, 10).ids, truth)
    return x, q, index, unfiltered


@pytest.mark.parametrize("selectivity", [0.02, 0.1, 0.3, 0.6])
def test_graph_walk_recall_at_least_unfiltered(hnsw_data, selectivity):
    """The widened beam keeps filtered recall at or above the unfiltered recall (0.95 here at
    efSearch 16); the beam alone (efSearch 16) gets 0.24 at 2% and 0.73 at 10% allowed."""
    x, q, index, unfiltered = hnsw_data
    allowed = np.random.default_rng(1).random(len(x)) < selectivity
    truth = exact_filtered(x, q, allowed, 10)
    index.filter_policy = "graph"
    got = index.search(q, 10, allowed=allowed)
    assert allowed[got.ids].all() and (got.ids >= 0).all()
    assert recall(got.ids, truth) >= unfiltered, (selectivity, recall(got.ids, truth))


@pytest.mark.parametrize("selectivity", [0.02, 0.1, 0.3, 0.6, 0.8])
def test_auto_picks_a_branch_by_cost_and_keeps_recall(hnsw_data, selectivity, monkeypatch):
    """With the exact floor off and the graph made cheap enough to be chosen at this size,
    "auto" scores small allowed sets exactly (equal to exact filtered search) and walks the
    graph for large ones (recall >= unfiltered)."""
    x, q, index, unfiltered = hnsw_data
    monkeypatch.setattr(df, "EXACT_FLOOR", 0)  # and a slot as dear as 40 vectors, not 308
    monkeypatch.setattr(df, "graph_step_cost", lambda dim: 40.0)
    allowed = np.random.default_rng(2).random(len(x)) < selectivity
    m = int(allowed.sum())
    truth = exact_filtered(x, q, allowed, 10)
    index.filter_policy = "auto"
    got = index.search(q, 10, allowed=allowed).ids
    ef, exact = hnsw_plan(16, 10, len(x), m, "auto", 32)
    assert exact == (m <= df.graph_step_cost(32) * ef)
    assert exact == (selectivity <= 0.3)  # ~120, 600, 1,800 allowed: exact; ~3,600, 4,800: graph
    if exact:
        assert np.array_equal(got, truth)
    else:
        assert recall(got, truth) >= unfiltered


def test_auto_below_the_floor_is_exact(hnsw_data):
    x, q, index, _ = hnsw_data
    index.filter_policy = "auto"
    for selectivity in [0.001, 0.05, 0.3, 0.6]:  # 6 to ~3,600 allowed: under EXACT_FLOOR
        allowed = np.random.default_rng(3).random(len(x)) < selectivity
        got = index.search(q, 10, allowed=allowed).ids
        truth = exact_filtered(x, q, allowed, 10)
        assert np.array_equal(got[:, : truth.shape[1]], truth), selectivity
        assert (got[:, truth.shape[1] :] == -1).all()


# ------------------------------------------------------------------------------------ exact path


def test_exact_path_in_blocks_equals_one_pass(monkeypatch):
    """Subsets larger than the cache limit are scored block by block with a running top-k:
    the same hits and scores as scoring everything at once (equal scores across blocks go to
    the smaller id; in one pass they keep FAISS's order)."""
    x, q = clustered(3000, 12, dim=8)
    x[100] = x[7]  # a tie: id 7 must come first
    q[0] = x[7] * 5
    index = DenseIndex(8, factory="HNSW8")
    index.add(x)
    index.filter_policy = "exact"
    allowed = np.ones(3000, bool)
    allowed[::3] = False
    allowed[[7, 100]] = True
    allowed.flags.writeable = False
    whole = index.search(q, 15, allowed=allowed)
    assert "vectors" in index._filter_cache[2]
    monkeypatch.setattr(df, "_CACHE_BYTES", 0)
    monkeypatch.setattr(df, "_BLOCK", 97)
    del index._filter_cache
    blocked = index.search(q, 15, allowed=allowed)
    assert "vectors" not in index._filter_cache[2]
    for a, b in zip(whole.ids, blocked.ids, strict=True):
        assert sorted(a) == sorted(b)
    np.testing.assert_allclose(whole.scores, blocked.scores, rtol=1e-5)
    assert blocked.ids[0, :2].tolist() == [7, 100]
    assert sorted(whole.ids[0, :2]) == [7, 100]
    truth = exact_filtered(x, q, allowed, 15)
    assert np.array_equal(blocked.ids, truth)


@pytest.mark.parametrize("factory", ["Flat", "HNSW8"])
def test_cached_mask_follows_deletes_and_adds(factory):
    """A read-only mask's prepared state is reused, but never after the live set changes."""
    x, q = clustered(2000, 1, dim=8)
    index = DenseIndex(8, factory=factory)
    index.add(x)
    allowed = np.zeros(2000, bool)
    allowed[::2] = True
    allowed.flags.writeable = False
    first = index.search(q, 5, allowed=allowed).ids[0]
    prep = index._filter_cache[2]
    assert index.search(q, 5, allowed=allowed).ids[0].tolist() == first.tolist()
    assert index._filter_cache[2] is prep  # reused
    index.delete([int(first[0])])
    after = index.search(q, 5, allowed=allowed).ids[0]
    assert int(first[0]) not in after and after[:4].tolist() == first[1:].tolist()
    index.add(x[:1] * 0)  # the mask no longer covers every id: refused, not misread
    with pytest.raises(ValueError, match="allowed has 2000 entries; the index has assigned 2001"):
        index.search(q, 5, allowed=allowed)


def test_writable_masks_are_not_cached():
    x, q = clustered(500, 1, dim=8)
    index = DenseIndex(8, factory="HNSW8")
    index.add(x)
    allowed = np.ones(500, bool)
    index.search(q, 3, allowed=allowed)
    assert getattr(index, "_filter_cache", None) is None
    top = index.search(q, 1, allowed=allowed).ids[0, 0]
    allowed[top] = False  # the caller changes its array: the next search sees it
    assert index.search(q, 1, allowed=allowed).ids[0, 0] != top


def test_ivf_scores_small_allowed_sets_exactly():
    """An IVF,Flat whose allowed set is no larger than an unfiltered search scans (nprobe
    lists of average size: 4 * 3000 / 16 = 750 here) reads those vectors from its lists and
    returns the exact filtered top-k, deletes included; larger sets are probed."""
    x, q = clustered(3000, 8, dim=16)
    index = DenseIndex(16, factory="IVF16,Flat")
    index.add(x)
    index.nprobe = 4
    index.delete(np.arange(0, 3000, 7))
    live = np.ones(3000, bool)
    live[::7] = False
    for selectivity, exact in [(0.02, True), (0.2, True), (0.6, False)]:
        allowed = np.random.default_rng(5).random(3000) < selectivity
        allowed.flags.writeable = False
        got = index.search(q, 10, allowed=allowed)
        assert ("vectors" in index._filter_cache[2]) == exact, selectivity
        assert (allowed & live)[got.ids].all()
        if exact:
            truth = exact_filtered(x, q, allowed & live, 10)
            assert np.array_equal(got.ids, truth), selectivity
            rows = np.arange(8)[:, None]
            np.testing.assert_allclose(got.scores, (q @ x.T)[rows, truth], rtol=1e-5)
