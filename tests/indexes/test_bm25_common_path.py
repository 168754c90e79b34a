"""BM25Index.search's common path (``_search_common``: token checks at C speed, kernel
arguments made once per state) gives what the general path gives, results and errors alike.

A tuple of token lists takes the general path (the reference here); lists take the common one.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from indexes import BM25Index

VARIANTS = ["lucene", "okapi", "bm25l", "bm25+"]


def _corpus(seed=0, n_docs=600, n_queries=40):
    rng = np.random.default_rng(seed)
    vocab = [f"t{i}" for i in range(300)]
    p = 1.0 / np.arange(1, 301) ** 1.1
    p /= p.sum()
    docs = [
        [vocab[i] for i in rng.choice(300, size=rng.integers(1, 30), p=p)] for _ in range(n_docs)
    ]
    queries = [
        [vocab[i] for i in rng.choice(300, size=rng.integers(1, 6), p=p)] for _ in range(n_queries)
    ]
    return docs, [*queries, ["t0", "t0", "t7"], ["t3", "unknown"], ["unknown"], []]


def _index(variant, docs, parts=1):
    index = BM25Index(variant)
    index.precompute_delay = None
    cuts = [0, len(docs)] if parts == 1 else [0, 480, 570, len(docs)]  # 3 parts: no merge
    for lo, hi in pairwise(cuts):
        index.add(docs[lo:hi])
    index.precompute()
    return index


def _same(a, b):
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert a.ids.dtype == b.ids.dtype and a.scores.dtype == b.scores.dtype


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("parts", [1, 3])
def test_common_path_equals_the_general_path(variant, parts):
    docs, queries = _corpus()
    index = _index(variant, docs, parts)
    index.delete([3, 250, 599])
    index.precompute()
    assert index._state.impacts is not None and len(index._state.segments) == parts
    positive = index._state.positive
    for k in (1, 10, 600):
        for q in queries:
            found = index._search_common([q], k)
            assert (found is not None) == positive  # okapi may have negative contributions
            _same(index.search([q], k), index.search(([*q],), k))
            if found is not None:
                _same(found, index.search(([*q],), k))
        batch = index._search_common(queries, k)  # a batch, with an empty query in it
        assert (batch is not None) == positive
        _same(index.search(queries, k), index.search(tuple(queries), k))


def test_str_subclasses_and_numpy_strings_are_tokens():
    docs, queries = _corpus(1)
    index = _index("lucene", docs)

    class Token(str):
        pass

    q = queries[0]
    for tokens in ([Token(t) for t in q], list(np.array(q))):
        found = index._search_common([tokens], 10)
        assert found is not None
        _same(found, index.search(([*q],), 10))


def test_not_yet_precomputed_and_filtered_searches_take_the_general_path():
    docs, queries = _corpus(2)
    index = BM25Index()
    index.precompute_delay = None
    index.add(docs)
    assert index._search_common([queries[0]], 10) is None  # impacts not precomputed yet
    index.precompute()
    assert index._search_common([queries[0]], 10) is not None
    index.add([["t1", "t2"]])  # a write: stale impacts until the next precomputation
    assert index._search_common([queries[0]], 10) is None
    _same(index.search([queries[0]], 10), index.search((queries[0],), 10))


@pytest.mark.parametrize(
    "queries, message",
    [
        ([["a", 1]], "queries[0][1] is int 1; tokens must be str"),
        ([["a"], ["b", None]], "queries[1][1] is NoneType None; tokens must be str"),
        ([["a", ["b"]]], "queries[0][1] is list ['b']; tokens must be str"),
        (["a", "b"], "queries must be a list of token lists"),
        ([["a"], "b"], "queries[1] must be a list of string tokens, got str 'b'"),
        ([["a"], 3], "queries[1] must be a list of string tokens, got int 3"),
    ],
)
def test_bad_tokens_raise_the_general_paths_error(queries, message):
    docs, _ = _corpus(3, n_docs=50)
    index = _index("lucene", docs)
    assert index._search_common(queries, 5) is None
    with pytest.raises(TypeError) as err:
        index.search(queries, 5)
    assert str(err.value).startswith(message)


def test_tuples_of_tokens_inside_a_list_give_the_same_results():
    docs, queries = _corpus(4)
    index = _index("lucene", docs)
    q = queries[1]
    assert index._search_common([tuple(q)], 5) is None  # the general path accepts tuples
    _same(index.search([tuple(q)], 5), index.search([q], 5))
