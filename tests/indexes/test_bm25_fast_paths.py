"""BM25Index fast paths equal a rebuild: the first searches after a write (rescaled stale
impacts + exact rescoring of candidates) and selective filters (scoring only allowed rows)."""

from __future__ import annotations

import numpy as np
import pytest

import indexes._bm25_common as bm25_common
import indexes.bm25 as bm25_module
from indexes import BM25Index
from indexes import _bm25_row_kernels as row_kernels
from indexes._base import PAD_ID

VARIANTS = ["lucene", "okapi", "bm25l", "bm25+"]


def zipf_corpus(seed: int, n_docs: int, n_queries: int = 60):
    """Documents of 1-40 words drawn from a Zipf-like vocabulary of 400 words, and queries of
    1-5 words (with a repeated word and an unknown one)."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"t{i}" for i in range(400)])
    p = 1.0 / np.arange(1, 401) ** 1.1
    p /= p.sum()
    docs = [list(rng.choice(vocab, size=rng.integers(1, 41), p=p)) for _ in range(n_docs)]
    queries = [list(rng.choice(vocab, size=rng.integers(1, 6), p=p)) for _ in range(n_queries)]
    queries += [["t0", "t0", "t9"], ["t3", "nope"], ["t399"]]
    return docs, queries


def rebuild(variant: str, docs, live: list[int]) -> BM25Index:
    fresh = BM25Index(variant)
    fresh.precompute_delay = None
    fresh.add([docs[i] for i in live])
    return fresh


def assert_same(got, want, live: list[int]) -> None:
    """``got`` (ids of the written index) equals ``want`` (ids of a rebuild over ``live``)."""
    mapped = np.array([*live, PAD_ID])[want.ids]
    np.testing.assert_array_equal(got.ids, mapped)
    np.testing.assert_array_equal(got.scores.view(np.int32), want.scores.view(np.int32))


def count_calls(monkeypatch, obj, name: str) -> list[int]:
    calls = [0]
    original = getattr(obj, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, counted)
    return calls


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("write", ["add", "delete", "upsert", "several"])
def test_first_search_after_a_write_equals_a_rebuild(monkeypatch, variant, write) -> None:
    docs, queries = zipf_corpus(1, 2300)
    index = BM25Index(variant)
    index.precompute_delay = None
    index.add(docs[:1500])
    index.add(docs[1500:2000])
    index.precompute()
    rows = docs[:2000]  # the document of each index row
    gone: set[int] = set()
    if write in ("add", "several"):
        index.add(docs[2000:2100])
        rows += docs[2000:2100]
    if write in ("delete", "upsert", "several"):
        index.delete([5, 17, 400, 1999, 1600])
        gone |= {5, 17, 400, 1999, 1600}
    if write == "upsert":  # document 17 changed: its old row deleted, the new one added
        index.add([[*docs[17][:3], "t1"]])
        rows.append([*docs[17][:3], "t1"])
    if write == "several":  # more writes before any precomputation (no merge of old segments)
        index.add(docs[2100:2120])
        rows += docs[2100:2120]
        index.delete([2050, 3])
        gone |= {2050, 3}
    live = [i for i in range(len(rows)) if i not in gone]
    full = count_calls(monkeypatch, index, "_search_all")
    fresh = rebuild(variant, rows, live)
    for k in (1, 10, 37):
        for q in queries:
            assert_same(index.search([q], k=k), fresh.search([q], k=k), live)
    n_searches = 3 * len(queries)
    if variant == "bm25+":  # its per-query offset changes too: scored at query time
        assert full[0] == n_searches
    else:  # most searches are proven exact from the candidates
        assert full[0] < n_searches / 4
    index.precompute()  # and the precomputed impacts agree bit for bit
    assert_same(index.search(queries, k=10), fresh.search(queries, k=10), live)


def test_ties_at_the_kth_score_fall_back_to_query_time(monkeypatch) -> None:
    # Identical documents tie: no candidate list shorter than all of them is provably exact.
    docs = [["a", "b"]] * 300 + [["c"]] * 5
    index = BM25Index()
    index.precompute_delay = None
    index.add(docs)
    index.precompute()
    index.add([["a", "c"]])
    full = count_calls(monkeypatch, index, "_search_all")
    got = index.search([["a"]], k=5)
    assert full[0] == 1
    want = rebuild("lucene", [*docs, ["a", "c"]], list(range(306))).search([["a"]], k=5)
    assert_same(got, want, list(range(306)))
    assert got.ids[0].tolist() == [0, 1, 2, 3, 4]  # equal scores: smallest ids


@pytest.mark.parametrize("precomputed", [True, False])
@pytest.mark.parametrize("gallop_ratio", [4, 10**9])  # gallop long lists / walk every list
def test_selective_filters_equal_the_unfiltered_ranking(
    monkeypatch, precomputed, gallop_ratio
) -> None:
    monkeypatch.setattr(bm25_common, "_GALLOP_RATIO", gallop_ratio)
    docs, queries = zipf_corpus(2, 6000, n_queries=30)
    index = BM25Index()
    index.precompute_delay = None
    index.add(docs[:5000])
    index.add(docs[5000:])
    index.delete([7, 5001])
    if precomputed:
        index.precompute()
    n = len(docs)
    full = index.search(queries, k=n)
    selective = count_calls(monkeypatch, row_kernels, "search_allowed")
    rng = np.random.default_rng(3)
    for fraction in (0.001, 0.01, 0.03, 0.1, 0.5):
        allowed = rng.random(n) < fraction
        allowed[7] = True  # a deleted document stays out however allowed
        before = selective[0]
        got = index.search(queries, k=10, allowed=allowed)
        assert (selective[0] > before) == (fraction < 1 / bm25_common._SELECTIVE_RATIO)
        for row in range(len(queries)):
            ids = full.ids[row]
            keep = (ids >= 0) & allowed[np.maximum(ids, 0)]
            want_ids, want_scores = ids[keep][:10], full.scores[row][keep][:10]
            m = want_ids.size
            np.testing.assert_array_equal(got.ids[row][:m], want_ids)
            np.testing.assert_array_equal(got.scores[row][:m], want_scores)
            assert np.all(got.ids[row][m:] == PAD_ID)


def test_an_add_processed_in_chunks_equals_one_pass(monkeypatch) -> None:
    docs, queries = zipf_corpus(4, 700)
    docs[5] = []  # an empty document inside a chunk
    whole = BM25Index()
    whole.add(docs)
    monkeypatch.setattr(bm25_module, "_ADD_TOKENS", 37)  # about two documents per chunk
    chunked = BM25Index()
    chunked.add(docs)
    a, b = whole._segments[0], chunked._segments[0]
    for name in bm25_module._SEG_ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert whole.vocabulary == chunked.vocabulary
    assert_same(chunked.search(queries, k=10), whole.search(queries, k=10), list(range(700)))
