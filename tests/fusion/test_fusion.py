"""Fusion: hand-worked values for every method and normalisation, and the pinned conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fusion
from fusion import fuse

# The worked example used throughout (scores higher = better, lists given unsorted on purpose):
#   list A (e.g. BM25):  doc 30 -> 1.0, doc 10 -> 4.0, doc 20 -> 2.0   ranks: 10:1  20:2  30:3
#   list B (e.g. dense): doc 40 -> 0.5, doc 20 -> 0.9                  ranks: 20:1  40:2
A = (np.array([30, 10, 20]), np.array([1.0, 4.0, 2.0]))
B = (np.array([40, 20]), np.array([0.5, 0.9]))


def as_dict(res: fusion.FusionResult) -> dict[int, float]:
    return dict(zip(res.ids.tolist(), res.scores.tolist(), strict=True))


def check(res: fusion.FusionResult, expected: list[tuple[int, float]]) -> None:
    assert res.ids.tolist() == [d for d, _ in expected]
    np.testing.assert_allclose(res.scores, [s for _, s in expected], rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- rank methods
def test_rrf_hand_worked() -> None:
    # 20: 1/(60+2) + 1/(60+1); 10: 1/61; 40: 1/62; 30: 1/63
    check(fuse([A, B]), [(20, 1 / 62 + 1 / 61), (10, 1 / 61), (40, 1 / 62), (30, 1 / 63)])


def test_rrf_weights_and_k() -> None:
    # weights (1, 3): 40 = 3/62 = 0.0484 overtakes 10 = 1/61 = 0.0164
    res = fuse([A, B], weights=[1, 3])
    check(res, [(20, 1 / 62 + 3 / 61), (40, 3 / 62), (10, 1 / 61), (30, 1 / 63)])
    # k = 0: plain reciprocal ranks 1/r
    check(fuse([A, B], k=0), [(20, 1.5), (10, 1.0), (40, 0.5), (30, 1 / 3)])


def test_rrf_explanation_fields() -> None:
    res = fuse([A, B], weights=[1, 3])
    i = res.ids.tolist().index(20)
    assert res.ranks[i].tolist() == [2, 1]
    assert res.raw_scores[i].tolist() == [2.0, 0.9]
    np.testing.assert_allclose(res.normalized[i], [1 / 62, 1 / 61])
    np.testing.assert_allclose(res.contributions[i], [1 / 62, 3 / 61])
    j = res.ids.tolist().index(30)  # absent from B
    assert res.ranks[j].tolist() == [3, 0]
    assert math.isnan(res.raw_scores[j, 1]) and math.isnan(res.normalized[j, 1])
    assert res.contributions[j, 1] == 0.0
    assert res.ranks.dtype == np.int64 and res.ids.dtype == np.int64


def test_isr_hand_worked() -> None:
    # 20: in 2 lists -> 2 * (1/2**2 + 1/1**2) = 2.5; 10: 1; 40: 1/4; 30: 1/9
    check(fuse([A, B], method="isr"), [(20, 2.5), (10, 1.0), (40, 0.25), (30, 1 / 9)])


def test_borda_hand_worked() -> None:
    # 4 candidates. A (3 docs): 10:4 20:3 30:2, absent 40 gets (4-3+1)/2 = 1.
    # B (2 docs): 20:4 40:3, absent 10 and 30 get (4-2+1)/2 = 1.5.
    res = fuse([A, B], method="borda")
    check(res, [(20, 7.0), (10, 5.5), (40, 4.0), (30, 3.5)])
    i = res.ids.tolist().index(40)
    assert res.contributions[i].tolist() == [1.0, 3.0]  # documented exception: absent share
    assert math.isnan(res.normalized[i, 0])


# ----------------------------------------------------------------------------- score methods
# min-max: A -> 10: 1, 20: 1/3, 30: 0;  B -> 20: 1, 40: 0
def test_wsum_minmax_hand_worked() -> None:
    res = fuse([A, B], method="wsum", weights=[0.5, 0.5])
    # 30 and 40 tie at 0: smaller id first
    check(res, [(20, 0.5 / 3 + 0.5), (10, 0.5), (30, 0.0), (40, 0.0)])
    assert fuse([A, B], method="wsum").ids.tolist() == res.ids.tolist()  # default norm: minmax


def test_wsum_weights_change_ranking() -> None:
    check(fuse([A, B], method="wsum", weights=[0.9, 0.1]), [(10, 0.9), (20, 0.4), (30, 0), (40, 0)])
    check(
        fuse([A, B], method="wsum", weights=[0.1, 0.9]),
        [(20, 0.1 / 3 + 0.9), (10, 0.1), (30, 0), (40, 0)],
    )


def test_comb_methods_hand_worked() -> None:
    check(fuse([A, B], method="combsum"), [(20, 4 / 3), (10, 1.0), (30, 0.0), (40, 0.0)])
    check(fuse([A, B], method="combmnz"), [(20, 8 / 3), (10, 1.0), (30, 0.0), (40, 0.0)])
    # combmax: 10 and 20 both reach 1.0 -> tie -> smaller id first
    check(fuse([A, B], method="combmax"), [(10, 1.0), (20, 1.0), (30, 0.0), (40, 0.0)])
    check(fuse([A, B], method="combmin"), [(10, 1.0), (20, 1 / 3), (30, 0.0), (40, 0.0)])
    check(fuse([A, B], method="combanz"), [(10, 1.0), (20, 2 / 3), (30, 0.0), (40, 0.0)])


def test_combmnz_and_combmax_contributions() -> None:
    res = fuse([A, B], method="combmnz")
    i = res.ids.tolist().index(20)
    np.testing.assert_allclose(res.contributions[i], [2 / 3, 2.0])  # m * w_j * s_j, m = 2
    res = fuse([A, B], method="combmax")
    i = res.ids.tolist().index(20)
    assert res.contributions[i].tolist() == [0.0, 1.0]  # the winning list carries the score


@pytest.mark.parametrize("method", fusion.METHODS)
def test_contributions_add_up(method: str) -> None:
    res = fuse(
        [A, B, (np.array([10, 50]), np.array([0.3, 0.7]))], method=method, weights=[0.2, 0.5, 0.3]
    )
    np.testing.assert_allclose(res.contributions.sum(axis=1), res.scores, rtol=1e-12)


# ----------------------------------------------------------------------------- normalisations
SCORES = np.array([4.0, 2.0, 1.0])


def test_norms_hand_worked() -> None:
    np.testing.assert_allclose(fusion.minmax_norm(SCORES), [1.0, 1 / 3, 0.0])
    z = 5 / math.sqrt(14)  # mean 7/3, population std sqrt(14)/3
    r14 = math.sqrt(14)
    np.testing.assert_allclose(fusion.zscore_norm(SCORES), [z, -1 / r14, -4 / r14])
    np.testing.assert_allclose(fusion.max_norm(SCORES), [1.0, 0.5, 0.25])
    np.testing.assert_allclose(fusion.sum_norm(SCORES), [0.75, 0.25, 0.0])
    np.testing.assert_allclose(fusion.rank_norm(SCORES), [1.0, 2 / 3, 1 / 3])
    np.testing.assert_allclose(fusion.dbsf_norm(SCORES), 0.5 + fusion.zscore_norm(SCORES) / 6)
    np.testing.assert_allclose(fusion.bounded_minmax(SCORES, 0, 8), [0.5, 0.25, 0.125])
    np.testing.assert_allclose(fusion.identity_norm(SCORES), SCORES)


def test_norms_ignore_nan_rows_independently() -> None:
    x = np.array([[4.0, 2.0, np.nan, 1.0], [np.nan, 5.0, 7.0, np.nan]])
    out = fusion.minmax_norm(x)
    np.testing.assert_allclose(out, [[1.0, 1 / 3, np.nan, 0.0], [np.nan, 0.0, 1.0, np.nan]])
    out = fusion.rank_norm(x)
    np.testing.assert_allclose(out, [[1.0, 2 / 3, np.nan, 1 / 3], [np.nan, 0.5, 1.0, np.nan]])


@pytest.mark.parametrize(
    ("func", "lone", "constant"),
    [
        (fusion.minmax_norm, 0.5, 0.5),  # no spread information: midpoint, never 1.0
        (fusion.dbsf_norm, 0.5, 0.5),  # the mean maps to 0.5
        (fusion.zscore_norm, 0.0, 0.0),  # the mean
        (fusion.sum_norm, 1.0, 1 / 3),  # uniform share 1/n
        (fusion.max_norm, 1.0, 1.0),  # scale-only: s / max, by definition
        (fusion.rank_norm, 1.0, None),  # rank 1 of 1; constant scores: ranks by position
    ],
)
def test_degenerate_lists(func, lone: float, constant: float | None) -> None:
    with np.errstate(all="raise"):  # no division by zero, no invalid operation
        assert func(np.array([7.0])).tolist() == [lone]
        if constant is not None:
            np.testing.assert_allclose(func(np.array([3.0, 3.0, 3.0])), [constant] * 3)
        assert func(np.array([])).shape == (0,)
        assert np.isnan(func(np.array([np.nan, np.nan]))).all()


def test_lone_hit_is_not_silently_one() -> None:
    lone = (np.array([99]), np.array([12.5]))
    res = fuse([A, lone], method="wsum")
    i = res.ids.tolist().index(99)
    assert res.normalized[i, 1] == 0.5
    # with known bounds the lone hit keeps its absolute standing
    res = fuse([A, lone], method="wsum", norm="bounded", bounds=[None, (0.0, 25.0)])
    assert res.normalized[res.ids.tolist().index(99), 1] == 0.5
    res = fuse([A, lone], method="wsum", norm="bounded", bounds=[None, (0.0, 50.0)])
    assert res.normalized[res.ids.tolist().index(99), 1] == 0.25


def test_bounded_rejects_scores_outside_bounds() -> None:
    with pytest.raises(ValueError, match="outside the declared bounds"):
        fuse([A], method="wsum", norm="bounded", bounds=[(0.0, 3.0)])
    # float rounding just above the bound is clipped, not rejected
    res = fuse(
        [(np.array([1]), np.array([1.0 + 1e-9]))],
        method="wsum",
        norm="bounded",
        bounds=[(-1.0, 1.0)],
    )
    assert res.scores.tolist() == [1.0]


def test_max_norm_rejects_negative_scores() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        fuse([(np.array([1, 2]), np.array([0.5, -0.2]))], method="wsum", norm="max")


@pytest.mark.parametrize("norm", ["minmax", "zscore", "max", "sum", "rank", "dbsf", "none"])
def test_each_norm_through_fuse(norm: str) -> None:
    res = fuse([A, B], method="combsum", norm=norm)
    expected = {
        "minmax": fusion.minmax_norm,
        "zscore": fusion.zscore_norm,
        "max": fusion.max_norm,
        "sum": fusion.sum_norm,
        "rank": fusion.rank_norm,
        "dbsf": fusion.dbsf_norm,
        "none": fusion.identity_norm,
    }[norm]
    i = res.ids.tolist().index(10)
    # doc 10 is A's top document: its normalised value is the first of norm(A sorted)
    assert res.normalized[i, 0] == pytest.approx(expected(SCORES)[0])


# ----------------------------------------------------------------------------- conventions
def test_ranks_start_at_one_and_follow_scores_not_input_order() -> None:
    res = fuse([A])
    assert res.ids.tolist() == [10, 20, 30]
    assert res.ranks[:, 0].tolist() == [1, 2, 3]


def test_ties_within_a_list_rank_by_id() -> None:
    res = fuse([(np.array([5, 3, 9]), np.array([1.0, 1.0, 2.0]))])
    assert res.ids.tolist() == [9, 3, 5]
    assert res.ranks[:, 0].tolist() == [1, 2, 3]


def test_fused_ties_break_by_smaller_id() -> None:
    # 7 is rank 1 in A, 3 is rank 1 in B: equal RRF scores -> 3 first
    res = fuse([(np.array([7]), np.array([1.0])), (np.array([3]), np.array([1.0]))])
    assert res.ids.tolist() == [3, 7]
    assert res.scores[0] == res.scores[1]


def test_duplicates_counted_once_best_score_kept() -> None:
    dup = (np.array([10, 20, 30, 20]), np.array([4.0, 2.0, 1.0, 3.5]))
    res = fuse([dup])
    assert res.ids.tolist() == [10, 20, 30]
    assert res.ranks[:, 0].tolist() == [1, 2, 3]  # 30 is rank 3, not 4
    assert res.raw_scores[:, 0].tolist() == [4.0, 3.5, 1.0]
    np.testing.assert_allclose(res.scores, [1 / 61, 1 / 62, 1 / 63])
    res = fuse([dup, B], method="combsum")
    assert res.raw_scores[res.ids.tolist().index(20), 0] == 3.5


def test_empty_lists() -> None:
    empty = (np.array([], dtype=np.int64), np.array([]))
    res = fuse([empty, empty])
    assert res.ids.shape == (0,) and res.ranks.shape == (0, 2) and res.scores.dtype == np.float64
    res = fuse([A, empty], method="wsum")
    assert res.ids.tolist() == [10, 20, 30]
    assert (res.ranks[:, 1] == 0).all()
    assert fuse([empty, B], method="borda").ids.tolist() == [20, 40]


def test_padding_is_ignored() -> None:
    padded = (np.array([10, 20, -1, -1]), np.array([2.0, 1.0, -np.inf, -np.inf]))
    assert fuse([padded]).ids.tolist() == [10, 20]


def test_zero_weight_removes_a_list() -> None:
    c = (np.array([10, 99]), np.array([5.0, 1.0]))
    for method in fusion.METHODS:
        norm = None if method in fusion.RANK_METHODS else "minmax"
        with_zero = fuse([A, c, B], method=method, weights=[1, 0, 2], norm=norm)
        without = fuse([A, B], method=method, weights=[1, 2], norm=norm)
        assert with_zero.ids.tolist() == without.ids.tolist(), method
        np.testing.assert_allclose(with_zero.scores, without.scores, rtol=1e-12)
        assert 99 not in with_zero.ids
        assert (with_zero.ranks[:, 1] == 0).all() and (with_zero.contributions[:, 1] == 0).all()


def test_top_cuts_after_sorting() -> None:
    full = fuse([A, B])
    top = fuse([A, B], top=2)
    assert top.ids.tolist() == full.ids[:2].tolist()
    assert top.ranks.shape == (2, 2)


def test_string_ids() -> None:
    res = fuse(
        [
            (np.array(["c", "a", "b"]), np.array([1.0, 4.0, 2.0])),
            (np.array(["d", "b"]), np.array([0.5, 0.9])),
        ]
    )
    assert res.ids.tolist() == ["b", "a", "d", "c"]


def test_pairs_may_be_namedtuples_with_ids_and_scores() -> None:
    class Hits:
        def __init__(self, ids, scores):
            self.ids, self.scores = ids, scores

    assert fuse([Hits(*A), Hits(*B)]).ids.tolist() == fuse([A, B]).ids.tolist()


# ----------------------------------------------------------------------------- batches
def test_batch_forms_agree_with_single_query() -> None:
    queries = [[A, B], [B, A], [(np.array([1, 2]), np.array([0.1, 0.2])), B]]
    singles = [fuse(q, method="combmnz") for q in queries]
    batch = fusion.fuse_batch(queries, method="combmnz")
    # padded form: one (ids, scores) pair of 2-D arrays per retriever, -1 / -inf padding
    depth = 3
    padded = []
    for j in range(2):
        ids = np.full((3, depth), -1)
        scores = np.full((3, depth), -np.inf, dtype=np.float32)
        for q, lists in enumerate(queries):
            n = len(lists[j][0])
            ids[q, :n], scores[q, :n] = lists[j]
        padded.append((ids, scores))
    from_padded = fusion.fuse_batch(padded, method="combmnz")
    for a, b, c in zip(singles, batch, from_padded, strict=True):
        for x, y, z in zip(a, b, c, strict=True):
            np.testing.assert_array_equal(x, y)
            np.testing.assert_allclose(x, z, rtol=1e-6)  # float32 input


def test_batch_top_and_empty() -> None:
    assert fusion.fuse_batch([]) == []
    res = fusion.fuse_batch([[A, B], [B, A]], top=1)
    assert [r.ids.tolist() for r in res] == [[20], [20]]


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "rff"}, "valid: rrf, isr, borda, wsum"),
        ({"method": "wsum", "norm": "min-max"}, "valid: minmax, zscore"),
        ({"method": "rrf", "norm": "minmax"}, "does not apply"),
        ({"method": "wsum", "bounds": [(0, 1), None]}, "bounds only apply"),
        ({"method": "wsum", "norm": "bounded"}, "needs bounds"),
        ({"weights": [1.0]}, "one value per list"),
        ({"weights": [1.0, -0.5]}, ">= 0"),
        ({"weights": [1.0, float("nan")]}, ">= 0"),
        ({"weights": [0.0, 0.0]}, "at least one weight"),
        ({"k": -1}, "k must be"),
        ({"top": 0}, "top must be"),
    ],
)
def test_option_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fuse([A, B], **kwargs)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ((np.array([1, 2]), np.array([1.0, np.nan])), "finite"),
        ((np.array([1, 2]), np.array([np.inf, 1.0])), "finite"),
        ((np.array([1, 2]), np.array([1.0])), "differ in shape"),
        ((np.array([1.5, 2.0]), np.array([1.0, 2.0])), "integers"),
        ((np.array([1, -3]), np.array([1.0, 2.0])), ">= 0"),
        ((np.array([[1, 2]]), np.array([[1.0, 2.0]])), "1-D"),
        ((np.array([1]),), "pair"),
    ],
)
def test_input_errors(bad: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fuse([A, bad])


def test_empty_rankings_rejected() -> None:
    with pytest.raises(ValueError, match="at least one"):
        fuse([])


@pytest.mark.parametrize("method", fusion.METHODS)
def test_public_method_functions_reproduce_explanations(method: str) -> None:
    """The per-method functions applied to a result's ranks / normalised scores give back its
    terms and contributions (the vectorised path and the reference functions agree)."""
    c = (np.array([10, 50]), np.array([0.3, 0.7]))
    w = np.array([0.2, 0.5, 0.3])
    res = fuse([A, B, c], method=method, weights=w)
    if method == "rrf":
        terms, contrib = fusion.rrf(res.ranks, w, k=60)
    elif method == "isr":
        terms, contrib = fusion.isr(res.ranks, w)
    elif method == "borda":
        n = len(res.ids)
        sizes = np.broadcast_to((res.ranks > 0).sum(axis=0), res.ranks.shape)
        terms, contrib = fusion.borda(res.ranks, np.full(n, n), sizes, w)
    else:
        terms, contrib = getattr(fusion, method)(res.normalized, w)
    np.testing.assert_allclose(terms, res.normalized, rtol=1e-12)
    np.testing.assert_allclose(contrib, res.contributions, rtol=1e-12)
    np.testing.assert_allclose(contrib.sum(axis=1), res.scores, rtol=1e-12)


# ----------------------------------------------------------------------------- per-query weights
def _padded(*queries: list) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-query lists of (ids, scores) pairs -> one padded (ids, scores) pair per list."""
    out = []
    for j in range(len(queries[0])):
        depth = max(len(q[j][0]) for q in queries)
        ids = np.full((len(queries), depth), -1)
        scores = np.full((len(queries), depth), -np.inf)
        for i, q in enumerate(queries):
            ids[i, : len(q[j][0])], scores[i, : len(q[j][0])] = q[j]
        out.append((ids, scores))
    return out


