"""Filtered search: every index searches only allowed rows (exactly the unfiltered ranking with
the other documents removed, same scores), and the engine's ``search(filter=)``, ``retrieve``,
persistence and CLI on top of it."""

from __future__ import annotations

import zlib
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from hybrid.engine import Candidates, HybridRetriever
from hybrid.engine.filters import FilterError, matches, parse
from hybrid.engine.retrievers import BM25Retriever, DenseRetriever, SpladeRetriever
from indexes import BM25Index, DenseIndex, SearchResult, SparseIndex

SELECTIVITIES = [0.0, 0.002, 0.01, 0.1, 0.5, 1.0]


def _expected(full: SearchResult, q: int, allowed: np.ndarray, k: int):
    """Query ``q``'s unfiltered full ranking with disallowed documents removed, top ``k``."""
    ids, scores = full.ids[q], full.scores[q]
    keep = (ids >= 0) & allowed[np.maximum(ids, 0)]
    return ids[keep][:k], scores[keep][:k]


def _check_exact(index, queries, n_ids: int, rng, k: int = 10, exact_scores: bool = True):
    full = index.search(queries, n_ids)
    for sel in SELECTIVITIES:
        allowed = rng.random(n_ids) < sel
        got = index.search(queries, k, allowed=allowed)
        for q in range(got.ids.shape[0]):
            ids, scores = _expected(full, q, allowed, k)
            n = ids.size
            assert np.array_equal(got.ids[q, :n], ids), (sel, q)
            if exact_scores:
                assert np.array_equal(got.scores[q, :n], scores)
            else:
                np.testing.assert_allclose(got.scores[q, :n], scores, rtol=1e-5, atol=1e-5)
            assert (got.ids[q, n:] == -1).all() and np.isneginf(got.scores[q, n:]).all()


@pytest.mark.parametrize(
    ("variant", "params"),
    [("lucene", {}), ("okapi", {}), ("bm25+", {}), ("okapi", {"epsilon": 0.0})],
)
def test_bm25_filtered_equals_unfiltered_without_the_others(variant, params):
    """Selective filters take the intersecting kernel, others the masked fast path; okapi
    with epsilon=0 has zero impacts (terms in most documents), so the general kernel."""
    rng = np.random.default_rng(1)
    vocab = [f"t{i}" for i in range(60)]
    docs = [list(rng.choice(vocab, size=rng.integers(0, 15))) for _ in range(4000)]
    docs = [["common", *d] if i % 2 else d for i, d in enumerate(docs)]
    docs += [["common", *d] for d in docs[:3000]]  # in most documents: okapi idf < 0
    index = BM25Index(variant, **params)
    index.add(docs[:3000])
    index.delete(rng.choice(3000, 300, replace=False))
    index.add(docs[3000:])
    queries = [list(rng.choice(vocab, size=rng.integers(1, 7))) for _ in range(30)]
    queries += [["common", *q] for q in queries[:10]]
    index.search(queries[:1], 1)
    assert index._state.positive == (params == {})
    _check_exact(index, queries, 7000, rng)


@pytest.mark.parametrize("weight_dtype", ["uint16", "float32"])
def test_sparse_filtered_equals_unfiltered_without_the_others(weight_dtype):
    rng = np.random.default_rng(2)
    index = SparseIndex(dim=300, weight_dtype=weight_dtype)
    for seed in range(3):  # several segments
        index.add(sp.random(1500, 300, density=0.04, format="csr", random_state=seed))
    index.delete(rng.choice(4500, 400, replace=False))
    queries = sp.random(25, 300, density=0.05, format="csr", random_state=9)
    _check_exact(index, queries, 4500, rng)


@pytest.mark.parametrize("factory", ["Flat", "HNSW16"])
def test_dense_filtered_equals_exact_filtered_search(factory):
    pytest.importorskip("faiss")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3000, 24)).astype(np.float32)
    index = DenseIndex(24, factory=factory)
    index.add(x)
    index.delete(rng.choice(3000, 200, replace=False))
    queries = rng.standard_normal((6, 24)).astype(np.float32)
    exact = DenseIndex(24, factory="Flat")  # the brute-force reference over the same live set
    exact.add(x)
    exact.delete(np.flatnonzero(~index._alive))
    full = exact.search(queries, 3000)
    for sel in SELECTIVITIES:
        allowed = rng.random(3000) < sel
        got = index.search(queries, 10, allowed=allowed)
        for q in range(6):
            ids, scores = _expected(full, q, allowed, 10)
            assert np.array_equal(got.ids[q, : ids.size], ids), (factory, sel, q)
            np.testing.assert_allclose(got.scores[q, : ids.size], scores, rtol=1e-5, atol=1e-5)
            assert (got.ids[q, ids.size :] == -1).all()


