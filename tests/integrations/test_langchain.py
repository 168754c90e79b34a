"""LangChainRetriever against the real langchain-core, over a small engine (no model loaded)."""

from __future__ import annotations

import asyncio
import math

import pytest

from tests._adapter_engine import (
    DELAY,
    IDS,
    QUERIES,
    SpyEngine,
    needs_filter,
    same_hits,
    small_engine,
    ticking_while,
)

pytest.importorskip("langchain_core", reason="needs langchain-core (extra langchain)")
pytest.importorskip("faiss", reason="needs faiss-cpu (extra models)")

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from hybrid.integrations.langchain import LangChainRetriever


@pytest.fixture(scope="module")
def engine():
    return small_engine()


def test_documents_equal_the_engine_hits(engine):
    retriever = LangChainRetriever(engine=engine, k=4)
    assert isinstance(retriever, BaseRetriever)
    for query in QUERIES:
        hits = engine.search(query, k=4)
        docs = retriever.invoke(query)
        assert all(isinstance(d, Document) for d in docs)
        assert [d.id for d in docs] == [h.id for h in hits]
        assert [d.page_content for d in docs] == [h.text for h in hits]
        details = [d.metadata["hybrid"] for d in docs]
        assert [m["id"] for m in details] == [h.id for h in hits]
        assert [m["score"] for m in details] == [h.score for h in hits]
        assert [m["fused_rank"] for m in details] == [1, 2, 3, 4]
        for doc, hit in zip(docs, hits, strict=True):
            for name, source in hit.sources.items():
                got = doc.metadata["hybrid"]["sources"][name]
                assert got["rank"] == source.rank
                assert got["score"] == (None if math.isnan(source.score) else source.score)
            user = {k: v for k, v in doc.metadata.items() if k != "hybrid"}
            assert user == hit.metadata


def test_async_path_equals_sync_and_per_call_options(engine):
    retriever = LangChainRetriever(engine=engine, k=3, search_kwargs={"fusion": "wsum"})

    async def main():
        return await asyncio.gather(*(retriever.ainvoke(q) for q in QUERIES))

    for query, docs in zip(QUERIES, asyncio.run(main()), strict=True):
        hits = engine.search(query, k=3, fusion="wsum")
        same_hits([d.id for d in docs], [d.metadata["hybrid"]["score"] for d in docs], hits)
    five = retriever.invoke(QUERIES[0], k=5, fusion="rrf")
    hits = engine.search(QUERIES[0], k=5, fusion="rrf")
    assert [d.id for d in five] == [h.id for h in hits]


def test_metadata_is_a_copy_and_collisions_are_refused(engine):
    retriever = LangChainRetriever(engine=engine, k=8)
    docs = retriever.invoke("satellite")
    doc = next(d for d in docs if d.id == "sat-1")
    doc.metadata["lang"] = "changed"
    doc.metadata["tags"].append("changed")
    stored = next(h for h in engine.search("satellite", k=8) if h.id == "sat-1").metadata
    assert stored["lang"] == "en" and "changed" not in stored["tags"]
    named = LangChainRetriever(engine=engine, k=2, metadata_key="_retrieval")
    assert "_retrieval" in named.invoke("satellite")[0].metadata
    clash = small_engine()
    clash.add(["satellite hybrid doc"], ids=["clash"], metadata=[{"hybrid": 1}])
    with pytest.raises(ValueError, match="own metadata field 'hybrid'.*metadata_key="):
        LangChainRetriever(engine=clash, k=len(IDS) + 1).invoke("satellite hybrid")


def test_filter_is_passed_only_when_given(engine):
    spy = SpyEngine(engine)
    LangChainRetriever(engine=spy, k=2).invoke("satellite")
    f = {"lang": "ko", "year": {"$gte": 2021}}
    LangChainRetriever(engine=spy, k=2, filter=f).invoke("satellite")
    LangChainRetriever(engine=spy, k=2, filter=f).invoke("satellite", filter={"lang": "en"})
    assert spy.calls == [{"k": 2}, {"k": 2, "filter": f}, {"k": 2, "filter": {"lang": "en"}}]


def test_filtered_documents_equal_filtered_engine_hits(engine):
    needs_filter(engine)
    f = {"$or": [{"lang": "ko"}, {"tags": "farming"}]}
    retriever = LangChainRetriever(engine=engine, k=10, filter=f)
    for query in QUERIES:
        hits = engine.search(query, k=10, filter=f)
        docs = retriever.invoke(query)
        assert [d.id for d in docs] == [h.id for h in hits]
        assert {d.id for d in docs} == {"ko-1", "ko-2", "sat-2"}


def test_bad_arguments():
    engine = small_engine()
    with pytest.raises(ValueError, match="greater than 0"):  # pydantic's ValidationError
        LangChainRetriever(engine=engine, k=0)
    with pytest.raises(ValueError, match="k must be a positive integer, got 0"):
        LangChainRetriever(engine=engine).invoke("x", k=0)
    with pytest.raises(TypeError, match="query must be a str"):
        LangChainRetriever(engine=engine).invoke(["a", "b"])


def test_lcel_chain_with_a_fake_llm(engine):
    """retriever | format_docs | prompt | llm, end to end, with langchain-core's fake chat model."""
    from langchain_core.language_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda, RunnablePassthrough

    seen: list[str] = []

    def format_docs(docs):
        text = "\n".join(f"[{d.id}] {d.page_content}" for d in docs)
        seen.append(text)
        return text

    prompt = ChatPromptTemplate.from_template("Context:\n{context}\n\nQuestion: {question}")
    llm = FakeListChatModel(responses=["Satellites help defense."])
    retriever = LangChainRetriever(engine=engine, k=2)
    chain = (
        {"context": retriever | RunnableLambda(format_docs), "question": RunnablePassthrough()}
        | prompt
        | llm
        | StrOutputParser()
    )
    assert chain.invoke(QUERIES[0]) == "Satellites help defense."
    hits = engine.search(QUERIES[0], k=2)
    assert seen == ["\n".join(f"[{h.id}] {h.text}" for h in hits)]


def test_option_precedence(engine):
    """Per-call options win over search_kwargs, which win over the fields (LangChain's habit)."""
    spy = SpyEngine(engine)
    f = {"lang": "en"}
    retriever = LangChainRetriever(engine=spy, k=2, search_kwargs={"k": 3, "fusion": "rrf"})
    retriever.invoke("satellite")
    retriever.invoke("satellite", k=4, filter=f, fusion="wsum")
    assert spy.calls == [{"k": 3, "fusion": "rrf"}, {"k": 4, "fusion": "wsum", "filter": f}]


def test_ainvoke_does_not_block_the_event_loop():
    retriever = LangChainRetriever(engine=small_engine(delay=DELAY), k=2)

    async def work():
        return await retriever.ainvoke(QUERIES[0])

    docs, gaps = ticking_while(work)
    assert docs[0].id == "sat-1" and gaps.max() < DELAY * 0.8
