"""BM25Index: parity with rank_bm25 and bm25s, hand-worked Lucene scores, writes, persistence."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import indexes._bm25_common as bm25_common
from indexes import BM25Index, IndexFormatError, SearchResult
from indexes._base import PAD_ID

rank_bm25 = pytest.importorskip("rank_bm25")

VOCAB = [f"w{i}" for i in range(40)]


def make_corpus(seed: int, n_docs: int = 120) -> tuple[list[list[str]], list[list[str]]]:
    """Skewed random corpus (a few terms in more than half the docs) and queries."""
    rng = np.random.default_rng(seed)
    p = np.r_[np.full(5, 0.08), np.full(35, 0.6 / 35)]
    docs = [list(rng.choice(VOCAB, size=rng.integers(0, 25), p=p)) for _ in range(n_docs)]
    queries = [list(rng.choice(VOCAB, size=rng.integers(1, 6))) for _ in range(40)]
    queries += [["w0", "w0", "w7"], ["unknown"], [], ["w1", "nope"]]
    return docs, queries


def hits(docs: list[list[str]], query: list[str]) -> set[int]:
    q = set(query)
    return {i for i, d in enumerate(docs) if q & set(d)}


def check_against(res: SearchResult, docs, queries, score_fn) -> None:
    """Every hit's score equals the reference; hit sets are the docs sharing a term."""
    for row, q in enumerate(queries):
        ids = res.ids[row]
        found = ids[ids != PAD_ID]
        assert set(found.tolist()) == hits(docs, q)
        if found.size:
            ref = score_fn(q)
            np.testing.assert_allclose(
                res.scores[row][: found.size], ref[found], rtol=1e-5, atol=1e-5
            )
            # Ranking: score descending, ties by smaller id.
            order = sorted(found.tolist(), key=lambda d: (-np.float32(ref[d]), d))
            scores = res.scores[row][: found.size]
            assert np.all(np.diff(scores) <= 1e-5)
            assert set(order) == set(found.tolist())
        assert np.all(np.isneginf(res.scores[row][found.size :]))


