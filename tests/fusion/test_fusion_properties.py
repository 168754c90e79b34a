"""Fusion property tests (hypothesis) against a plain-Python reference implementation."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import fusion
from fusion import fuse

SETTINGS = settings(max_examples=40, deadline=None)

# ----------------------------------------------------------------------------- reference
# Written from the definitions in plain Python (dicts, sorted, math), independently of the
# vectorised code: per list keep the best score per id, rank by (score desc, id asc),
# normalise, combine, sort by (fused desc, id asc).


def _ref_norm(norm: str, scores: dict[int, float], ranks: dict[int, int]) -> dict[int, float]:
    vals = list(scores.values())
    n = len(vals)
    lo, hi = min(vals), max(vals)
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / n)
    out = {}
    for d, s in scores.items():
        if norm == "minmax":
            out[d] = (s - lo) / (hi - lo) if hi > lo else 0.5
        elif norm == "zscore":
            out[d] = (s - mean) / std if std > 0 else 0.0
        elif norm == "dbsf":
            out[d] = (s - (mean - 3 * std)) / (6 * std) if std > 0 else 0.5
        elif norm == "max":
            out[d] = s / hi if hi > 0 else 0.0
        elif norm == "sum":
            total = sum(v - lo for v in vals)
            out[d] = (s - lo) / total if total > 0 else 1 / n
        elif norm == "rank":
            out[d] = 1 - (ranks[d] - 1) / n
        else:
            out[d] = s
    return out


def reference(rankings, method="rrf", weights=None, norm=None, k=60):
    weights = [1.0] * len(rankings) if weights is None else weights
    lists = []  # per list: {id: (rank, score)}; removed lists are empty
    for (ids, scores), w in zip(rankings, weights, strict=True):
        best: dict[int, float] = {}
        for d, s in zip(ids.tolist(), scores.tolist(), strict=True):
            if d != -1 and (d not in best or s > best[d]):
                best[d] = s
        order = sorted(best, key=lambda d: (-best[d], d)) if w > 0 else []
        lists.append({d: (r + 1, best[d]) for r, d in enumerate(order)})
    union = sorted(set().union(*lists))
    norm = norm or ("zscore" if method == "adaptive" else "minmax")
    normed = [
        _ref_norm(norm, {d: v[1] for d, v in lst.items()}, {d: v[0] for d, v in lst.items()})
        if lst
        else {}
        for lst in lists
    ]
    fused = {}
    for d in union:
        m = sum(d in lst for lst in lists)
        if method == "rrf":
            parts = [
                w / (k + lst[d][0]) if d in lst else 0.0
                for lst, w in zip(lists, weights, strict=True)
            ]
        elif method == "isr":
            parts = [
                m * w / lst[d][0] ** 2 if d in lst else 0.0
                for lst, w in zip(lists, weights, strict=True)
            ]
        elif method == "borda":
            c = len(union)
            parts = [
                w * ((c - lst[d][0] + 1) if d in lst else (c - len(lst) + 1) / 2) if w > 0 else 0.0
                for lst, w in zip(lists, weights, strict=True)
            ]
        else:
            vals = [w * nl[d] for nl, w in zip(normed, weights, strict=True) if d in nl]
            parts = {
                "wsum": vals,
                "adaptive": vals,  # without evidence: the weighted sum (default norm z-score)
                "combsum": vals,
                "combmnz": [m * v for v in vals],
                "combanz": [v / m for v in vals],
                "combmax": [max(vals)],
                "combmin": [min(vals)],
            }[method]
        fused[d] = sum(parts)
    return fused


# ----------------------------------------------------------------------------- strategies
def ranking(max_len: int = 8, ids: int = 12):
    scores = st.one_of(
        st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]),  # many exact ties
        st.floats(0.0, 10.0, allow_nan=False, allow_infinity=False),
    )
    return st.lists(st.tuples(st.integers(0, ids), scores), max_size=max_len).map(
        lambda pairs: (
            np.array([p[0] for p in pairs], dtype=np.int64),
            np.array([p[1] for p in pairs], dtype=np.float64),
        )
    )


rankings_st = st.lists(ranking(), min_size=1, max_size=3)
weights_st = st.floats(0.0, 3.0, allow_nan=False)


def _norm_for(method: str, norm: str) -> str | None:
    return None if method in fusion.RANK_METHODS else norm


# ----------------------------------------------------------------------------- properties
@SETTINGS
@given(
    rankings=rankings_st,
    method=st.sampled_from(fusion.METHODS),
    norm=st.sampled_from(["minmax", "zscore", "max", "sum", "rank", "dbsf", "none"]),
    data=st.data(),
)
def test_matches_reference_and_is_sorted_permutation_of_union(rankings, method, norm, data):
    weights = data.draw(st.lists(weights_st, min_size=len(rankings), max_size=len(rankings)))
    if not any(w > 0 for w in weights):
        weights[0] = 1.0
    norm = _norm_for(method, norm)
    res = fuse(rankings, method=method, weights=weights, norm=norm)
    expected = reference(rankings, method, weights, norm)
    # a permutation of the union of the kept lists
    assert sorted(res.ids.tolist()) == sorted(expected)
    assert len(set(res.ids.tolist())) == len(res.ids)
    got = dict(zip(res.ids.tolist(), res.scores.tolist(), strict=True))
    for d, s in expected.items():
        assert math.isclose(got[d], s, rel_tol=1e-9, abs_tol=1e-9), (d, got[d], s)
    # sorted by score descending, exact ties by ascending id
    for i in range(len(res.ids) - 1):
        s1, s2, d1, d2 = res.scores[i], res.scores[i + 1], res.ids[i], res.ids[i + 1]
        assert s1 > s2 or (s1 == s2 and d1 < d2)
    # explanations add up and follow the missing-document convention
    np.testing.assert_allclose(res.contributions.sum(axis=1), res.scores, rtol=1e-12, atol=1e-12)
    absent = res.ranks == 0
    assert np.isnan(res.raw_scores[absent]).all() and np.isnan(res.normalized[absent]).all()
    assert not np.isnan(res.raw_scores[~absent]).any()
    if method != "borda":
        assert (res.contributions[absent] == 0).all()


@SETTINGS
@given(rankings=rankings_st, method=st.sampled_from(fusion.METHODS), seed=st.integers(0, 2**16))
def test_deterministic_under_input_order(rankings, method, seed):
    """Shuffling the entries of each list (duplicates included) does not change the output."""
    rng = np.random.default_rng(seed)
    shuffled = []
    for ids, scores in rankings:
        p = rng.permutation(len(ids))
        shuffled.append((ids[p], scores[p]))
    a, b = fuse(rankings, method=method), fuse(shuffled, method=method)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


@SETTINGS
@given(
    rankings=st.lists(ranking(), min_size=2, max_size=3),
    method=st.sampled_from(fusion.METHODS),
    w=st.floats(0.05, 5.0),
)
def test_weights_change_results(rankings, method, w):
    """Scaling one list's weight scales exactly its contributions (weights are never ignored)."""
    base = fuse(rankings, method=method)
    weights = [1.0] * len(rankings)
    weights[0] = w
    res = fuse(rankings, method=method, weights=weights)
    if method in ("combmax", "combmin"):
        # the list that decides may change: each score is the best (worst) weighted normalised
        # score over the lists holding the document, and weights never change normalisation
        pick = np.nanmax if method == "combmax" else np.nanmin
        base_norm = dict(zip(base.ids.tolist(), base.normalized, strict=True))
        for i, d in enumerate(res.ids.tolist()):
            np.testing.assert_allclose(res.normalized[i], base_norm[d], rtol=1e-12)
            expected = pick(np.asarray(weights) * res.normalized[i])
            assert math.isclose(res.scores[i], expected, rel_tol=1e-9, abs_tol=1e-12)
            assert res.contributions[i].sum() == res.scores[i]
        return
    got = {d: c for d, c in zip(res.ids.tolist(), res.contributions[:, 0].tolist(), strict=True)}
    for d, c in zip(base.ids.tolist(), base.contributions[:, 0].tolist(), strict=True):
        assert math.isclose(got[d], w * c, rel_tol=1e-9, abs_tol=1e-12)


