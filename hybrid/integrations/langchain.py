"""LangChain retriever over a :class:`hybrid.HybridRetriever` (needs ``langchain-core``).

>>> from hybrid.integrations.langchain import LangChainRetriever
>>> retriever = LangChainRetriever(engine=engine, k=5, filter={"lang": "ko"})
>>> docs = retriever.invoke("위성 데이터")                     # or: await retriever.ainvoke(...)
>>> docs = retriever.invoke("satellite", k=3, filter={"year": {"$gte": 2020}})  # per call
>>> docs[0].metadata["hybrid"]["score"], docs[0].metadata["hybrid"]["sources"]["bm25"]["rank"]

``filter`` is the engine's filter language as is (the Chroma/MongoDB-style dict LangChain users
write). Each ``Document`` has ``page_content`` = the text, ``id`` = the engine's id (as a str)
and ``metadata`` = a copy of the document's metadata plus the retrieval details under
``metadata_key`` (default ``"hybrid"``; see :func:`hybrid.integrations._common.hit_details`).
"""

from __future__ import annotations

from typing import Any

from hybrid.integrations import _common

try:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
    )
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict, Field
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "hybrid.integrations.langchain needs langchain-core: pip install 'splade-hybrid[langchain]'"
    ) from exc


class LangChainRetriever(BaseRetriever):
    """A LangChain ``BaseRetriever`` returning the engine's fused hits as ``Document`` s.

    ``k``: hits per query; ``filter``: a metadata filter in the engine's language (None: no
    filter); ``search_kwargs``: other ``engine.search`` options (``fusion``, ``weights``,
    ``reranker`` ...; ``k`` and ``filter`` there win over the fields, as in LangChain's
    vector-store retrievers); ``metadata_key``: where the retrieval details go in each
    document's metadata. ``invoke(query, k=..., filter=..., **search options)`` overrides all
    of them for one call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: Any
    k: int = Field(default=10, gt=0)
    filter: dict[str, Any] | None = None
    search_kwargs: dict[str, Any] = Field(default_factory=dict)
    metadata_key: str = _common.DEFAULT_METADATA_KEY

    def _search_kwargs(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """Per-call options over ``search_kwargs`` over the fields (``k``, ``filter``)."""
        options = {**self.search_kwargs, **overrides}
        k = _common.check_k(options.pop("k", self.k), "k")
        filter = options.pop("filter", self.filter)
        return _common.search_options(k, filter, options)

    def _documents(self, hits: list[Any]) -> list[Document]:
        return [
            Document(
                page_content=hit.text,
                metadata=_common.hit_metadata(hit, self.metadata_key),
                id=str(hit.id),
            )
            for hit in hits
        ]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        options = self._search_kwargs(kwargs)
        return self._documents(_common.search(self.engine, _common.check_query(query), **options))

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        options = self._search_kwargs(kwargs)
        hits = await _common.asearch(self.engine, _common.check_query(query), **options)
        return self._documents(hits)
