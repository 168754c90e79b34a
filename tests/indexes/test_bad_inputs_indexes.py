"""Bad inputs at the indexes' public methods: a clear error naming the argument, or a correct
result; a failed call changes nothing (issue #18)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from indexes import BM25Index, SparseIndex
from tests._junk import ALLOWED, junk, names_argument

N_DOCS = 6
SETTINGS = settings(max_examples=80, deadline=None)


def make_sparse() -> SparseIndex:
    index = SparseIndex(weight_dtype="float32", threads=1)
    index.add(sp.csr_matrix(np.eye(N_DOCS, dtype=np.float32) + 0.1))
    return index


def make_bm25() -> BM25Index:
    index = BM25Index()
    index.add([["a", "x"], ["b"], ["c", "a"], ["d"], ["e", "a"], ["f"]])
    return index


def make_dense():
    from indexes import DenseIndex

    index = DenseIndex(4)
    index.add(np.random.default_rng(0).standard_normal((N_DOCS, 4)).astype(np.float32))
    return index


def query(kind: str):
    if kind == "sparse":
        return sp.csr_matrix(np.ones((1, N_DOCS), dtype=np.float32))
    if kind == "bm25":
        return [["a", "b", "c", "d", "e", "f"]]
    return np.ones((1, 4), dtype=np.float32)


MAKERS = {"sparse": make_sparse, "bm25": make_bm25, "dense": make_dense}


@pytest.fixture(scope="module", params=["sparse", "bm25", "dense"])
def kind(request) -> str:
    if request.param == "dense":
        pytest.importorskip("faiss")
    return request.param


def state(kind: str, index) -> tuple:
    """Everything a failed call must leave as it was: size, and every live document's score."""
    res = index.search(query(kind), N_DOCS)
    extra = (index.n_terms,) if kind == "bm25" else ()
    return (len(index), res.ids.tolist(), res.scores.tolist(), *extra)


def valid_ids(ids) -> list[int] | None:
    """Reference: the distinct in-range integer ids ``ids`` stands for, or None if invalid."""
    if isinstance(ids, np.ndarray):
        if ids.dtype.kind not in "iu" and not (ids.dtype.kind == "O"):
            return None
        items = ids.ravel().tolist()
    elif isinstance(ids, (int, np.integer)) and not isinstance(ids, (bool, np.bool_)):
        items = [ids]
    elif isinstance(ids, (list, tuple)):
        items = list(ids)
    else:
        return None
    if not all(
        isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)) for x in items
    ):
        return None
    items = [int(x) for x in items]
    if len(set(items)) != len(items) or not all(0 <= x < N_DOCS for x in items):
        return None
    return items


# ---------------------------------------------------------------- one test per row of the issue


@pytest.mark.parametrize(
    "ids, error",
    [
        ([1.5], TypeError),
        (["3"], TypeError),
        ([True], TypeError),
        (np.array([2.7]), TypeError),
        (np.array([2.0]), TypeError),  # an integral float is still not an integer id
        (None, TypeError),
        (b"a", TypeError),
        ([10**30], KeyError),
        (np.array([2**63 + 5], dtype=np.uint64), KeyError),
        ([2, 2], ValueError),
        ([1, 99], KeyError),
        ([[1, 2]], TypeError),
    ],
)
def test_delete_refuses_non_integer_duplicate_and_unknown_ids(kind, ids, error):
    index = MAKERS[kind]()
    before = state(kind, index)
    with pytest.raises(error) as info:
        index.delete(ids)
    assert names_argument(info.value, "ids", "id(s)")
    assert state(kind, index) == before  # nothing deleted (1.5 used to delete document 1)


def test_delete_accepts_exact_integers_of_any_integer_type(kind):
    index = MAKERS[kind]()
    index.delete(np.array([1], dtype=np.uint8))
    index.delete([np.int32(2), 3])
    index.delete(range(4, 5))
    index.delete(5)
    assert len(index) == 1
    assert index.search(query(kind), 10).ids.tolist() == [[0]]


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"k1": math.nan}, ValueError, "k1"),
        ({"k1": math.inf}, ValueError, "k1"),
        ({"k1": -0.5}, ValueError, "k1"),
        ({"k1": "x"}, TypeError, "k1"),
        ({"k1": True}, TypeError, "k1"),
        ({"b": 1.5}, ValueError, "b"),
        ({"b": math.nan}, ValueError, "b"),
        ({"variant": "bm25l", "delta": math.inf}, ValueError, "delta"),
        ({"variant": "bm25+", "delta": -1.0}, ValueError, "delta"),
        ({"variant": "okapi", "epsilon": math.nan}, ValueError, "epsilon"),
        ({"variant": "okapi", "epsilon": [0.1]}, TypeError, "epsilon"),
        ({"variant": "nope"}, ValueError, "variant"),
    ],
)
def test_bm25_parameters_must_be_finite_and_in_range(kwargs, error, name):
    with pytest.raises(error, match=name):
        BM25Index(**kwargs)