def test_dense_approximate_filters_return_k_hits():
    """With ``filter_policy="graph"`` HNSW walks the graph with the selector and IVF probes more
    lists: still k hits, nearly all of the exact ones on this easy data."""
    pytest.importorskip("faiss")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3000, 16)).astype(np.float32)
    queries = rng.standard_normal((10, 16)).astype(np.float32)
    scores = queries @ x.T
    for factory in ["HNSW16", "IVF16,Flat"]:
        index = DenseIndex(16, factory=factory)
        index.add(x)
        index.filter_policy = "graph"
        if factory.startswith("IVF"):
            index.nprobe = 4  # unfiltered recall@10 here: 0.79
        for sel in [0.05, 0.5]:
            allowed = rng.random(3000) < sel
            got = index.search(queries, 10, allowed=allowed)
            assert (got.ids >= 0).all(), (factory, sel)
            assert allowed[got.ids].all()
            rows = np.flatnonzero(allowed)
            truth = [set(rows[np.argsort(-scores[q, rows])[:10]]) for q in range(10)]
            recall = np.mean([len(truth[q] & set(got.ids[q])) / 10 for q in range(10)])
            assert recall >= 0.7, (factory, sel, recall)


def test_allowed_masks_are_checked():
    index = BM25Index()
    index.add([["a"], ["b"]])
    with pytest.raises(ValueError, match="allowed has 3 entries; the index has assigned 2 ids"):
        index.search([["a"]], 1, allowed=np.ones(3, bool))
    with pytest.raises(TypeError, match="bool or uint8 mask"):
        index.search([["a"]], 1, allowed=np.ones(2, np.int64))
    got = index.search([["a", "b"]], 2, allowed=np.array([0, 1], np.uint8))
    assert got.ids.tolist() == [[1, -1]]


# ------------------------------------------------------------------------------------- engine


class HashSparse:
    """A SPLADE-like encoder without a model: each word hashes to one of 64 columns."""

    dim = 64
    spec: ClassVar[dict] = {"type": "hash-sparse"}

    def _rows(self, texts):
        rows, cols, vals = [], [], []
        for i, text in enumerate(texts):
            for word in text.split():
                rows.append(i)
                cols.append(zlib.crc32(word.encode()) % self.dim)
                vals.append(1.0 + (zlib.crc32(word.encode()) % 7) / 7)
        return sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), self.dim), dtype=np.float32)

    encode_documents = encode_queries = _rows

    def decode(self, ids):
        return [f"h{i}" for i in ids]


class HashDense:
    """A dense encoder without a model: a fixed random projection of hashed words."""

    dim, metric, name = 16, "ip", "hash-dense"
    spec: ClassVar[dict] = {"type": "hash-dense"}
    _proj = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)

    def _rows(self, texts):
        return (HashSparse()._rows(texts) @ self._proj).astype(np.float32)

    encode_documents = encode_queries = _rows


WORDS = "alpha beta gamma delta eps zeta eta theta iota kappa lam mu nu xi omicron pi".split()


def _engine(n: int = 400, seed: int = 5) -> tuple[HybridRetriever, list[dict]]:
    rng = np.random.default_rng(seed)
    engine = HybridRetriever(
        {
            "splade": SpladeRetriever(HashSparse()),
            "dense": DenseRetriever(HashDense()),
            "bm25": BM25Retriever("whitespace"),
        }
    )
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(2, 9))) for _ in range(n)]
    meta = [
        {"lang": ["ko", "en", "ja"][i % 3], "year": 2000 + i % 25, "tags": ["t", str(i % 7)]}
        for i in range(n)
    ]
    engine.add(texts, ids=[f"d{i}" for i in range(n)], metadata=meta)
    return engine, meta


FILTERS = [
    {"lang": "ko"},
    {"year": {"$gte": 2023}},
    {"$and": [{"lang": "en"}, {"tags": "3"}]},
    {"$or": [{"year": 2001}, {"tags": {"$in": ["5"]}}]},
    {"tags": {"$nin": ["1", "2", "3"]}},
    {"year": 2002, "lang": "ja"},  # 2002 = 2000 + i % 25 and i % 3 == 2: few documents
]
QUERIES = ["alpha beta", "gamma delta theta", "pi", "kappa mu nu xi"]