@pytest.mark.parametrize(
    ("variant", "cls"),
    [("okapi", "BM25Okapi"), ("bm25l", "BM25L"), ("bm25+", "BM25Plus")],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_parity_with_rank_bm25(variant: str, cls: str, seed: int) -> None:
    docs, queries = make_corpus(seed)
    index = BM25Index(variant)
    index.add(docs)
    res = index.search(queries, k=len(docs))
    ref = getattr(rank_bm25, cls)(docs)
    check_against(res, docs, queries, ref.get_scores)


def test_parity_custom_params() -> None:
    docs, queries = make_corpus(3)
    for variant, cls, kw in [
        ("okapi", "BM25Okapi", {"k1": 0.9, "b": 0.4, "epsilon": 0.5}),
        ("bm25l", "BM25L", {"k1": 1.2, "b": 0.3, "delta": 1.0}),
        ("bm25+", "BM25Plus", {"k1": 2.0, "b": 0.9, "delta": 0.5}),
    ]:
        index = BM25Index(variant, **kw)
        index.add(docs)
        ref = getattr(rank_bm25, cls)(docs, **kw)
        check_against(index.search(queries, k=len(docs)), docs, queries, ref.get_scores)


def test_okapi_epsilon_floor_is_used() -> None:
    # "a" is in 3 of 4 docs: negative raw IDF, replaced by 0.25 x mean IDF (rank_bm25).
    docs = [["a", "b"], ["a", "c"], ["a", "d"], ["e"]]
    index = BM25Index("okapi")
    index.add(docs)
    res = index.search([["a"]], k=4)
    ref = rank_bm25.BM25Okapi(docs).get_scores(["a"])
    assert res.ids[0].tolist() == [0, 1, 2, PAD_ID]
    np.testing.assert_allclose(res.scores[0][:3], ref[:3], rtol=1e-6)
    assert res.scores[0][0] > 0


def test_rankings_match_bm25s() -> None:
    bm25s = pytest.importorskip("bm25s")
    rng = np.random.default_rng(7)
    # Uniform vocabulary: no term in more than half the docs, so okapi == bm25s "robertson".
    docs = [list(rng.choice(VOCAB, size=rng.integers(3, 30))) for _ in range(300)]
    queries = [list(rng.choice(VOCAB, size=rng.integers(1, 5))) for _ in range(30)]
    # bm25s "robertson" leaves out the constant factor (k1 + 1) of rank_bm25's okapi.
    for ours, theirs, kw, scale in [
        ("lucene", "lucene", {"k1": 1.2, "b": 0.75}, 1.0),
        ("okapi", "robertson", {"k1": 1.5, "b": 0.75}, 2.5),
        ("bm25+", "bm25+", {"k1": 1.5, "b": 0.75, "delta": 1.0}, 1.0),
    ]:
        index = BM25Index(ours, **kw)
        index.add(docs)
        res = index.search(queries, k=len(docs))
        ref = bm25s.BM25(method=theirs, **kw)
        ref.index(docs, show_progress=False)
        for row, q in enumerate(queries):
            scores = ref.get_scores(q) * scale
            found = res.ids[row][res.ids[row] != PAD_ID]
            expected = sorted(hits(docs, q), key=lambda d: (-scores[d], d))
            np.testing.assert_allclose(res.scores[row][: found.size], scores[found], rtol=1e-4)
            # Same order wherever bm25s' float32 scores are not (near-)tied.
            gaps = np.abs(np.diff(scores[np.array(expected)])) > 1e-4
            same = found == np.array(expected)
            assert same[:-1][gaps].all() and (same[0] or not gaps[0]), (ours, q)


def test_lucene_hand_worked() -> None:
    # N=3, avgdl=(2+4+1)/3=7/3, k1=1.2, b=0.75; "x": df=2, "y": df=1.
    # idf_x = ln(1 + 1.5/2.5) = ln 1.6 = 0.470004; idf_y = ln(1 + 2.5/1.5) = 0.980829.
    # doc 0 (dl=2): norm = 0.25 + 0.75*2/(7/3) = 0.892857; tf part = 1/(1 + 1.2*0.892857) = 0.482759
    #   score("x y") = (0.470004 + 0.980829) * 0.482759 = 0.700402
    # doc 1 (dl=4, tf_x=2): norm = 1.535714; tf part = 2/(2 + 1.842857) = 0.520446
    #   score("x") = 0.470004 * 0.520446 = 0.244612
    index = BM25Index()  # lucene, k1=1.2, b=0.75
    index.add([["x", "y"], ["x", "x", "z", "z"], ["z"]])
    res = index.search([["x", "y"], ["x"]], k=3)
    assert res.ids.tolist() == [[0, 1, -1], [1, 0, -1]]
    np.testing.assert_allclose(res.scores[0][:2], [0.700402, 0.244612], atol=2e-6)
    np.testing.assert_allclose(res.scores[1][:2], [0.244612, 0.470004 * 0.482759], atol=2e-6)


def test_repeated_query_terms_count_each_time() -> None:
    docs, _ = make_corpus(4)
    index = BM25Index("okapi")
    index.add(docs)
    once = index.search([["w10"]], k=5)
    twice = index.search([["w10", "w10"]], k=5)
    np.testing.assert_array_equal(once.ids, twice.ids)
    np.testing.assert_allclose(
        twice.scores[0][once.ids[0] >= 0], 2 * once.scores[0][once.ids[0] >= 0], rtol=1e-6
    )


def test_ties_break_by_smaller_id_and_padding() -> None:
    index = BM25Index()
    index.add([["a"], ["b"], ["a"], ["a"]])
    res = index.search([["a"], [], ["zzz"]], k=5)
    assert res.ids.dtype == np.int64 and res.scores.dtype == np.float32
    assert res.ids.shape == res.scores.shape == (3, 4)  # min(k, 4 documents)
    assert res.ids[0].tolist() == [0, 2, 3, -1]
    assert np.all(np.isneginf(res.scores[0][3:]))
    assert res.ids[1].tolist() == [-1] * 4 and res.ids[2].tolist() == [-1] * 4
    top1 = index.search([["a"]], k=1)
    assert top1.ids.tolist() == [[0]]


def test_large_collection_sparse_path_matches_dense() -> None:
    # A rare term touches few docs (touched-list path); a common one takes the dense scan.
    rng = np.random.default_rng(5)
    docs = [["common", f"r{rng.integers(0, 2000)}"] for _ in range(3000)]
    index = BM25Index("bm25+")
    index.add(docs)
    ref = rank_bm25.BM25Plus(docs)
    queries = [["r5"], ["r5", "common"], ["r7", "r9"]]
    check_against(index.search(queries, k=3000), docs, queries, ref.get_scores)


def _search_every_path(index: BM25Index, queries, k: int, monkeypatch) -> list[SearchResult]:
    """Results of the positive kernel's blocked (several block sizes) and touched-list paths,
    then of the general kernel."""
    out = []
    # A ratio of 10**6 sends every query to the blocked path, 0 to the touched-list one.
    for block, ratio in [(64, 10**6), (128, 10**6), (16_384, 10**6), (64, 0)]:
        monkeypatch.setattr(bm25_common, "_BLOCK_DOCS", block)
        monkeypatch.setattr(bm25_common, "_SPARSE_RATIO", ratio)
        out.append(index.search(queries, k))
    index._positive = False  # force the general kernel (impacts that may be <= 0)
    out.append(index.search(queries, k))
    index._positive = None
    index.precompute()  # then the same with precomputed contributions
    assert index._state.impacts is not None
    for block, ratio in [(64, 10**6), (16_384, 10**6), (64, 0)]:
        monkeypatch.setattr(bm25_common, "_BLOCK_DOCS", block)
        monkeypatch.setattr(bm25_common, "_SPARSE_RATIO", ratio)
        out.append(index.search(queries, k))
    index._positive = False
    out.append(index.search(queries, k))
    index._positive = None
    return out


@pytest.mark.parametrize(
    ("variant", "kw"),
    [
        ("lucene", {}),
        ("okapi", {}),
        ("bm25l", {}),
        ("bm25+", {}),
        ("bm25+", {"delta": 40.0}),
    ],
)
def test_search_paths_are_bit_identical(variant: str, kw: dict, monkeypatch) -> None:
    # Several accumulator blocks (incl. a partial last one); ties from short, repeated docs.
    rng = np.random.default_rng(9)
    docs = [list(rng.choice(VOCAB[:12], size=rng.integers(0, 4))) for _ in range(1000)]
    queries = [list(rng.choice(VOCAB[:14], size=rng.integers(1, 6))) for _ in range(30)]
    index = BM25Index(variant, **kw)
    index.add(docs)
    index.delete(range(0, 1000, 7))
    for k in (1, 10, 1000):
        first, *rest = _search_every_path(index, queries, k, monkeypatch)
        for other in rest:
            np.testing.assert_array_equal(other.ids, first.ids)
            np.testing.assert_array_equal(other.scores.view(np.int32), first.scores.view(np.int32))
    if variant != "lucene":  # lucene parity is test_lucene_hand_worked / bm25s
        names = {"okapi": "BM25Okapi", "bm25l": "BM25L", "bm25+": "BM25Plus"}
        ref = getattr(rank_bm25, names[variant])
        live = [d for i, d in enumerate(docs) if i % 7]
        got = index.search(queries, 1000)
        remap = np.array([i for i in range(1000) if i % 7])
        for row, q in enumerate(queries):
            found = got.ids[row][got.ids[row] != PAD_ID]
            local = np.searchsorted(remap, found)
            assert set(local.tolist()) == hits(live, q)
            want = ref(live, **kw).get_scores(q)[local]
            np.testing.assert_allclose(got.scores[row][: found.size], want, rtol=1e-5)


def test_writes_drop_precomputed_contributions_and_searches_never_wait(monkeypatch) -> None:
    docs, queries = make_corpus(4, n_docs=200)
    index = BM25Index()
    index.precompute_delay = None  # no background thread: precompute by hand
    index.add(docs[:150])
    index.precompute()
    before = index.search(queries, k=20)
    assert index._state.impacts is not None
    index.add(docs[150:])  # new statistics: the precomputed contributions are stale
    assert index._state.impacts is None
    index.delete([3, 160])
    fresh = BM25Index()
    fresh.precompute_delay = None
    live = [i for i in range(200) if i not in (3, 160)]
    fresh.add([docs[i] for i in live])
    got, want = index.search(queries, k=20), fresh.search(queries, k=20)
    np.testing.assert_array_equal(got.ids, np.array([*live, PAD_ID])[want.ids])
    np.testing.assert_array_equal(got.scores, want.scores)
    index.precompute()
    np.testing.assert_array_equal(index.search(queries, k=20).scores, got.scores)
    assert not np.array_equal(before.scores, got.scores)
    timed = BM25Index()
    timed.precompute_delay = 0.05
    timed.add(docs)
    for _ in range(200):  # the background thread attaches them shortly after the write
        if timed._state.impacts is not None:
            break
        time.sleep(0.05)
    assert timed._state.impacts is not None


def test_ties_across_blocks_keep_smallest_ids(monkeypatch) -> None:
    monkeypatch.setattr(bm25_common, "_BLOCK_DOCS", 64)
    monkeypatch.setattr(bm25_common, "_SPARSE_RATIO", 10**6)  # blocked path, 8 blocks
    index = BM25Index()
    index.add([["a", "b"] if i % 3 else ["c"] for i in range(500)])
    res = index.search([["a"], ["a", "c"]], k=5)
    assert res.ids[0].tolist() == [1, 2, 4, 5, 7]
    assert res.ids[1].tolist() == [0, 3, 6, 9, 12]  # "c" is rarer: higher idf, shorter docs


def test_zero_impacts_take_the_general_path() -> None:
    # epsilon=0: "a" (in 3 of 4 docs) gets idf 0, so its hits score 0 and still count as hits.
    docs = [["a", "b"], ["a", "c"], ["a"], ["d"]]
    index = BM25Index("okapi", epsilon=0.0)
    index.add(docs)
    res = index.search([["a"], ["a", "b"]], k=4)
    assert index._state.positive is False
    assert res.ids[0].tolist() == [0, 1, 2, PAD_ID]
    np.testing.assert_array_equal(res.scores[0][:3], 0.0)
    ref = rank_bm25.BM25Okapi(docs, epsilon=0.0)
    check_against(res, docs, [["a"], ["a", "b"]], ref.get_scores)


@pytest.mark.parametrize("variant", ["okapi", "lucene", "bm25l", "bm25+"])
def test_add_delete_equals_rebuild(variant: str) -> None:
    docs, queries = make_corpus(11, n_docs=90)
    index = BM25Index(variant)
    assert index.add(docs[:30]).tolist() == list(range(30))
    index.search(queries[:1], k=3)  # commit in between
    index.delete([3, 4, 29])
    ids = index.add(docs[30:70])
    assert ids.tolist() == list(range(30, 70))
    index.delete(np.array([30, 0]))
    index.add(docs[70:])
    index.delete([89])
    dead = {0, 3, 4, 29, 30, 89}
    live = [i for i in range(len(docs)) if i not in dead]
    assert len(index) == len(live)
    fresh = BM25Index(variant)
    fresh.add([docs[i] for i in live])
    got = index.search(queries, k=len(docs))
    want = fresh.search(queries, k=len(docs))
    remap = np.array([*live, PAD_ID])
    np.testing.assert_array_equal(got.ids, remap[want.ids])
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6)


