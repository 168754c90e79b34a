"""Bad inputs at the fusion functions: a clear error naming the argument, or a correct result
(issue #18)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fusion
from tests._junk import ALLOWED, junk, names_argument

SETTINGS = settings(max_examples=80, deadline=None)
NAMES = (
    "rankings",
    "lists",
    "list ",
    "ids",
    "scores",
    "weights",
    "method",
    "norm",
    "k",
    "top",
    "depth",
    "evidence",
    "bounds",
    "per_query_rankings",
    "pair",
)


def sound(result: fusion.FusionResult) -> None:
    """A fused ranking that is internally right: distinct ids, finite scores best first,
    contributions adding up to the scores."""
    ids = np.asarray(result.ids)
    assert len(set(ids.tolist())) == ids.size
    assert np.all(np.isfinite(result.scores))
    assert np.all(np.diff(result.scores) <= 0)
    np.testing.assert_allclose(
        result.contributions.sum(axis=1), result.scores, rtol=1e-9, atol=1e-12
    )


# ---------------------------------------------------------------- one test per row of the issue


@pytest.mark.parametrize(
    "ids",
    [
        np.array([1, None], dtype=object),
        [1, None],
        [None],
        [1, "a"],
        ["a", 1],
        [b"a", b"b"],
        np.array([1.5, 2.0]),
    ],
)
def test_ids_that_are_neither_integers_nor_strings_are_refused(ids):
    with pytest.raises((TypeError, ValueError), match="ids"):
        fusion.fuse([(ids, np.ones(len(ids)))])


def test_object_arrays_of_integers_or_strings_still_fuse():
    r = fusion.fuse([(np.array([3, 1], dtype=object), [2.0, 1.0]), ([1, 3], [2.0, 1.0])])
    assert r.ids.tolist() == [1, 3] and r.ids.dtype == np.int64
    s = fusion.fuse([(np.array(["b", "a"], dtype=object), [2.0, 1.0])])
    assert s.ids.tolist() == ["b", "a"]


@pytest.mark.parametrize("ids", [np.array([2**63 + 5], dtype=np.uint64), [2**63 + 5], [2**64]])
def test_ids_beyond_int64_are_refused_not_wrapped(ids):
    with pytest.raises(ValueError, match=str(int(np.asarray(ids, dtype=object)[0]))):
        fusion.fuse([(ids, [1.0])])
    with pytest.raises(ValueError, match="int64"):
        fusion.fuse_padded([(np.array([[2**63 + 5]], dtype=np.uint64), np.ones((1, 1)))])


def test_huge_top_and_depth_mean_everything():
    r = fusion.fuse([([1, 2], [1.0, 2.0])], top=10**30, depth=10**30)
    assert r.ids.tolist() == [2, 1]


def test_uint64_ids_within_int64_fuse():
    r = fusion.fuse([(np.array([7, 2], dtype=np.uint64), [1.0, 2.0])])
    assert r.ids.tolist() == [2, 7]


@pytest.mark.parametrize(
    "call",
    [
        lambda: fusion.fuse(None),
        lambda: fusion.fuse("ab"),
        lambda: fusion.fuse([None]),
        lambda: fusion.fuse([(None, [1.0])]),
        lambda: fusion.fuse([([1], None)]),
        lambda: fusion.fuse_padded(None),
        lambda: fusion.fuse_batch(None),
        lambda: fusion.fuse_batch([None]),
        lambda: fusion.minmax_norm(None),
        lambda: fusion.rrf(None),
        lambda: fusion.wsum(None),
    ],
)
def test_none_inputs_get_a_clear_error(call):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    assert "NoneType" not in str(info.value) or "got NoneType" in str(info.value)
    assert "has no len" not in str(info.value)


@pytest.mark.parametrize("norm", ["minmax", "zscore", "dbsf", "sum"])
def test_normalisations_of_extreme_scores_are_finite_and_ranked(norm):
    scores = np.array([1e308, 0.0, -1e308])
    r = fusion.fuse([([0, 1, 2], scores)], method="wsum", norm=norm)
    assert r.ids.tolist() == [0, 1, 2]  # NaN used to rank the best document last
    assert np.all(np.isfinite(r.scores))
    small = fusion.fuse([([0, 1, 2], scores * 2.0**-600)], method="wsum", norm=norm)
    np.testing.assert_allclose(r.scores, small.scores, rtol=1e-12)  # scale invariance


def test_minmax_of_extreme_scores_is_exact():
    np.testing.assert_array_equal(fusion.minmax_norm(np.array([1e308, 0.0, -1e308])), [1, 0.5, 0])
    np.testing.assert_allclose(
        fusion.zscore_norm(np.array([1e308, 1e308, -1e308])), [2**-0.5, 2**-0.5, -(2**0.5)]
    )
    np.testing.assert_allclose(
        fusion.bounded_minmax(np.array([1e308, 0.0]), -1e308, 1.5e308), [0.8, 0.4]
    )


def test_infinite_scores_and_overflowing_sums_are_errors():
    with pytest.raises(ValueError, match="finite"):
        fusion.minmax_norm(np.array([np.inf, 1.0]))
    with pytest.raises(ValueError, match="finite"):
        fusion.fuse([([0, 1], [np.inf, 1.0])])
    with pytest.raises(ValueError, match="overflow"):
        fusion.fuse([([0], [1e308]), ([0], [1e308])], method="wsum", norm="none")


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"weights": ["a"]}, "weights"),
        ({"weights": [True]}, "weights"),
        ({"weights": [np.nan]}, "weights"),
        ({"k": "x"}, "k"),
        ({"k": np.inf}, "k"),
        ({"method": ["rrf"]}, "method"),
        ({"method": "wsum", "norm": 5}, "norm"),
        ({"top": 0}, "top"),
        ({"depth": 1.5}, "depth"),
        ({"method": "adaptive", "evidence": ["a"]}, "evidence"),
        ({"method": "wsum", "norm": "bounded", "bounds": 5}, "bounds"),
    ],
)
def test_bad_options_name_the_argument(kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        fusion.fuse([([0, 1], [2.0, 1.0])], **kwargs)


# ---------------------------------------------------------------- generated junk

_ids = st.one_of(
    junk, st.lists(st.integers(-1, 6), max_size=4), st.lists(st.text(max_size=2), max_size=4)
)
_scores = st.one_of(junk, st.lists(st.floats(-1e308, 1e308), max_size=4))
_pair = st.one_of(junk, st.tuples(_ids, _scores))


@SETTINGS
@given(
    rankings=st.one_of(junk, st.lists(_pair, max_size=3)),
    method=st.one_of(st.sampled_from(fusion.METHODS), junk),
)
def test_fuse_junk_rankings(rankings, method):
    norm = None if isinstance(method, str) and method in fusion.RANK_METHODS else "minmax"
    try:
        result = fusion.fuse(rankings, method=method, norm=norm)
    except ALLOWED as exc:
        assert names_argument(exc, *NAMES), exc
        return
    sound(result)


@SETTINGS
@given(weights=junk, k=junk, top=junk, depth=junk)
def test_fuse_junk_options(weights, k, top, depth):
    lists = [([0, 1, 2], [3.0, 2.0, 1.0]), ([2, 3], [1.0, 0.5])]
    try:
        result = fusion.fuse(lists, weights=weights, k=k, top=top, depth=depth)
    except ALLOWED as exc:
        assert names_argument(exc, *NAMES), exc
        return
    sound(result)


_finite = st.floats(-1.7e308, 1.7e308)


@SETTINGS
@given(
    values=st.lists(st.one_of(_finite, st.just(np.nan)), max_size=8),
    norm=st.sampled_from(["minmax", "zscore", "dbsf", "sum", "rank"]),
)
def test_normalisations_never_give_nan_for_a_present_score(values, norm):
    x = np.array(values, dtype=np.float64)
    out = getattr(fusion, f"{norm}_norm")(x)
    present = ~np.isnan(x)
    assert np.all(np.isfinite(out[present]))
    assert np.all(np.isnan(out[~present]))
    xs, os = x[present], out[present]
    below = xs[:, None] < xs[None, :]  # x_i < x_j  =>  out_i <= out_j
    assert np.all((os[:, None] <= os[None, :] + 1e-12)[below])
    if norm == "minmax" and xs.size and xs.max() > xs.min():
        assert os.max() == 1.0 and os.min() == 0.0


@SETTINGS
@given(a=junk, b=junk, k=st.one_of(junk, st.floats(0, 100)))
def test_method_functions_junk(a, b, k):
    for call in (
        lambda: fusion.rrf(a, b, k),
        lambda: fusion.wsum(a, b),
        lambda: fusion.combmax(a, b),
        lambda: fusion.rrf_term(a, k),
        lambda: fusion.adaptive_weights(b, a),
        lambda: fusion.zscore_norm(a),
    ):
        try:
            call()
        except ALLOWED as exc:
            assert names_argument(
                exc, "ranks", "weights", "k", "normalized", "evidence", "scores"
            ), exc
