"""indexes.joint.search_lexical: a SPLADE and a BM25 search in one GIL-free call give exactly what
the two indexes' own searches give, and decline (None) wherever either takes other steps."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
import scipy.sparse as sp

from indexes import BM25Index, SparseIndex
from indexes.joint import search_lexical


def _indexes(seed=0, n_docs=500, dim=60, parts=1, variant="lucene"):
    rng = np.random.default_rng(seed)
    vecs = sp.random(n_docs, dim, density=0.15, format="csr", random_state=rng, dtype=np.float32)
    splade = SparseIndex()
    splade.add(vecs * 3)
    vocab = [f"t{i}" for i in range(200)]
    docs = [[vocab[i] for i in rng.integers(0, 200, rng.integers(1, 25))] for _ in range(n_docs)]
    bm25 = BM25Index(variant)
    bm25.precompute_delay = None
    cuts = [0, n_docs] if parts == 1 else [0, 400, 460, n_docs]
    for lo, hi in pairwise(cuts):
        bm25.add(docs[lo:hi])
    bm25.precompute()
    return splade, bm25, rng, vocab


def _query(rng, dim=60):
    cols = np.sort(rng.choice(dim, size=int(rng.integers(1, 10)), replace=False))
    data = rng.uniform(0.01, 3.0, cols.size).astype(np.float32)
    return sp.csr_matrix((data, cols, np.array([0, cols.size])), shape=(1, dim))


def _same(a, b):
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.ids.dtype == b.ids.dtype and a.scores.dtype == b.scores.dtype


@pytest.mark.parametrize("variant", ["lucene", "okapi", "bm25l", "bm25+"])
def test_one_call_gives_both_searches_results(variant):
    splade, bm25, rng, vocab = _indexes(variant=variant)
    splade.delete(np.arange(0, 500, 7))  # deleted documents are skipped by both kernels
    bm25.delete(np.arange(3, 500, 11))
    bm25.precompute()
    for _ in range(30):
        q = _query(rng)
        known = [vocab[i] for i in rng.integers(0, 200, rng.integers(1, 5))]
        tokens = [[*known, f"t{rng.integers(200, 230)}"]]  # and a term no document has
        for k in (1, 10, 100, 10**6):
            found = search_lexical(splade, q, bm25, tokens, k)
            assert found is not None
            _same(found[0], splade.search(q, k))
            _same(found[1], bm25.search(tokens, k))


def test_a_non_canonical_splade_query_is_searched_by_the_general_path():
    splade, bm25, _, _ = _indexes()
    q = sp.csr_matrix(
        (np.array([1.0, 0.0, 2.0], np.float32), np.array([9, 3, 9]), np.array([0, 3])),
        shape=(1, 60),
    )  # unsorted, a zero and a duplicate column: canonicalised by the general path
    found = search_lexical(splade, q, bm25, [["t1", "t2"]], 10)
    assert found is not None
    _same(found[0], splade.search(q, 10))
    _same(found[1], bm25.search([["t1", "t2"]], 10))
    assert q.nnz == 3  # the caller's matrix is untouched


def test_declines_where_either_search_takes_other_steps():
    splade, bm25, rng, _ = _indexes()
    q = _query(rng)
    assert search_lexical(splade, q, bm25, [["unknown"]], 10) is None  # no known term: no kernel
    assert search_lexical(splade, q, bm25, (["t1"],), 10) is None  # a tuple: the general path
    assert search_lexical(splade, q, bm25, [["t1"]], 0) is None
    assert search_lexical(splade, q.astype(np.float64), bm25, [["t1"]], 10) is None
    _, multi, _, _ = _indexes(parts=3)  # BM25 of several segments
    assert search_lexical(splade, q, multi, [["t1"]], 10) is None
    fresh = BM25Index()
    fresh.precompute_delay = None
    fresh.add([["t1", "t2"], ["t2"]])  # impacts not precomputed yet
    assert search_lexical(splade, q, fresh, [["t1"]], 10) is None
    bad = sp.csr_matrix((np.array([np.nan], np.float32), [1], [0, 1]), shape=(1, 60))
    with pytest.raises(ValueError, match="NaN or infinite"):  # the general path's error
        search_lexical(splade, bad, bm25, [["t1"]], 10)


def test_scratch_buffers_go_back_clean_for_the_next_search():
    splade, bm25, rng, _ = _indexes()
    q, tokens = _query(rng), [["t1", "t5", "t9"]]
    first = search_lexical(splade, q, bm25, tokens, 50)
    for _ in range(5):  # pooled accumulators reused: dirty ones would change the scores
        again = search_lexical(splade, q, bm25, tokens, 50)
        _same(again[0], first[0])
        _same(again[1], first[1])
    assert len(splade._pool) >= 1