def _matching(engine: HybridRetriever, spec) -> np.ndarray:
    node = parse(spec)
    live = np.array(engine.store.live, dtype=bool)
    return live & np.array([matches(node, m) for m in engine.store.metadata])


@pytest.mark.parametrize("spec", FILTERS)
def test_engine_candidates_are_unfiltered_rankings_without_the_others(spec):
    engine, _ = _engine()
    n = engine.store.n_rows
    full = engine.retrieve(QUERIES, depth=n)
    got = engine.retrieve(QUERIES, depth=20, filter=spec)
    allowed = _matching(engine, spec)
    for name in engine.names:
        for q in range(len(QUERIES)):
            ids, scores = _expected(full.results[name], q, allowed, 20)
            assert np.array_equal(got.results[name].ids[q, : ids.size], ids), (name, q)
            np.testing.assert_allclose(got.results[name].scores[q, : ids.size], scores, rtol=1e-6)
            assert (got.results[name].ids[q, ids.size :] == -1).all()


@pytest.mark.parametrize("fusion", ["rrf", "wsum", "adaptive"])
def test_engine_search_is_the_fusion_of_the_filtered_lists(fusion):
    engine, _ = _engine()
    n = engine.store.n_rows
    cfg = engine._config(fusion=fusion)
    depth = cfg.retrieval_depth
    full = engine.retrieve(QUERIES, depth=n)
    for spec in FILTERS:
        allowed = _matching(engine, spec)
        results = {}
        for name, res in full.results.items():
            pairs = [_expected(res, q, allowed, depth) for q in range(len(QUERIES))]
            ids = np.full((len(QUERIES), depth), -1, np.int64)
            scores = np.full((len(QUERIES), depth), -np.inf, np.float32)
            for q, (i, s) in enumerate(pairs):
                ids[q, : i.size], scores[q, : s.size] = i, s
            results[name] = SearchResult(ids, scores)
        expected = engine.fuse(Candidates(list(QUERIES), results), k=10, config=cfg)
        got = engine.search(QUERIES, k=10, fusion=fusion, filter=spec)
        for hits, exp in zip(got, expected, strict=True):
            assert [h.id for h in hits] == [h.id for h in exp], spec
            np.testing.assert_allclose([h.score for h in hits], [h.score for h in exp])
            assert len(hits) == min(10, int(allowed.sum()))  # dense ranks every document


def test_engine_filters_follow_writes_and_survive_save_and_load(tmp_path):
    engine, _ = _engine(n=120)
    spec = {"lang": "ko", "year": {"$lt": 2010}}
    before = [h.id for h in engine.search("alpha beta", k=50, filter=spec)]
    assert before and all(
        engine.store.metadata[int(i[1:])]["lang"] == "ko" for i in before
    )  # ids are d<row>
    engine.delete([before[0]])
    engine.add(["alpha beta alpha"], ids=["new"], metadata=[{"lang": "ko", "year": 2001}])
    after = [h.id for h in engine.search("alpha beta", k=50, filter=spec)]
    assert before[0] not in after and "new" in after
    assert set(after) == set(before[1:]) | {"new"}
    engine.save(tmp_path / "e")
    loaded = HybridRetriever.load(
        tmp_path / "e", encoders={"splade": HashSparse(), "dense": HashDense()}
    )
    for q in QUERIES:
        for f in [*FILTERS, spec]:
            a = engine.search(q, k=7, filter=f)
            b = loaded.search(q, k=7, filter=f)
            assert [h.id for h in a] == [h.id for h in b]
            np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-6)


def test_engine_metadata_updates_reach_the_filter_index():
    from hybrid.engine import WriteBatch

    engine, _ = _engine(n=60)
    assert engine.search("alpha", k=5, filter={"lang": "xx"}) == []
    engine._commit(WriteBatch(metadata_updates={3: {"lang": "xx"}, 4: {"lang": "xx"}}))
    assert {h.id for h in engine.search(QUERIES[0], k=5, filter={"lang": "xx"})} == {"d3", "d4"}


def test_engine_filter_errors_and_empty_results():
    engine, _ = _engine(n=30)
    with pytest.raises(FilterError, match=r"unknown operator '\$regex'"):
        engine.search("alpha", filter={"lang": {"$regex": "k.*"}})
    with pytest.raises(ValueError, match="a list is not a value"):
        engine.retrieve(["alpha"], filter={"lang": ["ko"]})
    assert engine.search("alpha", filter={"nope": 1}) == []
    assert engine.search(["alpha", "beta"], filter={"nope": 1}) == [[], []]
    hits = engine.search("alpha", k=30, filter={"nope": {"$exists": False}})
    assert len(hits) == 30