def test_per_query_weights_hand_worked() -> None:
    # min-max: A -> 10: 1, 20: 1/3, 30: 0; B -> 20: 1, 40: 0.
    # query 0 weights (1, 3): 20 = 1/3 + 3 = 10/3, 10 = 1, then 30 and 40 tie at 0 (smaller id).
    # query 1 weights (1, 0): B is left out for this query only (40 does not enter its union).
    lists = _padded([A, B], [A, B])
    w = np.array([[1.0, 3.0], [1.0, 0.0]])
    q0, q1 = fusion.fuse_padded(lists, "wsum", w)
    check(q0, [(20, 10 / 3), (10, 1.0), (30, 0.0), (40, 0.0)])
    check(q1, [(10, 1.0), (20, 1 / 3), (30, 0.0)])
    assert q0.weights.tolist() == [1.0, 3.0] and q1.weights.tolist() == [1.0, 0.0]
    np.testing.assert_allclose(q0.contributions[0], [1 / 3, 3.0])  # doc 20: w_j * s_j
    assert q1.ranks[:, 1].tolist() == [0, 0, 0]  # the removed list reports rank 0
    # RRF, query 0 weights (2, 1): 20 = 2/62 + 1/61, 10 = 2/61, 40 = 1/62, 30 = 2/63
    r0, r1 = fusion.fuse_padded(lists, "rrf", np.array([[2.0, 1.0], [1.0, 1.0]]))
    check(r0, [(20, 2 / 62 + 1 / 61), (10, 2 / 61), (30, 2 / 63), (40, 1 / 62)])
    check(r1, [(20, 1 / 62 + 1 / 61), (10, 1 / 61), (40, 1 / 62), (30, 1 / 63)])


