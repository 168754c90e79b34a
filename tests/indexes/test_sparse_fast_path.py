"""SparseIndex.search's one-call path (indexes._sparse_query): the checks it does inside the
kernel give what the general path gives, results and errors alike.

``threads=1`` forces the general path (Python checks, then the same kernel), the reference here.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from indexes import SparseIndex
from indexes._sparse_query import canonical_values, search_common


def _index(weight_dtype="uint16", n=400, dim=50, seed=3):
    rng = np.random.default_rng(seed)
    docs = sp.random(n, dim, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    index = SparseIndex(weight_dtype=weight_dtype)
    index.add(docs * 3)
    return index


def _query(values, cols, dim=50, dtype=np.float32, index_dtype=np.int32, kind=sp.csr_matrix):
    data = np.asarray(values, dtype=dtype)
    indices = np.asarray(cols, dtype=index_dtype)
    indptr = np.array([0, len(cols)], dtype=index_dtype)
    return kind((data, indices, indptr), shape=(1, dim))


def _same(a, b):
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.ids.dtype == b.ids.dtype and a.scores.dtype == b.scores.dtype


@pytest.mark.parametrize("weight_dtype", ["uint16", "float32"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("kind", [sp.csr_matrix, sp.csr_array])
def test_canonical_queries_take_the_one_call_path_with_general_path_results(
    weight_dtype, index_dtype, kind
):
    index = _index(weight_dtype)
    rng = np.random.default_rng(5)
    for _ in range(20):
        cols = np.sort(rng.choice(50, size=int(rng.integers(1, 12)), replace=False))
        q = _query(rng.uniform(0.01, 4.0, cols.size), cols, index_dtype=index_dtype, kind=kind)
        for k in (1, 10, 400, 10**6):
            fast = search_common(index, q, k)
            assert fast is not None  # the one-call path answered
            _same(fast, index.search(q, k, threads=1))
            _same(index.search(q, k), fast)


def test_scaled_weights_are_numpys_float32_product():
    """The kernel's ``x * float32(step)`` equals numpy's ``float32 array * Python float``."""
    rng = np.random.default_rng(8)
    data = (rng.uniform(0, 30, 5000) ** 3).astype(np.float32) + np.float32(1e-30)
    idx = np.arange(5000, dtype=np.int32)
    for step in (1.0, 0.1, 3.0517578125e-05, 1 / 3, 7.000000000000001e-3, 123456.789):
        ok, got = canonical_values(np.array([0, 5000], np.int32), idx, data, step, 5000)
        assert ok
        np.testing.assert_array_equal(got, (data * step).astype(np.float32))


def test_a_batch_of_queries_and_an_empty_row():
    index = _index()
    rng = np.random.default_rng(6)
    q = sp.random(7, 50, density=0.15, format="csr", random_state=rng, dtype=np.float32)
    q = sp.vstack([q, sp.csr_matrix((1, 50), dtype=np.float32)]).tocsr()  # an empty last row
    index.threads = 1  # one thread: a batch stays in the calling thread
    fast = search_common(index, q, 10)
    assert fast is not None and fast.ids.shape == (8, 10) and (fast.ids[7] == -1).all()
    _same(fast, index.search(q, 10, threads=1))


@pytest.mark.parametrize(
    "values, cols",
    [
        ([1.0, 2.0, 0.5], [7, 3, 9]),  # unsorted columns
        ([1.0, 2.0, 0.5], [3, 3, 9]),  # a duplicate: summed
        ([1.0, 0.0, 0.5], [3, 5, 9]),  # an explicit zero: dropped
    ],
)
def test_non_canonical_queries_go_the_general_way_with_the_same_results(values, cols):
    index = _index()
    q = _query(values, cols)
    assert search_common(index, q, 10) is None
    canonical = sp.csr_matrix(q.toarray())
    _same(index.search(q, 10), index.search(canonical, 10))
    _same(index.search(q, 10), index.search(q, 10, threads=1))
    assert q.data.tolist() == [np.float32(v) for v in values]  # the caller's matrix untouched


@pytest.mark.parametrize(
    "values, message",
    [
        ([1.0, np.nan], "query vectors contain NaN or infinite weights"),
        ([1.0, np.inf], "query vectors contain NaN or infinite weights"),
        ([-np.inf, 1.0], "query vectors contain NaN or infinite weights"),
        ([1.0, -0.5], "query vectors contain negative weights; SPLADE weights must be >= 0"),
    ],
)
def test_bad_weights_raise_the_general_paths_error(values, message):
    index = _index()
    q = _query(values, [2, 4])
    assert search_common(index, q, 5) is None
    for kwargs in ({}, {"threads": 1}):
        with pytest.raises(ValueError) as err:
            index.search(q, 5, **kwargs)
        assert str(err.value) == message


def test_damaged_csr_arrays_are_not_read_past_their_ends():
    """Pointers or indices a user changed by hand: refused in the kernel, left to the general
    path (scipy's own checks there), never read out of bounds."""
    ok = _query([1.0, 2.0], [2, 4])
    for data, indices, indptr in (
        ([1.0, 2.0], [2, 4], [0, 3]),  # a row past the indices
        ([1.0, 2.0], [2, 4], [1, 2]),  # not from 0
        ([1.0, 2.0, 3.0], [2, 4, 6], [0, 2]),  # indices past the last row
        ([1.0], [2, 4], [0, 2]),  # fewer weights than indices
        ([1.0, 2.0], [2, 50], [0, 2]),  # a column beyond the matrix's
        ([1.0, 2.0], [-1, 4], [0, 2]),  # a negative column
    ):
        ok_values = canonical_values(
            np.array(indptr, np.int32),
            np.array(indices, np.int32),
            np.array(data, np.float32),
            1.0,
            50,
        )[0]
        assert not ok_values
    assert canonical_values(ok.indptr, ok.indices, ok.data, 1.0, 50)[0]
    assert not canonical_values(ok.indptr, ok.indices, ok.data, 1.0, 4)[0]  # column 4 >= 4


def test_other_inputs_take_the_general_path():
    index = _index()
    q = _query([1.0, 2.0], [2, 4])
    assert search_common(index, q.astype(np.float64), 5) is None  # float64: converted there
    assert search_common(index, q.tocoo(), 5) is None
    assert search_common(index, q, True) is None  # bool k: refused there
    _same(index.search(q.astype(np.float64), 5), index.search(q, 5))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        index.search(q, True)
    with pytest.raises(ValueError, match="queries have 60 columns, the index has dim=50"):
        index.search(_query([1.0], [55], dim=60), 5)
    index.add(sp.csr_matrix(np.ones((1, 50), dtype=np.float32)))  # a second segment
    assert len(index._segments) == 2 and search_common(index, q, 5) is None


def test_overflow_is_reported_by_both_paths():
    index = SparseIndex(weight_dtype="float32")
    index.add(sp.csr_matrix(np.array([[3e38, 3e38]], dtype=np.float32)))
    q = _query([3e38, 3e38], [0, 1], dim=2)
    for kwargs in ({}, {"threads": 1}):
        with pytest.raises(ValueError, match="a score overflowed float32"):
            index.search(q, 1, **kwargs)
