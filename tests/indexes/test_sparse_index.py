"""SparseIndex: exact parity with brute force, add/delete, persistence, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from indexes import IndexFormatError, SparseIndex
from indexes import _sparse_kernels as K
from indexes._base import PAD_ID


def random_csr(rng, n, dim, density=0.1, integer=False):
    m = sp.random(n, dim, density=density, format="csr", random_state=rng, dtype=np.float64)
    m.data = np.ceil(m.data * 5) if integer else m.data * 3
    return m.astype(np.float32)


def brute_force(index: SparseIndex, queries, k, live=None):
    """Top-k by (-score, id) over the index's stored weights; only scores > 0 count as hits.

    Rows are ``min(k, live documents)`` wide, as the index returns them."""
    n = index._n_assigned
    live = np.arange(n) if live is None else np.asarray(live)
    k = min(k, live.size)
    stored = index.doc_vectors(live) if live.size else sp.csr_matrix((0, index.dim))
    scores = (sp.csr_matrix(queries, dtype=np.float64) @ stored.T.astype(np.float64)).toarray()
    ids = np.full((scores.shape[0], k), PAD_ID)
    top = np.full((scores.shape[0], k), -np.inf)
    for i, row in enumerate(scores):
        order = np.lexsort((live, -row))
        order = order[row[order] > 0][:k]
        ids[i, : order.size] = live[order]
        top[i, : order.size] = row[order]
    return ids, top


def assert_same_ranking(res, ids, scores, rtol=1e-5):
    """Scores equal to tolerance; ids equal except inside groups of (near-)tied scores."""
    np.testing.assert_allclose(res.scores, scores, rtol=rtol, atol=1e-6)
    for i in range(ids.shape[0]):
        if not np.array_equal(res.ids[i], ids[i]):
            s = scores[i]
            gap = np.abs(np.diff(s[np.isfinite(s)]))
            assert gap.min() <= rtol * np.abs(s[np.isfinite(s)]).max(), (i, res.ids[i], ids[i])


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 60), dim=st.integers(1, 40), k=st.integers(1, 12),
    density=st.sampled_from([0.05, 0.3, 0.7]), seed=st.integers(0, 2**31),
)
def test_exact_parity_integer_weights_including_ties(n, dim, k, density, seed):
    rng = np.random.default_rng(seed)
    docs = random_csr(rng, n, dim, density, integer=True)
    queries = random_csr(rng, 7, dim, 0.4, integer=True)
    index = SparseIndex(weight_dtype="float32", threads=1)
    index.add(docs)
    res = index.search(queries, k)
    ids, scores = brute_force(index, queries, k)
    np.testing.assert_array_equal(res.ids, ids)  # integer sums: exact ties, broken by id
    np.testing.assert_array_equal(res.scores, scores.astype(np.float32))
    assert res.ids.dtype == np.int64 and res.scores.dtype == np.float32


def test_quantised_parity_random():
    rng = np.random.default_rng(1)
    docs = random_csr(rng, 3000, 500, 0.02)
    queries = random_csr(rng, 40, 500, 0.05)
    index = SparseIndex(threads=1)
    index.add(docs)
    res = index.search(queries, 20)
    assert_same_ranking(res, *brute_force(index, queries, 20))


def test_dense_rows_and_windows_parity():
    """Frequent terms become dense rows; several accumulator windows; deletes in both forms."""
    rng = np.random.default_rng(5)
    n, dim = 3 * K.WINDOW + 123, 60
    docs = random_csr(rng, n, dim, 0.01)
    common = sp.random(n, 6, density=0.6, format="csr", random_state=rng, dtype=np.float32)
    docs = sp.hstack([common, docs[:, 6:]], format="csr")  # columns 0-5 in 60% of documents
    docs.data += 0.05  # no weight rounds to 0
    queries = random_csr(rng, 25, dim, 0.3)
    queries[:, :3] = 1.0
    index = SparseIndex(threads=1)
    index.add(docs)
    seg = index._segments[0]
    assert (seg.dense_of[:6] >= 0).all() and seg.dense.shape == (int((seg.dense_of >= 0).sum()), n)
    assert index.n_postings == docs.nnz and index.bytes_per_posting <= 6
    np.testing.assert_allclose(index.doc_vectors(np.arange(n)).toarray(), docs.toarray(),
                               atol=index.quant_step / 2 + 1e-6)
    dead = rng.choice(n, 500, replace=False)
    index.delete(dead)
    live = np.setdiff1d(np.arange(n), dead)
    res = index.search(queries, 15)
    assert not np.isin(res.ids, dead).any()
    assert_same_ranking(res, *brute_force(index, queries, 15, live))


def test_scifact_parity_and_quantisation_error(scifact_encoded):
    docs = sp.load_npz(scifact_encoded / "splade_docs.npz")
    queries = sp.load_npz(scifact_encoded / "splade_queries.npz")
    index = SparseIndex(threads=1)
    index.add(docs)
    assert len(index) == docs.shape[0]
    assert index.n_postings == np.count_nonzero(np.rint(docs.data / index.quant_step))
    assert 5 < index.bytes_per_posting <= 6
    res = index.search(queries, 10)
    assert_same_ranking(res, *brute_force(index, queries, 10))
    # quantised vs float32 weights: per weight <= step / 2, per score <= step / 2 * sum(q)
    stored = index.doc_vectors(np.arange(docs.shape[0]))
    assert abs(stored - docs).max() <= index.quant_step / 2 + 1e-6  # + float32 rounding
    raw = (queries @ docs.T).toarray()
    err = np.abs(np.take_along_axis(raw, res.ids, 1) - res.scores)
    bound = index.quant_step / 2 * np.asarray(queries.sum(axis=1)) + 1e-5
    assert np.all(err <= bound)
    assert err.max() < 1e-3


def test_add_delete_matches_rebuilt_index():
    rng = np.random.default_rng(2)
    batches = [random_csr(rng, n, 300, 0.03) for n in (500, 40, 700, 3)]
    queries = random_csr(rng, 30, 300, 0.05)
    index = SparseIndex(quant_step=1e-4, threads=1)
    got = [index.add(b) for b in batches]
    np.testing.assert_array_equal(np.concatenate(got), np.arange(1243))
    dead = rng.choice(1243, 400, replace=False)
    index.delete(dead[:200])
    index.delete(dead[200:])
    live = np.setdiff1d(np.arange(1243), dead)
    assert len(index) == live.size
    rebuilt = SparseIndex(quant_step=1e-4, threads=1)
    rebuilt.add(sp.vstack(batches, format="csr")[live])
    res, ref = index.search(queries, 15), rebuilt.search(queries, 15)
    mapped = np.where(ref.ids >= 0, live[np.maximum(ref.ids, 0)], PAD_ID)
    np.testing.assert_array_equal(res.ids, mapped)
    np.testing.assert_allclose(res.scores, ref.scores, rtol=1e-6)
    assert not np.isin(res.ids, dead).any()
    assert_same_ranking(res, *brute_force(index, queries, 15, live))
    # ids are never reused, even after compaction
    index.compact()
    np.testing.assert_array_equal(index.search(queries, 15).ids, res.ids)
    np.testing.assert_array_equal(index.add(batches[3]), [1243, 1244, 1245])


def test_delete_errors():
    index = SparseIndex()
    index.add(sp.csr_matrix(np.eye(4, dtype=np.float32)))
    with pytest.raises(KeyError, match="unknown"):
        index.delete([4])
    index.delete([1])
    with pytest.raises(KeyError, match="already deleted"):
        index.delete([1])
    with pytest.raises(KeyError):
        index.doc_vectors([1])
    res = index.search(sp.csr_matrix(np.ones((1, 4), np.float32)), 4)
    np.testing.assert_array_equal(res.ids, [[0, 2, 3]])  # 3 live documents: width 3


def test_save_load_identical_and_mutable(tmp_path):
    rng = np.random.default_rng(3)
    index = SparseIndex(threads=1)
    for n in (400, 30):
        index.add(random_csr(rng, n, 200, 0.05))
    index.delete([5, 401])
    queries = random_csr(rng, 20, 200, 0.1)
    before = index.search(queries, 10)
    index.save(tmp_path / "idx")
    for mmap in (True, False):
        loaded = SparseIndex.load(tmp_path / "idx", mmap=mmap)
        assert isinstance(loaded._segments[0].docs, np.memmap) == mmap
        assert len(loaded) == len(index)
        after = loaded.search(queries, 10)
        np.testing.assert_array_equal(after.ids, before.ids)
        np.testing.assert_array_equal(after.scores, before.scores)
    loaded.delete([0])  # a memory-mapped index stays mutable; saving over itself is safe
    loaded.add(random_csr(rng, 10, 200, 0.05))
    loaded.save(tmp_path / "idx")
    again = SparseIndex.load(tmp_path / "idx")
    np.testing.assert_array_equal(again.search(queries, 10).ids, loaded.search(queries, 10).ids)


def test_load_rejects_other_folders(tmp_path):
    with pytest.raises(IndexFormatError):
        SparseIndex.load(tmp_path)
    (tmp_path / "meta.json").write_text('{"type": "BM25Index", "format_version": 1}')
    with pytest.raises(IndexFormatError, match="BM25Index"):
        SparseIndex.load(tmp_path)
    for old in (1, 2):
        (tmp_path / "meta.json").write_text(f'{{"type": "SparseIndex", "format_version": {old}}}')
        with pytest.raises(IndexFormatError, match="rebuild"):
            SparseIndex.load(tmp_path)
    (tmp_path / "meta.json").write_text('{"type": "SparseIndex", "format_version": 3}')
    with pytest.raises(IndexFormatError, match="damaged"):
        SparseIndex.load(tmp_path)


def test_input_validation():
    index = SparseIndex()
    with pytest.raises(ValueError, match="negative"):
        index.add(sp.csr_matrix(np.array([[0.5, -0.1]])))
    with pytest.raises(ValueError, match="NaN"):
        index.add(sp.csr_matrix(np.array([[np.nan, 1.0]])))
    with pytest.raises(TypeError):
        index.add(np.ones((2, 2)))
    index.add(sp.csr_matrix(np.array([[1.0, 0.0, 2.0]])))
    with pytest.raises(ValueError, match="columns"):
        index.search(sp.csr_matrix(np.ones((1, 4))), 1)
    with pytest.raises(ValueError, match="k must"):
        index.search(sp.csr_matrix(np.ones((1, 3))), 0)
    with pytest.raises(ValueError, match="weight_dtype"):
        SparseIndex(weight_dtype="int8")


def test_duplicates_unsorted_columns_and_caller_matrix_untouched():
    data, idx, ptr = np.array([1.0, 2.0, 0.5, 0.0]), np.array([2, 0, 2, 1]), np.array([0, 4])
    docs = sp.csr_matrix((data, idx, ptr), shape=(1, 3))
    index = SparseIndex(weight_dtype="float32")
    index.add(docs)
    np.testing.assert_array_equal(docs.data, data)  # not summed in place
    np.testing.assert_allclose(index.doc_vectors([0]).toarray(), [[2.0, 0.0, 1.5]])
    res = index.search(sp.csr_matrix(np.array([[0.0, 0.0, 2.0]])), 3)
    np.testing.assert_allclose(res.scores[0, 0], 3.0)


def test_empty_queries_and_padding():
    index = SparseIndex()
    assert index.search(sp.csr_matrix((2, 5)), 3).ids.shape == (2, 0)  # width min(k, 0 docs)
    index.add(sp.csr_matrix(np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])))
    res = index.search(sp.csr_matrix(np.array([[0.0, 0, 0], [1.0, 0, 0]])), 3)
    assert res.ids.tolist() == [[-1, -1, -1], [0, -1, -1]]
    assert np.isneginf(res.scores[0]).all() and res.scores.shape == (2, 3)
    assert index.search(sp.csr_matrix(np.array([[1.0, 0, 0]])), 10**9).ids.tolist() == [
        [0, -1, -1]
    ]  # k beyond the collection: the whole collection, nothing allocated for 10**9


def test_requantisation_when_a_batch_has_larger_weights():
    index = SparseIndex()
    first = sp.csr_matrix(np.array([[0.5, 1.0, 0.0]]))
    index.add(first)
    index.add(sp.csr_matrix(np.array([[10.0, 0.0, 3.0]])))
    vecs = index.doc_vectors([0, 1]).toarray()
    np.testing.assert_allclose(vecs, [[0.5, 1.0, 0.0], [10.0, 0.0, 3.0]], atol=index.quant_step)


def test_threads_give_identical_results():
    rng = np.random.default_rng(4)
    index = SparseIndex()
    index.add(random_csr(rng, 2000, 300, 0.03))
    queries = random_csr(rng, 25, 300, 0.05)
    one, two = index.search(queries, 10, threads=1), index.search(queries, 10, threads=2)
    np.testing.assert_array_equal(one.ids, two.ids)
    np.testing.assert_array_equal(one.scores, two.scores)
    with pytest.raises(ValueError, match="threads"):
        index.search(queries, 10, threads=0)


def test_one_call_search_equals_the_general_path_with_deletes_and_filters():
    """A one-segment index searched in the calling thread (one compiled call,
    search_segment) gives what the general path gives (threads=2: search_parallel)."""
    rng = np.random.default_rng(9)
    index = SparseIndex()
    index.add(random_csr(rng, 3000, 200, 0.04))
    index.delete(rng.choice(3000, size=300, replace=False))
    queries = random_csr(rng, 12, 200, 0.06)
    allowed = rng.uniform(size=3000) < 0.3
    for kwargs in ({}, {"allowed": allowed}, {"allowed": np.zeros(3000, dtype=bool)}):
        for k in (1, 10, 5000):
            one = index.search(queries, k, threads=1, **kwargs)
            two = index.search(queries, k, threads=2, **kwargs)
            np.testing.assert_array_equal(one.ids, two.ids)
            np.testing.assert_array_equal(one.scores, two.scores)
            assert one.ids.dtype == two.ids.dtype and one.scores.dtype == two.scores.dtype