def test_bm25_parameters_keep_their_values():
    index = BM25Index("bm25l", k1=0, b=1, delta=np.float32(0.25))
    assert index.params == {"k1": 0.0, "b": 1.0, "delta": 0.25}


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [None],
        5,
        [[b"x"]],
        "a b",
        ["a", "b"],
        [["a", 1]],
        [np.array(["a"]).reshape(1, 1)],
        [np.array("a")],
    ],
)
@pytest.mark.parametrize("method", ["add", "search"])
def test_bm25_token_lists_are_checked_before_anything_changes(bad, method):
    index = make_bm25()
    before = state("bm25", index)
    with pytest.raises(TypeError, match="documents|queries"):
        index.add(bad) if method == "add" else index.search(bad, 3)
    assert state("bm25", index) == before and index.n_terms == 7


@pytest.mark.parametrize("step", [math.inf, math.nan, 0.0, -1.0, "0.1", True])
def test_sparse_quant_step_must_be_a_positive_finite_number(step):
    with pytest.raises((TypeError, ValueError), match="quant_step"):
        SparseIndex(quant_step=step)


@pytest.mark.parametrize("weight_dtype", ["float32", "uint16"])
def test_sparse_weights_beyond_float32_are_refused_not_scored_inf(weight_dtype):
    index = SparseIndex(weight_dtype=weight_dtype)
    index.add(sp.csr_matrix(np.array([[1.0, 2.0]])))
    with pytest.raises(ValueError, match="float32"):
        index.add(sp.csr_matrix(np.array([[1e39, 1.0]])))
    assert len(index) == 1
    with pytest.raises(ValueError, match="float32"):
        index.search(sp.csr_matrix(np.array([[1e39, 0.0]])), 1)
    huge = SparseIndex(weight_dtype="float32")
    huge.add(sp.csr_matrix(np.array([[3e38]], dtype=np.float32)))
    with pytest.raises(ValueError, match="overflowed"):  # 3e38 x 2 is inf in float32
        huge.search(sp.csr_matrix(np.array([[2.0]], dtype=np.float32)), 1)


def test_huge_k_returns_the_whole_collection_without_allocating_for_it(kind):
    index = MAKERS[kind]()
    for k in (10**9, 2**62):  # an allocation of k x 12 bytes would fail outright
        res = index.search(query(kind), k)
        assert res.ids.shape == res.scores.shape == (1, N_DOCS)
        assert sorted(res.ids[0].tolist()) == list(range(N_DOCS))
    index.delete([0, 1])
    assert index.search(query(kind), 10**9).ids.shape == (1, N_DOCS - 2)


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3", None, np.float64(2.0)])
def test_bad_k_names_k(kind, k):
    with pytest.raises(ValueError, match="k must be"):
        MAKERS[kind]().search(query(kind), k)


# ---------------------------------------------------------------- generated junk


@SETTINGS
@given(ids=st.one_of(junk, st.lists(st.integers(-2, N_DOCS + 1), max_size=4)))
def test_delete_junk(kind, ids):
    index = MAKERS[kind]()
    before = state(kind, index)
    expected = valid_ids(ids)
    try:
        index.delete(ids)
    except ALLOWED as exc:
        assert expected is None, f"valid ids {ids!r} refused: {exc}"
        assert names_argument(exc, "ids", "id(s)"), exc
        assert state(kind, index) == before
        return
    assert expected is not None, f"{ids!r} was accepted"
    assert len(index) == N_DOCS - len(expected)
    hits = index.search(query(kind), N_DOCS).ids[0]
    assert set(hits[hits >= 0].tolist()).isdisjoint(expected)


@SETTINGS
@given(k=st.one_of(junk, st.integers(1, 20)))
def test_search_k_junk(kind, k):
    index = MAKERS[kind]()
    try:
        res = index.search(query(kind), k)
    except ALLOWED as exc:
        assert names_argument(exc, "k"), exc
        assert not (
            isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)) and k >= 1
        )
        return
    assert isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)) and k >= 1
    assert res.ids.shape == (1, min(int(k), N_DOCS))


_tokens = st.lists(st.one_of(st.text(max_size=3), junk), max_size=3)


