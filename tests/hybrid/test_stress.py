"""8 searcher threads against 2 writer threads on one engine with SPLADE, FAISS and BM25
retrievers (stand-in encoders), ~10 s; the 60 s version is benchmarks/stress.py."""

from __future__ import annotations

import numpy as np
import pytest

from tests._standins import check_sample
from tests._stress import HANGUL, rebuilt, run_stress

QUERIES = ["w1 w2", "w3", "w7 w7 w40", "w10 w20 w30 w50", "w79 w0"]


@pytest.mark.parametrize("factory", ["Flat", "HNSW16"])
def test_searches_and_writes_at_once(factory):
    engine, report, live = run_stress(6.0, factory=factory, save_every=2.0, seed=1)
    assert report.errors == []
    assert report.violations == []
    assert report.searches > 50 and report.saves >= 1
    assert set(report.writes) == {"add", "upsert", "delete", "update_metadata"}
    # The engine holds exactly what the writers committed ...
    ids = engine.ids()
    assert sorted(ids) == sorted(live)
    assert {d.id: (d.text, d.metadata) for d in engine.get(ids)} == live
    # ... and searches it like an engine built from those documents (ids and scores).
    fresh = rebuilt(engine)
    exact = factory == "Flat"  # HNSW is approximate: compare the exact retrievers only
    for fusion in ("rrf", "wsum", "adaptive"):
        if not exact:
            continue
        for got, want in zip(
            engine.search(QUERIES, k=20, fusion=fusion),
            fresh.search(QUERIES, k=20, fusion=fusion),
            strict=True,
        ):
            assert [h.id for h in got] == [h.id for h in want]
            np.testing.assert_allclose([h.score for h in got], [h.score for h in want], rtol=1e-6)
    a, b = engine.retrieve(QUERIES, depth=50), fresh.retrieve(QUERIES, depth=50)
    for name in ("splade", "bm25") if not exact else engine.names:
        ids_a = [[engine.store.ids[i] for i in row if i >= 0] for row in a.results[name].ids]
        ids_b = [[fresh.store.ids[i] for i in row if i >= 0] for row in b.results[name].ids]
        assert ids_a == ids_b, name
        np.testing.assert_allclose(a.results[name].scores, b.results[name].scores, rtol=1e-6)


def test_bilingual_searches_and_writes_at_once():
    """Half the documents and queries in Hangul: searches fuse by script strata and place the
    scripts with the dense retriever's vector sample while writers change it."""
    engine, report, live = run_stress(4.0, seed=2, bilingual=True)
    assert report.errors == []
    assert report.violations == []
    assert report.searches > 30
    assert sorted(engine.ids()) == sorted(live)
    stats = engine.retrievers["bm25"].collection_stats()
    assert stats.only_script() is None  # two scripts: the strata and baselines were in use
    hits = engine.search(" ".join(HANGUL[:3]), k=10)
    assert any("placed against the other scripts" in h.explain().weighting for h in hits)
    check_sample(engine)
