"""HaystackRetriever against the real haystack-ai, over a small engine (no model loaded)."""

from __future__ import annotations

import asyncio
import inspect
import os

import pytest

from tests._adapter_engine import (
    DELAY,
    DOCS,
    IDS,
    QUERIES,
    SpyEngine,
    needs_filter,
    same_hits,
    small_engine,
    ticking_while,
)

os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # no telemetry calls from tests
pytest.importorskip("haystack", reason="needs haystack-ai (extra haystack)")
pytest.importorskip("faiss", reason="needs faiss-cpu (extra models)")

from haystack import Document, Pipeline

from hybrid.integrations.filters import FilterTranslationError, from_haystack
from hybrid.integrations.haystack import HaystackRetriever


@pytest.fixture(scope="module")
def engine():
    return small_engine()


def test_documents_equal_the_engine_hits(engine):
    retriever = HaystackRetriever(engine, top_k=4)
    for query in QUERIES:
        hits = engine.search(query, k=4)
        docs = retriever.run(query)["documents"]
        assert all(isinstance(d, Document) for d in docs)
        same_hits([d.id for d in docs], [d.score for d in docs], hits)
        assert [d.content for d in docs] == [h.text for h in hits]
        for doc, hit in zip(docs, hits, strict=True):
            assert doc.meta["hybrid"]["rank"] == hit.rank
            assert {k: v for k, v in doc.meta.items() if k != "hybrid"} == hit.metadata
    two = retriever.run(QUERIES[0], top_k=2)["documents"]
    assert [d.id for d in two] == [h.id for h in engine.search(QUERIES[0], k=2)]


def test_in_a_pipeline_and_an_async_pipeline(engine):
    pipe = Pipeline()
    pipe.add_component("retriever", HaystackRetriever(engine, top_k=3))
    docs = pipe.run({"retriever": {"query": QUERIES[2]}})["retriever"]["documents"]
    hits = engine.search(QUERIES[2], k=3)
    same_hits([d.id for d in docs], [d.score for d in docs], hits)

    if hasattr(Pipeline, "run_async"):  # Haystack 3: Pipeline.run_async
        apipe = Pipeline()
    else:  # Haystack 2: AsyncPipeline
        from haystack import AsyncPipeline

        apipe = AsyncPipeline()
    apipe.add_component("retriever", HaystackRetriever(engine, top_k=3))
    out = asyncio.run(apipe.run_async({"retriever": {"query": QUERIES[2]}}))
    docs = out["retriever"]["documents"]
    same_hits([d.id for d in docs], [d.score for d in docs], hits)


def test_run_async_equals_run(engine):
    retriever = HaystackRetriever(engine, top_k=3, search_kwargs={"fusion": "wsum"})

    async def main():
        return await asyncio.gather(*(retriever.run_async(q) for q in QUERIES))

    for query, out in zip(QUERIES, asyncio.run(main()), strict=True):
        docs = out["documents"]
        same_hits(
            [d.id for d in docs], [d.score for d in docs], engine.search(query, k=3, fusion="wsum")
        )


def test_filters_are_translated_with_the_filter_policy(engine):
    spy = SpyEngine(engine)
    lang = {"field": "meta.lang", "operator": "==", "value": "en"}
    year = {"field": "meta.year", "operator": ">=", "value": 2020}
    HaystackRetriever(spy, top_k=2).run("satellite")
    HaystackRetriever(spy, top_k=2, filters=lang).run("satellite")
    HaystackRetriever(spy, top_k=2, filters=lang).run("satellite", filters=year)  # REPLACE
    HaystackRetriever(spy, top_k=2, filters=lang, filter_policy="merge").run("x", filters=year)
    assert spy.calls == [
        {"k": 2},
        {"k": 2, "filter": {"lang": {"$eq": "en"}}},
        {"k": 2, "filter": {"year": {"$gte": 2020}}},
        {"k": 2, "filter": {"$and": [{"lang": {"$eq": "en"}}, {"year": {"$gte": 2020}}]}},
    ]
    with pytest.raises(FilterTranslationError, match="field 'content' cannot be filtered"):
        HaystackRetriever(engine, filters={"field": "content", "operator": "==", "value": "x"})
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        HaystackRetriever(engine).run("x", top_k=0)


