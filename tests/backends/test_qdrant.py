"""Qdrant backend (embedded local mode): parity with the local indexes, shared points, engine
glue with client- and server-side fusion, persistence of connection settings only."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("qdrant_client", reason="needs the qdrant extra (qdrant-client)")

from indexes import BM25Index, DenseIndex, IndexFormatError, SparseIndex
from indexes.qdrant import (
    QdrantBM25Index,
    QdrantDenseIndex,
    QdrantSparseIndex,
    QdrantStore,
    load_qdrant_index,
    term_id,
)

N_DOCS = 400
N_QUERIES = 15


def _store(name: str) -> QdrantStore:
    return QdrantStore(name, location=":memory:")


@pytest.fixture(scope="module")
def sample(scifact_encoded, scifact_dir):
    """The first N_DOCS SciFact documents (text, SPLADE-tiny CSR, MiniLM) and N_QUERIES queries."""
    from hybrid.encoders.analyzers import get_analyzer

    ids = json.loads((scifact_encoded / "doc_ids.json").read_text())[:N_DOCS]
    docs = sp.load_npz(scifact_encoded / "splade_docs.npz").tocsr()[:N_DOCS]
    queries = sp.load_npz(scifact_encoded / "splade_queries.npz").tocsr()[:N_QUERIES]
    dense_docs = np.load(scifact_encoded / "minilm_docs.npy")[:N_DOCS]
    dense_queries = np.load(scifact_encoded / "minilm_queries.npy")[:N_QUERIES]
    texts = {}
    with open(scifact_dir / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts[row["_id"]] = (row.get("title", "") + " " + row["text"]).strip()
    qids = json.loads((scifact_encoded / "query_ids.json").read_text())[:N_QUERIES]
    qtexts = {}
    with open(scifact_dir / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            qtexts[row["_id"]] = row["text"]
    analyzer = get_analyzer("english")
    doc_texts = [texts[i] for i in ids]
    query_texts = [qtexts[q] for q in qids]
    return {
        "ids": ids,
        "texts": doc_texts,
        "queries": query_texts,
        "splade": docs,
        "splade_q": queries,
        "dense": dense_docs,
        "dense_q": dense_queries,
        "tokens": analyzer.analyze_batch(doc_texts, progress=False),
        "q_tokens": analyzer.analyze_batch(query_texts, progress=False),
    }


def _agreement(a, b) -> float:
    """Share of (query, rank) positions holding the same document."""
    return float((a.ids == b.ids).mean())


def _same_up_to_ties(local, remote, atol=1e-4) -> None:
    """Same scores rank by rank, and the same documents except among (near-)tied scores."""
    np.testing.assert_allclose(remote.scores, local.scores, rtol=1e-4, atol=atol)
    for q in range(local.ids.shape[0]):
        for r in np.flatnonzero(local.ids[q] != remote.ids[q]):
            s = local.scores[q, r]
            tied_local = local.ids[q][np.abs(local.scores[q] - s) <= atol]
            assert remote.ids[q, r] in tied_local or r == local.ids.shape[1] - 1


# ------------------------------------------------------------------------------- index parity


def test_splade_parity_top10(sample):
    local = SparseIndex(dim=sample["splade"].shape[1])
    local.add(sample["splade"])
    remote = QdrantSparseIndex(_store("splade_parity"), dim=sample["splade"].shape[1])
    assert remote.add(sample["splade"]).tolist() == list(range(N_DOCS))
    a, b = local.search(sample["splade_q"], 10), remote.search(sample["splade_q"], 10)
    assert a.ids.dtype == np.int64 and b.scores.dtype == np.float32
    _same_up_to_ties(a, b)
    assert _agreement(a, b) >= 0.99
    # stored vectors come back exactly (explanations use them; the local index quantises)
    got = remote.doc_vectors([5, 2, 5])
    assert abs(got - sample["splade"][[5, 2, 5]]).max() < 1e-6


def test_dense_parity_top10(sample):
    local = DenseIndex(384, metric="ip")
    local.add(sample["dense"])
    remote = QdrantDenseIndex(_store("dense_parity"), dim=384, metric="ip")
    remote.add(sample["dense"])
    a, b = local.search(sample["dense_q"], 10), remote.search(sample["dense_q"], 10)
    _same_up_to_ties(a, b)
    assert _agreement(a, b) >= 0.99
    cos = QdrantDenseIndex(_store("dense_cos"), dim=384, metric="cosine")
    cos.add(sample["dense"] * 3.0)  # Qdrant normalises for cosine, as DenseIndex does
    _same_up_to_ties(a, cos.search(sample["dense_q"], 10))


def test_bm25_scores_equal_lucene_when_written_in_one_batch(sample):
    local = BM25Index(variant="lucene")
    local.add(sample["tokens"])
    remote = QdrantBM25Index(_store("bm25_parity"))
    remote.add(sample["tokens"])
    a, b = local.search(sample["q_tokens"], 10), remote.search(sample["q_tokens"], 10)
    _same_up_to_ties(a, b)
    doc = int(a.ids[0, 0])
    exp_local = dict(local.explain(sample["q_tokens"][0], doc))
    exp_remote = dict(remote.explain(sample["q_tokens"][0], doc))
    assert exp_local.keys() == exp_remote.keys()
    for term, value in exp_local.items():
        assert exp_remote[term] == pytest.approx(value, rel=1e-4)
    assert sum(exp_remote.values()) == pytest.approx(float(a.scores[0, 0]), rel=1e-4)


def test_bm25_length_normalisation_is_frozen_at_write_time():
    docs = [["a", "b"], ["a"], ["c", "c", "c", "c", "c", "c", "a"]]
    remote = QdrantBM25Index(_store("bm25_frozen"))
    remote.add(docs[:2])
    remote.add(docs[2:])  # avgdl moves from 1.5 to 3.33 for this batch only
    local = BM25Index(variant="lucene")
    local.add(docs)
    a, b = local.search([["a"]], 3), remote.search([["a"]], 3)
    assert set(a.ids[0].tolist()) == set(b.ids[0].tolist()) == {0, 1, 2}
    assert not np.allclose(a.scores, b.scores)  # documents 0, 1 keep the old avgdl
    fixed = QdrantBM25Index(_store("bm25_fixed"), avgdl=local._doc_len.mean())
    fixed.add(docs[:2])
    fixed.add(docs[2:])
    np.testing.assert_allclose(fixed.search([["a"]], 3).scores, a.scores, rtol=1e-5)


def test_term_ids_are_stable_32_bit():
    assert term_id("protein") == term_id("protein")
    assert term_id("protein") != term_id("proteins")
    assert 0 <= term_id("단백질") < 2**32


def test_empty_queries_and_padding():
    store = _store("pad")
    sparse = QdrantSparseIndex(store, dim=8)
    bm25 = QdrantBM25Index(store)
    assert sparse.search(sp.csr_matrix((1, 8)), 3).ids.tolist() == [[-1, -1, -1]]
    sparse.add(sp.csr_matrix(np.eye(2, 8, dtype=np.float32)))
    bm25.add([["x"], ["y"]])
    res = sparse.search(
        sp.csr_matrix(np.array([[1, 0, 0, 0, 0, 0, 0, 0], [0] * 8], dtype=np.float32)), 3
    )
    assert res.ids.tolist() == [[0, -1, -1], [-1, -1, -1]]
    assert np.isneginf(res.scores[0, 1:]).all()
    assert bm25.search([[], ["zzz"], ["y"]], 2).ids.tolist() == [[-1, -1], [-1, -1], [1, -1]]
    with pytest.raises(TypeError, match="list of token lists"):
        bm25.search(["x"], 2)
    with pytest.raises(ValueError, match="k must be"):
        sparse.search(sp.csr_matrix((1, 8)), 0)


# ---------------------------------------------------------------------- one point, many vectors


def test_views_share_points_and_delete_vectors_then_points():
    store = _store("shared")
    sparse = QdrantSparseIndex(store, dim=4)
    dense = QdrantDenseIndex(store, dim=2)
    bm25 = QdrantBM25Index(store)
    x = sp.csr_matrix(np.array([[1, 0, 0, 2], [0, 3, 0, 0], [0, 0, 1, 0]], dtype=np.float32))
    assert sparse.add(x).tolist() == [0, 1, 2]
    assert dense.add(np.eye(3, 2)).tolist() == [0, 1, 2]
    assert bm25.add([["a"], ["b"], ["c"]]).tolist() == [0, 1, 2]
    assert store.count() == 3  # one point per document, three named vectors each
    rec = store.client.retrieve(store.collection, [1], with_vectors=True)[0]
    assert set(rec.vector) == {"splade", "dense", "bm25"}
    sparse.delete([1])
    assert len(sparse) == 2 and len(dense) == 3 and store.count() == 3
    assert 1 not in sparse.search(x[1], 3).ids[0]
    assert dense.search(np.array([0.0, 1.0]), 1).ids[0, 0] == 1  # dense still has it
    with pytest.raises(KeyError):
        sparse.delete([1])
    with pytest.raises(KeyError):
        sparse.delete([7])
    dense.delete([1])
    bm25.delete(np.array([1]))
    assert store.count() == 2  # the point lost its last vector
    assert sparse.add(x[:1]).tolist() == [3]  # ids are never reused


def test_existing_collection_with_other_config_is_refused():
    store = _store("conflict")
    QdrantDenseIndex(store, dim=2).add(np.eye(2))
    other = QdrantStore("conflict", location=":memory:")  # same embedded client, same collection
    view = QdrantDenseIndex(other, dim=3)
    with pytest.raises(ValueError, match="2-d"):
        view.add(np.eye(3))
    late = QdrantSparseIndex(other, vector="late", dim=4)  # a new vector is added to it
    late.add(sp.csr_matrix(np.eye(1, 4, dtype=np.float32)))


def test_connection_arguments_are_checked():
    with pytest.raises(ValueError, match="exactly one"):
        QdrantStore("x")
    with pytest.raises(ValueError, match="exactly one"):
        QdrantStore("x", location=":memory:", url="http://localhost:6333")


def test_save_writes_settings_not_data_and_load_reconnects(tmp_path):
    store = QdrantStore("persist", path=tmp_path / "qdrant")
    view = QdrantSparseIndex(store, dim=4)
    x = sp.csr_matrix(np.array([[1, 0, 0, 2], [0, 3, 0, 0]], dtype=np.float32))
    view.add(x)
    saved = view.save(tmp_path / "index")
    assert [p.name for p in saved.iterdir()] == ["meta.json"]
    meta = json.loads((saved / "meta.json").read_text())
    assert meta["store"]["path"] == str((tmp_path / "qdrant").resolve())
    assert meta["format_version"] == 1 and "api_key" not in json.dumps(meta)
    again = load_qdrant_index(saved)
    assert isinstance(again, QdrantSparseIndex) and len(again) == 2
    np.testing.assert_array_equal(again.search(x, 2).ids, view.search(x, 2).ids)
    with pytest.raises(IndexFormatError):
        QdrantDenseIndex.load(saved)
    with pytest.raises(IndexFormatError):
        load_qdrant_index(tmp_path)


def test_missing_client_names_the_extra(monkeypatch):
    from indexes import qdrant as mod

    monkeypatch.setitem(sys.modules, "qdrant_client", None)
    with pytest.raises(ImportError, match=r"splade-hybrid\[qdrant\]"):
        mod._qdrant()


# --------------------------------------------------------------------------------- engine glue


class LookupSparse:
    """A SPLADE-like encoder that returns precomputed rows by text (no model)."""

    metric = "ip"

    def __init__(self, docs, queries, doc_texts, query_texts):
        self.dim = docs.shape[1]
        self._d = {t: i for i, t in enumerate(doc_texts)}
        self._q = {t: i for i, t in enumerate(query_texts)}
        self.docs, self.queries = docs, queries
        self.spec = {"type": "lookup"}

    def encode_documents(self, texts):
        return self.docs[[self._d[t] for t in texts]]

    def encode_queries(self, texts):
        return self.queries[[self._q[t] for t in texts]]

    def decode(self, ids):
        return [f"tok{i}" for i in ids]


class LookupDense(LookupSparse):
    name = "minilm-lookup"


@pytest.fixture(scope="module")
def engines(sample):
    from hybrid.backends.qdrant import QdrantHybridRetriever, qdrant_retrievers
    from hybrid.engine import HybridRetriever
    from hybrid.engine.retrievers import BM25Retriever, DenseRetriever, SpladeRetriever

    n = 150
    texts, queries = sample["texts"][:n], sample["queries"]
    splade = LookupSparse(sample["splade"][:n], sample["splade_q"], texts, queries)
    dense = LookupDense(sample["dense"][:n], sample["dense_q"], texts, queries)
    local = HybridRetriever(
        {
            "splade": SpladeRetriever(splade),
            "dense": DenseRetriever(dense),
            "bm25": BM25Retriever("english"),
        }
    )
    store = _store("engine")
    remote = QdrantHybridRetriever(qdrant_retrievers(store, splade, dense, "english"))
    meta = [{"n": i} for i in range(n)]
    local.add(texts, ids=sample["ids"][:n], metadata=meta)
    remote.add(texts, ids=sample["ids"][:n], metadata=meta)
    return local, remote, store, queries


def test_engine_writes_payloads(engines):
    _, remote, store, _ = engines
    assert store.count() == 150
    p = store.payloads([3])[0]
    assert p["doc_id"] == remote.store.ids[3]
    assert p["text"] == remote.store.texts[3] and p["metadata"] == {"n": 3}


@pytest.mark.parametrize("method", ["rrf", "wsum", "combmnz", "borda"])
def test_client_side_fusion_matches_local_engine(engines, method):
    local, remote, _, queries = engines
    a = local.search(queries[:6], k=10, fusion=method, depth=30)
    b = remote.search(queries[:6], k=10, fusion=method, depth=30)
    for qa, qb in zip(a, b, strict=True):
        assert len(qa) == len(qb) == 10
        # Qdrant's BM25 is local Lucene BM25 over (k1 + 1) and its scores are float32: the
        # fused scores agree to rounding, and the rankings wherever no two scores tie
        assert [h.score for h in qb] == pytest.approx([h.score for h in qa], rel=1e-4, abs=1e-6)
        for i, (x, y) in enumerate(zip(qa, qb, strict=True)):
            near = [h.score for h in qa if abs(h.score - x.score) <= 1e-4 * abs(x.score) + 1e-6]
            if len(near) == 1:  # no near-tie around this position
                assert x.id == y.id, f"rank {i + 1}"
                # each retriever's rank of the hit is the same in both engines
                assert {n: v.rank for n, v in y.sources.items()} == {
                    n: v.rank for n, v in x.sources.items()
                }
    assert any(v.rank > 0 for v in b[0][0].sources.values())
    exp = b[0][0].explain(top=3)
    assert exp.retrievers and (exp.splade_tokens or exp.bm25_terms)


def test_server_side_rrf_equals_client_rrf(engines):
    _, remote, _, queries = engines
    client = remote.search(queries[:5], k=10, fusion="rrf", depth=30)
    server = remote.search(queries[:5], k=10, server_fusion="rrf", depth=30)
    for c, s in zip(client, server, strict=True):
        assert [h.score for h in s] == pytest.approx([h.score for h in c], rel=1e-5)
        assert {h.id for h in s[:5]} == {h.id for h in c[:5]}
        by_id = {h.id: h for h in s}
        for hc in c[:5]:  # the same top 5 (asserted above): each has its per-retriever ranks
            hs = by_id[hc.id]  # computed from the returned prefetches
            assert {n: v.rank for n, v in hs.sources.items()} == {
                n: v.rank for n, v in hc.sources.items()
            }
            assert set(hs.sources) == {"splade", "dense", "bm25"}
        shared = [h for h in c if h.id in by_id]
        assert len(shared) >= 5
    lean = remote.search_server(queries[0], k=3, method="dbsf", with_sources=False)
    assert len(lean) == 3 and lean[0].sources == {}
    with pytest.raises(ValueError, match="DBSF takes no weights"):
        remote.search(queries[0], server_fusion="dbsf", weights={"bm25": 0.5})
    with pytest.raises(ValueError, match="server_fusion must be"):
        remote.search(queries[0], server_fusion="borda")
    with pytest.raises(ValueError, match="client-side fusion"):
        remote.search(queries[0], server_fusion="rrf", fusion="wsum")
    exp = server[0][0].explain(top=3)  # tokens and terms still come from the retrievers
    assert exp.fusion.startswith("qdrant-rrf") and exp.splade_tokens and exp.bm25_terms


def test_embedded_path_store_with_parallel_engine(sample, tmp_path):
    """path= (SQLite-backed) store: the engine writes and searches its retrievers in threads."""
    from hybrid.backends.qdrant import QdrantHybridRetriever, qdrant_retrievers

    texts, queries = sample["texts"][:40], sample["queries"]
    splade = LookupSparse(sample["splade"][:40], sample["splade_q"], texts, queries)
    dense = LookupDense(sample["dense"][:40], sample["dense_q"], texts, queries)
    store = QdrantStore("threads", path=tmp_path / "q")
    engine = QdrantHybridRetriever(
        qdrant_retrievers(store, splade, dense, "english"), parallel=True
    )
    engine.add(texts[:25])
    engine.add(texts[25:])
    hits = engine.search(queries[:4], k=5, fusion="rrf")
    assert all(len(h) == 5 for h in hits)
    engine.delete(["3", "30"])
    assert store.count() == 38 and len(engine) == 38
    assert all(h.id not in ("3", "30") for row in engine.search(queries[:4], k=10) for h in row)


def test_engine_save_load_roundtrip(engines, tmp_path):
    from hybrid.backends.qdrant import QdrantHybridRetriever

    _, remote, store, queries = engines
    remote.server_fusion = "rrf"
    try:
        remote.save(tmp_path / "engine")
    finally:
        remote.server_fusion = None
    splade = remote.retrievers["splade"].encoder
    dense = remote.retrievers["dense"].encoder
    again = QdrantHybridRetriever.load(
        tmp_path / "engine", encoders={"splade": splade, "dense": dense}
    )
    assert again.server_fusion == "rrf" and len(again) == 150
    a = again.search(queries[1], k=5)
    b = remote.search(queries[1], k=5, server_fusion="rrf")
    assert [h.id for h in a] == [h.id for h in b]
    # another store (e.g. a cluster url) replaces the saved connection
    moved = QdrantHybridRetriever.load(
        tmp_path / "engine", encoders={"splade": splade, "dense": dense}, stores=store
    )
    assert moved.retrievers["bm25"].index.store is store
