"""DenseIndex.search's short path (indexes._dense_query): FAISS's compiled search called
directly, the query checked with one compiled call, gives what the general path gives, results
and errors alike. ``threads=1`` forces the general path, the reference here."""

from __future__ import annotations

import numpy as np
import pytest

from indexes import DenseIndex
from indexes._dense_query import all_finite, all_ids, search_common

DIM = 16


def _vectors(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def _same(a, b):
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.ids.dtype == b.ids.dtype and a.scores.dtype == b.scores.dtype
    assert a.ids.flags.c_contiguous and a.scores.flags.c_contiguous


@pytest.mark.parametrize("metric", ["ip", "cosine"])
@pytest.mark.parametrize("factory", ["Flat", "HNSW16", "IVF4,Flat"])
def test_short_path_equals_the_general_path(metric, factory):
    index = DenseIndex(DIM, metric=metric, factory=factory)
    index.add(_vectors(300))
    if factory.startswith("IVF"):
        index.nprobe = 1  # some rows come back with fewer than k hits: padded the same way
    queries = _vectors(5, seed=1)
    queries[2] = 0.0  # a zero query (cosine: stays zero)
    for k in (1, 10, 299, 300, 10**6):
        fast = search_common(index, queries, k)
        assert fast is not None and fast.ids.shape == (5, min(k, 300))
        _same(fast, index.search(queries, k, threads=1))
        _same(index.search(queries, k), fast)
        _same(index.search(queries[1:2], k), index.search(queries[1], k, threads=1))
    if factory.startswith("IVF"):
        assert (index.search(queries, 300).ids == -1).any()  # padding was exercised


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_queries_raise_the_general_paths_error(bad):
    index = DenseIndex(DIM)
    index.add(_vectors(50))
    queries = _vectors(4, seed=2)
    queries[3, 5] = bad
    assert not all_finite(queries) and all_finite(queries[:3])
    assert search_common(index, queries, 5) is None
    for kwargs in ({}, {"threads": 1}):
        with pytest.raises(ValueError) as err:
            index.search(queries, 5, **kwargs)
        assert (
            str(err.value)
            == "query vectors contain NaN or infinite values in 1 row(s), first rows: [3]"
        )


def test_other_inputs_and_states_take_the_general_path():
    index = DenseIndex(DIM, factory="HNSW16")
    index.add(_vectors(60))
    q = _vectors(3, seed=3)
    assert search_common(index, q.astype(np.float64), 5) is None  # converted there
    assert search_common(index, np.asfortranarray(q), 5) is None
    assert search_common(index, q[:, :8], 5) is None  # wrong dimension: refused there
    assert search_common(index, q.tolist(), 5) is None
    assert search_common(index, q, True) is None  # bool k: refused there
    assert search_common(index, q[:0], 5) is None
    _same(index.search(q.astype(np.float64), 5), index.search(q, 5))
    with pytest.raises(ValueError, match="k must be a positive integer"):
        index.search(q, True)
    with pytest.raises(ValueError, match="dimension mismatch"):
        index.search(q[:, :8], 5)
    index.delete([0, 7])  # HNSW keeps tombstones: filtered by the general path
    assert search_common(index, q, 5) is None
    res = index.search(q, 60)
    assert res.ids.shape == (3, 58) and not np.isin(res.ids, [0, 7]).any()
    threaded = DenseIndex(DIM, threads=1)
    threaded.add(_vectors(20))
    assert search_common(threaded, q, 5) is None
    assert search_common(DenseIndex(DIM), q, 5) is None  # empty index


def test_all_ids_sees_padding_anywhere():
    ids = np.arange(12, dtype=np.int64).reshape(3, 4)
    assert all_ids(ids)
    for r, c in ((0, 0), (1, 2), (2, 3)):
        bad = ids.copy()
        bad[r, c] = -1
        assert not all_ids(bad)