@SETTINGS
@given(rankings=st.lists(ranking(), min_size=2, max_size=3), method=st.sampled_from(fusion.METHODS))
def test_weight_one_zero_selects_a_list(rankings, method):
    weights = [0.0] * len(rankings)
    weights[1] = 1.0
    res = fuse(rankings, method=method, weights=weights)
    alone = fuse([rankings[1]], method=method)
    np.testing.assert_array_equal(res.ids, alone.ids)
    np.testing.assert_allclose(res.scores, alone.scores, rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    queries=st.lists(st.lists(ranking(), min_size=2, max_size=2), min_size=1, max_size=5),
    method=st.sampled_from(fusion.METHODS),
    top=st.one_of(st.none(), st.integers(1, 6)),
)
def test_batch_equals_single_queries(queries, method, top):
    batch = fusion.fuse_batch(queries, method=method, top=top)
    for q, got in zip(queries, batch, strict=True):
        want = fuse(q, method=method, top=top)
        for x, y in zip(got, want, strict=True):
            np.testing.assert_array_equal(x, y)


def test_weighted_rrf_moves_a_document() -> None:
    """A concrete instance: weighting B puts B's top document above A's (they tie unweighted)."""
    a = (np.array([1, 2]), np.array([2.0, 1.0]))
    b = (np.array([3, 2]), np.array([2.0, 1.0]))
    assert fuse([a, b]).ids.tolist() == [2, 1, 3]  # 1 and 3 tie at 1/61: smaller id first
    assert fuse([a, b], weights=[1, 5]).ids.tolist() == [2, 3, 1]
