"""Filters on the Qdrant backend: the payload-filter translation agrees with the filter
language on random metadata, and the Qdrant engine pre-filters (client- and server-side)."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid.engine.filters import FilterError, matches, parse
from tests.hybrid.test_filtered_search import FILTERS, QUERIES, WORDS, HashDense, HashSparse
from tests.hybrid.test_filters import DOCS, _random_filter, _random_meta

qdrant_client = pytest.importorskip("qdrant_client")
models = qdrant_client.models


def _is_hollow(meta: dict) -> bool:
    """``c`` present but with no value under it: Qdrant counts the object as existing, the
    filter language does not (the one documented difference)."""
    return isinstance(meta.get("c"), dict) and not meta["c"].get("d") and meta["c"].get("d") != 0


def test_payload_filters_match_the_language_on_random_metadata():
    from hybrid.backends.qdrant_filters import to_qdrant

    rng = np.random.default_rng(3)
    docs = [m for m in (_random_meta(rng) for _ in range(300)) if not _is_hollow(m)] + DOCS
    client = qdrant_client.QdrantClient(":memory:")
    client.create_collection(
        "t", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT)
    )
    points = [
        models.PointStruct(id=i, vector=[1.0, 0.0], payload={"metadata": m})
        for i, m in enumerate(docs)
    ]
    client.upsert("t", points)
    checked = 0
    for _ in range(300):
        spec = _random_filter(rng)
        node = parse(spec)
        try:
            flt = to_qdrant(node, models)
        except FilterError as exc:  # string comparisons only
            assert "compares numbers only" in str(exc)
            continue
        got = sorted(p.id for p in client.scroll("t", scroll_filter=flt, limit=10_000)[0])
        assert got == [i for i, d in enumerate(docs) if matches(node, d)], spec
        checked += 1
    assert checked > 200


def test_payload_schemas_are_inferred_per_field():
    from hybrid.backends.qdrant_filters import payload_schemas

    metas = [{"lang": "ko", "n": 1, "x": 1, "ok": True, "src": {"site": "w"}}, {"x": 2.5, "m": 1}]
    metas.append({"m": "one"})
    assert payload_schemas(metas) == {
        "lang": "keyword",
        "n": "integer",
        "x": "float",
        "ok": "bool",
        "src.site": "keyword",
    }


@pytest.fixture(scope="module")
def engine():
    from hybrid.backends.qdrant import QdrantHybridRetriever, qdrant_retrievers
    from indexes.qdrant import QdrantStore

    rng = np.random.default_rng(5)
    n = 200
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(2, 9))) for _ in range(n)]
    meta = [
        {"lang": ["ko", "en", "ja"][i % 3], "year": 2000 + i % 25, "tags": ["t", str(i % 7)]}
        for i in range(n)
    ]
    store = QdrantStore("filters", location=":memory:")
    remote = QdrantHybridRetriever(
        qdrant_retrievers(store, HashSparse(), HashDense(), "whitespace")
    )
    remote.add(texts, ids=[f"d{i}" for i in range(n)], metadata=meta)
    return remote


def test_engine_writes_payload_indexes(engine):
    store = engine.qdrant_stores[0]
    assert store._payload_indexes == {
        "metadata.lang": "keyword",
        "metadata.year": "integer",
        "metadata.tags": "keyword",
    }


@pytest.mark.parametrize("spec", FILTERS)
def test_engine_candidates_are_unfiltered_rankings_without_the_others(engine, spec):
    node = parse(spec)
    allowed = np.array([matches(node, m) for m in engine.store.metadata])
    full = engine.retrieve(QUERIES, depth=engine.store.n_rows)
    got = engine.retrieve(QUERIES, depth=15, filter=spec)
    for name in engine.names:
        for q in range(len(QUERIES)):
            ids = full.results[name].ids[q]
            keep = ids[(ids >= 0) & allowed[np.maximum(ids, 0)]][:15]
            found = got.results[name].ids[q]
            assert set(found[found >= 0]) == set(keep), (name, q)  # ties may swap places


@pytest.mark.parametrize("server_fusion", [None, "rrf"])
def test_engine_search_returns_matching_hits_only(engine, server_fusion):
    for spec in FILTERS:
        node = parse(spec)
        n_match = sum(matches(node, m) for m in engine.store.metadata)
        hits = engine.search(QUERIES, k=10, filter=spec, server_fusion=server_fusion)
        for per_query in hits:
            assert all(matches(node, h.metadata) for h in per_query)
            assert len(per_query) == min(10, n_match)  # the dense retriever ranks them all
    with pytest.raises(FilterError, match="compares numbers only"):
        engine.search("alpha", filter={"lang": {"$gt": "k"}}, server_fusion=server_fusion)