def test_per_query_weights_equal_per_list_weights_row_by_row() -> None:
    lists = _padded([A, B], [B, A], [A, A])
    w = np.array([[0.2, 0.8], [1.0, 0.5], [0.0, 2.0]])
    for method in fusion.METHODS:
        batch = fusion.fuse_padded(lists, method, w)
        for q in range(3):
            one = [(ids[q], s[q]) for ids, s in lists]
            single = fuse(one, method=method, weights=w[q])
            np.testing.assert_array_equal(batch[q].ids, single.ids, err_msg=method)
            np.testing.assert_allclose(batch[q].scores, single.scores, rtol=1e-12)
            np.testing.assert_allclose(batch[q].contributions, single.contributions, rtol=1e-12)


def test_per_query_weight_errors() -> None:
    lists = _padded([A, B], [A, B])
    with pytest.raises(ValueError, match="shape"):
        fusion.fuse_padded(lists, "wsum", np.ones((3, 2)))
    with pytest.raises(ValueError, match="query 1 has all-zero weights"):
        fusion.fuse_padded(lists, "wsum", np.array([[1.0, 0.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match=">= 0"):
        fusion.fuse_padded(lists, "wsum", np.array([[1.0, -1.0], [1.0, 1.0]]))


# ----------------------------------------------------------------------------- depth
# z-scores of A over its 3 entries: mean 7/3, std sqrt(14)/3 -> 10: 5/sqrt(14), 20: -1/sqrt(14),
# 30: -4/sqrt(14); of B over 2 entries: mean 0.7, std 0.2 -> 20: 1, 40: -1.
R14 = math.sqrt(14)


def test_depth_cuts_the_union_but_not_the_statistics() -> None:
    res = fuse([A, B], method="wsum", norm="zscore", depth=2)
    check(res, [(10, 5 / R14), (20, 1 - 1 / R14), (40, -1.0)])  # 30 is A's 3rd: not fused
    # without depth, truncating A first changes its statistics: 10: 1, 20: -1 + 1 = 0
    short = fuse([(np.array([10, 20]), np.array([4.0, 2.0])), B], method="wsum", norm="zscore")
    check(short, [(10, 1.0), (20, 0.0), (40, -1.0)])
    # rank methods: depth only cuts (ranks are unchanged)
    check(fuse([A, B], depth=1), [(10, 1 / 61), (20, 1 / 61)])  # each list's first only
    with pytest.raises(ValueError, match="depth must be"):
        fuse([A, B], depth=0)


# ----------------------------------------------------------------------------- adaptive
def test_adaptive_hand_worked() -> None:
    # evidence (0.5, 1): weights 0.5 and 1 on the z-scores above (all entries fused)
    res = fuse([A, B], method="adaptive", evidence=[0.5, 1.0])
    check(
        res,
        [(20, -0.5 / R14 + 1.0), (10, 2.5 / R14), (30, -2.0 / R14), (40, -1.0)],
    )
    assert res.weights.tolist() == [0.5, 1.0]
    # evidence 0 for A: A is left out for this query (30 and 10 do not enter the union)
    check(fuse([A, B], method="adaptive", evidence=[0.0, 1.0]), [(20, 1.0), (40, -1.0)])
    # no evidence anywhere: fall back to the configured weights (here 1, 1)
    res = fuse([A, B], method="adaptive", evidence=[0.0, 0.0])
    check(res, [(10, 5 / R14), (20, 1 - 1 / R14), (40, -1.0), (30, -4 / R14)])
    assert res.weights.tolist() == [1.0, 1.0]
    # evidence multiplies configured weights; without evidence adaptive is a z-score wsum
    res = fuse([A, B], method="adaptive", weights=[2.0, 1.0], evidence=[0.5, 1.0])
    assert res.weights.tolist() == [1.0, 1.0]
    plain = fuse([A, B], method="adaptive")
    same = fuse([A, B], method="wsum", norm="zscore")
    np.testing.assert_allclose(plain.scores, same.scores, rtol=1e-12)


def test_adaptive_batch_with_depth() -> None:
    # query 0 as above with depth 2; query 1: B has no evidence -> A alone, z over 3, top 2
    lists = _padded([A, B], [A, B])
    ev = np.array([[0.5, 1.0], [1.0, 0.0]])
    q0, q1 = fusion.fuse_padded(lists, "adaptive", evidence=ev, depth=2)
    check(q0, [(20, -0.5 / R14 + 1.0), (10, 2.5 / R14), (40, -1.0)])
    check(q1, [(10, 5 / R14), (20, -1 / R14)])
    assert q1.weights.tolist() == [1.0, 0.0]


def test_adaptive_weights_function() -> None:
    e = np.array([[0.5, 1.0], [0.0, 0.0], [0.2, 0.0]])
    np.testing.assert_allclose(
        fusion.adaptive_weights([2.0, 1.0], e), [[1.0, 1.0], [2.0, 1.0], [0.4, 0.0]]
    )
    terms, contrib = fusion.adaptive(np.array([[1.0, np.nan]]), [1.0, 1.0], np.array([[0.5, 1]]))
    np.testing.assert_array_equal(terms, [[1.0, np.nan]])
    np.testing.assert_allclose(contrib, [[0.5, 0.0]])


def test_evidence_errors() -> None:
    with pytest.raises(ValueError, match="only applies to method='adaptive'"):
        fuse([A, B], method="wsum", evidence=[1.0, 1.0])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        fuse([A, B], method="adaptive", evidence=[1.5, 1.0])
    with pytest.raises(ValueError, match="shape"):
        fuse([A, B], method="adaptive", evidence=[1.0])
