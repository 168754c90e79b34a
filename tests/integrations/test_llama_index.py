"""LlamaIndexRetriever against the real llama-index-core, over a small engine (no model loaded)."""

from __future__ import annotations

import asyncio

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

pytest.importorskip("llama_index.core", reason="needs llama-index-core (extra llamaindex)")
pytest.importorskip("faiss", reason="needs faiss-cpu (extra models)")

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

from hybrid.integrations.filters import FilterTranslationError, from_llama_index
from hybrid.integrations.llama_index import LlamaIndexRetriever


@pytest.fixture(scope="module")
def engine():
    return small_engine()


def test_nodes_equal_the_engine_hits(engine):
    retriever = LlamaIndexRetriever(engine, similarity_top_k=4)
    assert isinstance(retriever, BaseRetriever)
    for query in QUERIES:
        hits = engine.search(query, k=4)
        nodes = retriever.retrieve(query)
        assert all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
        same_hits([n.node.id_ for n in nodes], [n.score for n in nodes], hits)
        assert [n.node.text for n in nodes] == [h.text for h in hits]
        for node, hit in zip(nodes, hits, strict=True):
            details = node.node.metadata["hybrid"]
            assert details["fused_rank"] == hit.fused_rank
            assert {n: s["rank"] for n, s in details["sources"].items()} == {
                n: s.rank for n, s in hit.sources.items()
            }
            assert {k: v for k, v in node.node.metadata.items() if k != "hybrid"} == hit.metadata
            # the retrieval details stay out of what an LLM sees
            assert "fused_rank" not in node.node.get_content(metadata_mode=MetadataMode.LLM)


def test_async_retrieve_equals_sync(engine):
    retriever = LlamaIndexRetriever(engine, similarity_top_k=3, search_kwargs={"fusion": "wsum"})

    async def main():
        return await asyncio.gather(*(retriever.aretrieve(q) for q in QUERIES))

    for query, nodes in zip(QUERIES, asyncio.run(main()), strict=True):
        hits = engine.search(query, k=3, fusion="wsum")
        same_hits([n.node.id_ for n in nodes], [n.score for n in nodes], hits)


def test_filters_are_translated_and_passed_only_when_given(engine):
    spy = SpyEngine(engine)
    LlamaIndexRetriever(spy, similarity_top_k=2).retrieve("satellite")
    LlamaIndexRetriever(spy, similarity_top_k=2, filters=MetadataFilters(filters=[])).retrieve("x")
    filters = MetadataFilters(
        filters=[
            MetadataFilter(key="lang", value="en"),
            MetadataFilter(key="year", value=2020, operator=">="),
        ]
    )
    retriever = LlamaIndexRetriever(spy, similarity_top_k=2, filters=filters)
    retriever.retrieve("satellite")
    retriever.filters = MetadataFilters(filters=[MetadataFilter(key="lang", value="ko")])
    retriever.retrieve("satellite")
    assert spy.calls == [
        {"k": 2},
        {"k": 2},
        {"k": 2, "filter": {"$and": [{"lang": {"$eq": "en"}}, {"year": {"$gte": 2020}}]}},
        {"k": 2, "filter": {"lang": {"$eq": "ko"}}},
    ]
    with pytest.raises(FilterTranslationError, match="TEXT_MATCH"):
        bad = MetadataFilter(key="lang", value="k", operator="text_match")
        LlamaIndexRetriever(engine, filters=MetadataFilters(filters=[bad]))
    with pytest.raises(ValueError, match="similarity_top_k must be a positive integer"):
        LlamaIndexRetriever(engine, similarity_top_k=0)


# Filters whose meaning LlamaIndex's own evaluator (SimpleVectorStore's) and the engine share.
PARITY = [
    MetadataFilters(filters=[MetadataFilter(key="lang", value="ko")]),
    MetadataFilters(
        filters=[
            MetadataFilter(key="year", value=2020, operator=">"),
            MetadataFilter(key="lang", value="en", operator="!="),
        ],
        condition="or",
    ),
    MetadataFilters(filters=[MetadataFilter(key="year", value=[2019, 2024], operator="nin")]),
    MetadataFilters(filters=[MetadataFilter(key="tags", value="space", operator="contains")]),
    MetadataFilters(filters=[MetadataFilter(key="tags", value=["farming", "x"], operator="any")]),
    MetadataFilters(
        filters=[MetadataFilter(key="tags", value=["space", "defense"], operator="all")]
    ),
    MetadataFilters(filters=[MetadataFilter(key="year", value=None, operator="is_empty")]),
    MetadataFilters(
        filters=[
            MetadataFilter(key="lang", value="ko"),
            MetadataFilter(key="year", value=2019, operator="<="),
        ],
        condition="not",
    ),
]


@pytest.mark.parametrize("filters", PARITY, ids=range(len(PARITY)))
def test_filtered_nodes_match_llama_index_own_filter_semantics(engine, filters):
    """Every document LlamaIndex's own evaluator accepts comes back, and no other."""
    needs_filter(engine)
    from llama_index.core.vector_stores.utils import build_metadata_filter_fn

    meta = {doc_id: m for doc_id, _, m in DOCS}
    accepts = build_metadata_filter_fn(lambda i: meta[i], filters)
    expected = {i for i in IDS if accepts(i)}
    nodes = LlamaIndexRetriever(engine, similarity_top_k=len(IDS), filters=filters).retrieve(
        "satellite crop"
    )
    assert {n.node.id_ for n in nodes} == expected
    hits = engine.search("satellite crop", k=len(IDS), filter=from_llama_index(filters))
    same_hits([n.node.id_ for n in nodes], [n.score for n in nodes], hits)


def test_query_engine_with_mock_llm(engine):
    """A LlamaIndex query engine over the retriever, answered by LlamaIndex's MockLLM."""
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    retriever = LlamaIndexRetriever(engine, similarity_top_k=2)
    query_engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(max_tokens=8))
    response = query_engine.query(QUERIES[0])
    hits = engine.search(QUERIES[0], k=2)
    same_hits(
        [n.node.id_ for n in response.source_nodes], [n.score for n in response.source_nodes], hits
    )
    assert isinstance(response.response, str) and response.response


def test_aretrieve_does_not_block_the_event_loop():
    retriever = LlamaIndexRetriever(small_engine(delay=DELAY), similarity_top_k=2)

    async def work():
        return await retriever.aretrieve(QUERIES[0])

    nodes, gaps = ticking_while(work)
    assert nodes[0].node.id_ == "sat-1" and gaps.max() < DELAY * 0.8