def test_delete_errors_and_vocabulary_only_in_deleted_docs() -> None:
    index = BM25Index("okapi")
    index.add([["a", "b"], ["only"], ["a"]])
    with pytest.raises(KeyError):
        index.delete([7])
    index.delete([1])
    with pytest.raises(KeyError):
        index.delete([1])
    assert index.search([["only"]], k=2).ids.tolist() == [[-1, -1]]
    assert dict(index.vocabulary) == {"a": 0, "b": 1, "only": 2}  # terms ever added
    with pytest.raises(TypeError):
        index.vocabulary["c"] = 3  # read-only view
    # The okapi mean IDF ignores "only" now, as a rebuild would.
    ref = rank_bm25.BM25Okapi([["a", "b"], ["a"]])
    res = index.search([["a", "b"]], k=2)
    np.testing.assert_allclose(res.scores[0], ref.get_scores(["a", "b"]), rtol=1e-6)
    assert res.ids[0].tolist() == [0, 2]
    index.delete([0, 2])
    assert len(index) == 0
    assert index.search([["a"]], k=1).ids.tolist() == [[]]  # no live documents: width 0


def test_explain_sums_to_score() -> None:
    docs, _queries = make_corpus(2)
    for variant in ("okapi", "lucene", "bm25+"):
        index = BM25Index(variant)
        index.add(docs)
        q = ["w0", "w0", "w12", "w3", "unknown"]
        res = index.search([q], k=5)
        for doc_id, score in zip(res.ids[0], res.scores[0], strict=True):
            parts = index.explain(q, int(doc_id))
            assert sum(v for _, v in parts) == pytest.approx(float(score), rel=1e-5)
            assert [v for _, v in parts] == sorted((v for _, v in parts), reverse=True)
            assert {t for t, _ in parts} <= set(q)
    with pytest.raises(KeyError):
        index.explain(["w0"], 10_000)