@SETTINGS
@given(
    docs=st.one_of(junk, st.lists(_tokens, max_size=3), st.lists(st.lists(st.text(), max_size=3)))
)
def test_bm25_add_and_search_junk(docs):
    index = make_bm25()
    before = state("bm25", index)
    try:
        ids = index.add(docs)
    except ALLOWED as exc:
        assert names_argument(exc, "documents"), exc
        assert state("bm25", index) == before
    else:
        assert all(isinstance(t, str) for d in docs for t in d)
        assert ids.tolist() == list(range(N_DOCS, N_DOCS + len(docs)))
        assert len(index) == N_DOCS + len(docs)
    try:
        res = index.search(docs, 3)
    except ALLOWED as exc:
        assert names_argument(exc, "queries"), exc
    else:
        assert res.ids.shape == (len(docs), min(3, len(index)))


_param = st.one_of(junk, st.floats(0, 3), st.none())


@SETTINGS
@given(
    variant=st.one_of(st.sampled_from(["lucene", "okapi", "bm25l", "bm25+"]), junk),
    k1=_param,
    b=_param,
    delta=_param,
    epsilon=_param,
)
def test_bm25_constructor_junk(variant, k1, b, delta, epsilon):
    try:
        index = BM25Index(variant, k1=k1, b=b, delta=delta, epsilon=epsilon)
    except ALLOWED as exc:
        assert names_argument(exc, "variant", "k1", "b", "delta", "epsilon"), exc
        return
    for name, value in index.params.items():
        assert math.isfinite(value) and value >= 0
        given_value = {"k1": k1, "b": b, "delta": delta, "epsilon": epsilon}[name]
        if given_value is not None:
            assert value == float(given_value)
    assert 0 <= index.params["b"] <= 1


_weights = st.lists(
    st.one_of(st.floats(0, 10), st.sampled_from([np.nan, np.inf, -1.0, 1e39, 3e38, 0.0])),
    min_size=N_DOCS,
    max_size=N_DOCS,
)


@SETTINGS
@given(values=_weights, as_query=st.booleans())
def test_sparse_weight_junk(values, as_query):
    index = make_sparse()
    before = state("sparse", index)
    m = sp.csr_matrix(np.array([values], dtype=np.float64))
    ok = all(math.isfinite(v) and 0 <= v <= 3.4028234663852886e38 for v in values)
    try:
        if as_query:
            res = index.search(m, 3)
        else:
            index.add(m)
    except ALLOWED as exc:
        assert names_argument(exc, "vectors", "score"), exc
        assert state("sparse", index) == before
        return
    assert ok, f"{values} accepted"
    if as_query:
        assert np.all(np.isfinite(res.scores[res.ids >= 0]))
    else:
        assert len(index) == N_DOCS + 1


@SETTINGS
@given(
    dim=st.one_of(junk, st.integers(1, 9)),
    weight_dtype=st.one_of(junk, st.just("uint16")),
    quant_step=st.one_of(junk, st.floats(1e-6, 1.0)),
    threads=st.one_of(junk, st.none()),
)
def test_sparse_constructor_junk(dim, weight_dtype, quant_step, threads):
    try:
        index = SparseIndex(dim, weight_dtype, quant_step, threads)
    except ALLOWED as exc:
        assert names_argument(exc, "dim", "weight_dtype", "quant_step", "threads"), exc
        return
    assert index.dim is None or (isinstance(index.dim, int) and index.dim >= 1)
    assert index.quant_step is None or (math.isfinite(index.quant_step) and index.quant_step > 0)


@SETTINGS
@given(
    vectors=st.one_of(
        junk,
        st.lists(
            st.lists(
                st.one_of(st.floats(-2, 2), st.sampled_from([np.nan, 1e39, -np.inf])),
                min_size=4,
                max_size=4,
            ),
            max_size=3,
        ),
    )
)
def test_dense_add_and_search_junk(vectors):
    pytest.importorskip("faiss")
    index = make_dense()
    before = state("dense", index)
    try:
        index.add(vectors)
    except ALLOWED as exc:
        assert names_argument(exc, "vectors"), exc
        assert state("dense", index) == before
    else:
        arr = np.asarray(vectors, dtype=np.float64).reshape(-1, 4)
        assert np.all(np.abs(arr) <= np.finfo(np.float32).max)
    try:
        index.search(vectors, 2)
    except ALLOWED as exc:
        assert names_argument(exc, "vectors", "inner product"), exc


def test_dense_values_beyond_float32_in_any_shape_name_the_row():
    """A scalar or a single vector beyond float32's range is refused like a matrix row (the
    check once failed with an IndexError on a scalar: hypothesis found 1e39)."""
    from indexes import DenseIndex

    index = DenseIndex(dim=4)
    index.add(np.ones((3, 4), np.float32))
    for vectors, row in ((1e39, 0), (np.full(4, 1e39), 0), ([[1.0] * 4, [1e39] * 4], 1)):
        with pytest.raises(ValueError, match=rf"beyond float32's range .* row\(s\) \[{row}\]"):
            index.search(vectors, 2)