def c(field, op, value):
    return {"field": f"meta.{field}", "operator": op, "value": value}


# Filters whose meaning Haystack's own evaluator (the in-memory store's) and the engine share.
PARITY = [
    c("lang", "==", "ko"),
    {"operator": "AND", "conditions": [c("lang", "==", "en"), c("year", ">", 2020)]},
    {"operator": "OR", "conditions": [c("year", "<", 2019), c("source.site", "==", "pubmed")]},
    {"operator": "NOT", "conditions": [c("lang", "==", "en"), c("year", ">=", 2021)]},
    c("year", "in", [2019, 2023]),
    c("lang", "not in", ["ko"]),
    c("year", "!=", 2021),
    c("year", "==", None),
    c("year", "!=", None),
]


@pytest.mark.parametrize("filters", PARITY, ids=range(len(PARITY)))
def test_filtered_documents_match_haystack_own_filter_semantics(engine, filters):
    """Every document Haystack's own evaluator accepts comes back, and no other."""
    needs_filter(engine)
    from haystack.utils.filters import document_matches_filter

    expected = {
        doc_id
        for doc_id, text, meta in DOCS
        if document_matches_filter(filters, Document(id=doc_id, content=text, meta=meta))
    }
    docs = HaystackRetriever(engine, top_k=len(IDS)).run("satellite crop", filters=filters)
    assert {d.id for d in docs["documents"]} == expected
    hits = engine.search("satellite crop", k=len(IDS), filter=from_haystack(filters))
    same_hits([d.id for d in docs["documents"]], [d.score for d in docs["documents"]], hits)


def test_search_kwargs_cannot_hold_k_or_filter(engine):
    with pytest.raises(ValueError, match=r"must not hold \['filter', 'k'\]"):
        HaystackRetriever(engine, search_kwargs={"k": 3, "filter": {}})


def test_run_async_does_not_block_the_event_loop():
    retriever = HaystackRetriever(small_engine(delay=DELAY), top_k=2)

    async def work():
        return await retriever.run_async(QUERIES[0])

    out, gaps = ticking_while(work)
    assert out["documents"][0].id == "sat-1" and gaps.max() < DELAY * 0.8


def test_a_pipeline_round_trips_through_yaml_with_a_saved_engine(tmp_path):
    from haystack.core.errors import SerializationError

    from hybrid import HybridRetriever

    engine = small_engine()
    with pytest.raises(SerializationError, match="build it from a saved engine folder"):
        HaystackRetriever(engine).to_dict()
    # a saved engine whose dense encoder is a callable reopens with it given again; here the
    # folder holds a BM25-only engine, which reopens from the folder alone
    from hybrid import BM25Retriever

    bm25 = HybridRetriever({"bm25": BM25Retriever("english")})
    bm25.add([d[1] for d in DOCS], ids=IDS, metadata=[d[2] for d in DOCS])
    folder = bm25.save(tmp_path / "index")
    lang = {"field": "meta.lang", "operator": "==", "value": "en"}
    pipe = Pipeline()
    pipe.add_component(
        "retriever", HaystackRetriever(str(folder), top_k=3, filters=lang, filter_policy="merge")
    )
    trust = {"allowed_modules": ["hybrid.integrations.haystack"]}  # Haystack 3's allowlist
    if "allowed_modules" not in inspect.signature(Pipeline.loads).parameters:
        trust = {}
    again = Pipeline.loads(pipe.dumps(), **trust)
    component = again.get_component("retriever")
    assert (component.engine_path, component.top_k, component.filters) == (str(folder), 3, lang)
    assert component.filter_policy == pipe.get_component("retriever").filter_policy
    component.filters = None  # the filter itself is tested above, with engines that have it
    docs = again.run({"retriever": {"query": "satellite"}})["retriever"]["documents"]
    same_hits([d.id for d in docs], [d.score for d in docs], bm25.search("satellite", k=3))