def test_save_load_roundtrip(tmp_path) -> None:
    docs, queries = make_corpus(6)
    index = BM25Index("bm25l", k1=1.3, delta=0.7)
    index.add(docs)
    index.delete([5])
    before = index.search(queries, k=10)
    extra = {"analyzer": {"name": "english", "stem": True}}
    index.save(tmp_path / "bm25", extra=extra)
    meta = json.loads((tmp_path / "bm25" / "meta.json").read_text())
    assert meta["type"] == "BM25Index" and meta["format_version"] == 2
    for mmap in (True, False):
        loaded = BM25Index.load(tmp_path / "bm25", mmap=mmap)
        assert loaded.variant == "bm25l" and loaded.params == index.params
        assert loaded.extra == extra and len(loaded) == len(index)
        after = loaded.search(queries, k=10)
        np.testing.assert_array_equal(before.ids, after.ids)
        np.testing.assert_array_equal(before.scores, after.scores)
        if mmap:
            assert isinstance(loaded._state.segments[0].docs, np.memmap)
        # A loaded (read-only) index still takes writes.
        new = loaded.add([["w1", "w2"]])
        assert new.tolist() == [len(docs)]
        loaded.delete([0])
        assert len(loaded) == len(index)
        assert loaded.search([["w1"]], k=200).ids.max() == len(docs)
    # Saving over the folder a memory-mapped index was loaded from is safe.
    mapped = BM25Index.load(tmp_path / "bm25")
    mapped.save(tmp_path / "bm25")
    np.testing.assert_array_equal(mapped.search(queries, k=10).ids, before.ids)
    np.testing.assert_array_equal(
        BM25Index.load(tmp_path / "bm25").search(queries, k=10).ids, before.ids
    )


def test_format_1_saves_still_load(tmp_path) -> None:
    # Format 1 kept one compacted postings list (term-major docs, tfs) with precomputed impacts.
    docs = [["a", "b", "a"], ["b", "c"], ["c"], ["a", "d"]]
    terms = ["a", "b", "c", "d"]
    folder = tmp_path / "v1"
    folder.mkdir()
    arrays = {
        "indptr": np.array([0, 2, 4, 6, 7], np.int64),
        "docs": np.array([0, 3, 0, 1, 1, 2, 3], np.int32),
        "tfs": np.array([2, 1, 1, 1, 1, 1, 1], np.int32),
        "impacts": np.zeros(7, np.float32),
        "absent": np.zeros(4, np.float32),
        "doc_len": np.array([3, 2, 1, 2], np.int32),
        "live": np.array([1, 1, 0, 1], bool),
    }
    arrays["docs"], arrays["tfs"] = arrays["docs"][[0, 1, 2, 3, 4, 6]], arrays["tfs"][:6]
    arrays["indptr"] = np.array([0, 2, 4, 5, 6], np.int64)  # doc 2 (deleted) compacted away
    for name, arr in arrays.items():
        np.save(folder / f"{name}.npy", arr)
    (folder / "terms.json").write_text(json.dumps(terms))
    (folder / "meta.json").write_text(
        json.dumps(
            {
                "type": "BM25Index",
                "format_version": 1,
                "variant": "okapi",
                "params": {"k1": 1.5, "b": 0.75, "epsilon": 0.25},
                "n_terms": 4,
            }
        )
    )
    loaded = BM25Index.load(folder)
    fresh = BM25Index("okapi")
    fresh.add([docs[0], docs[1], [], docs[3]])
    fresh.delete([2])
    queries = [["a"], ["b", "c"], ["d", "a"]]
    got, want = loaded.search(queries, k=4), fresh.search(queries, k=4)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.scores, want.scores)
    loaded.delete([0])  # the rebuilt forward index gives deletes their statistics
    fresh.delete([0])
    np.testing.assert_array_equal(
        loaded.search(queries, k=4).scores, fresh.search(queries, k=4).scores
    )


def test_load_errors(tmp_path) -> None:
    with pytest.raises(IndexFormatError):
        BM25Index.load(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"type": "SparseIndex", "format_version": 1}))
    with pytest.raises(IndexFormatError):
        BM25Index.load(tmp_path)
    index = BM25Index()
    index.add([["a"]])
    index.save(tmp_path / "ok")
    (tmp_path / "ok" / "seg0_tfs.npy").unlink()
    with pytest.raises(IndexFormatError, match="seg0_tfs"):
        BM25Index.load(tmp_path / "ok")
    with pytest.raises(TypeError):
        index.save(tmp_path / "bad", extra={"f": object()})


def test_parameter_and_input_errors() -> None:
    with pytest.raises(ValueError, match="bm25l"):
        BM25Index("bm42")
    with pytest.raises(ValueError, match="delta"):
        BM25Index("lucene", delta=0.5)
    with pytest.raises(ValueError, match="epsilon"):
        BM25Index("bm25+", epsilon=0.5)
    with pytest.raises(ValueError):
        BM25Index(b=1.5)
    index = BM25Index()
    index.add([["a"]])
    with pytest.raises(TypeError):
        index.add(["a", "b"])
    with pytest.raises(TypeError):
        index.search(["a"], k=1)
    with pytest.raises(ValueError):
        index.search([["a"]], k=0)
    assert BM25Index().params == {"k1": 1.2, "b": 0.75}
    assert BM25Index("okapi").params == {"k1": 1.5, "b": 0.75, "epsilon": 0.25}


def test_empty_index_and_empty_documents() -> None:
    index = BM25Index()
    assert index.search([["a"]], k=2).ids.tolist() == [[]]  # width min(k, 0 documents)
    assert index.add([]).tolist() == []
    index.add([[], []])
    assert len(index) == 2
    assert index.search([["a"]], k=2).ids.tolist() == [[-1, -1]]
    index.add([["a"]])
    assert index.search([["a"]], k=2).ids.tolist() == [[2, -1]]


_doc = st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f"]), max_size=6)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(_doc, min_size=1, max_size=4)),
        st.tuples(st.just("delete"), st.integers(0, 10_000)),
        st.tuples(st.just("search"), st.just(None)),
    ),
    min_size=1,
    max_size=10,
)


@settings(max_examples=40, deadline=None)
@given(ops=_ops, variant=st.sampled_from(["okapi", "lucene", "bm25l", "bm25+"]))
def test_any_write_sequence_equals_rebuild(ops, variant) -> None:
    index = BM25Index(variant)
    docs: dict[int, list[str]] = {}
    queries = [["a"], ["b", "c"], ["a", "f", "f"], ["e", "d", "zz"]]
    for op, arg in ops:
        if op == "add":
            ids = index.add(arg)
            docs.update(zip(ids.tolist(), arg, strict=True))
        elif op == "delete" and docs:
            victim = sorted(docs)[arg % len(docs)]
            index.delete([victim])
            del docs[victim]
        else:
            index.search(queries, k=3)
    live = sorted(docs)
    fresh = BM25Index(variant)
    fresh.add([docs[i] for i in live])
    n = max(len(live), 1)
    got, want = index.search(queries, k=n), fresh.search(queries, k=n)
    remap = np.array([*live, PAD_ID])
    np.testing.assert_array_equal(got.ids, remap[want.ids])
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6)
    assert len(index) == len(live)
