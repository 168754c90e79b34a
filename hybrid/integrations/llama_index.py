"""LlamaIndex retriever over a :class:`hybrid.HybridRetriever` (needs ``llama-index-core``).

>>> from llama_index.core.vector_stores import MetadataFilter, MetadataFilters
>>> from hybrid.integrations.llama_index import LlamaIndexRetriever
>>> filters = MetadataFilters(filters=[MetadataFilter(key="lang", value="ko")])
>>> retriever = LlamaIndexRetriever(engine, similarity_top_k=5, filters=filters)
>>> nodes = retriever.retrieve("위성 데이터")                 # or: await retriever.aretrieve(...)
>>> nodes[0].score, nodes[0].node.id_, nodes[0].node.metadata["hybrid"]["fused_rank"]

``filters`` (LlamaIndex ``MetadataFilters``) are translated by
:func:`hybrid.integrations.filters.from_llama_index`. Each ``NodeWithScore`` holds a
``TextNode`` (``id_`` = the engine's id as a str, ``text``, ``metadata`` = a copy of the
document's metadata plus the retrieval details under ``metadata_key``, default ``"hybrid"``;
that key is excluded from what LLMs and embedders see) and ``score`` = the hit's final score.
"""

from __future__ import annotations

from typing import Any

from hybrid.integrations import _common
from hybrid.integrations.filters import from_llama_index

try:
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "hybrid.integrations.llama_index needs llama-index-core: "
        "pip install 'splade-hybrid[llamaindex]'"
    ) from exc


class LlamaIndexRetriever(BaseRetriever):
    """A LlamaIndex ``BaseRetriever`` returning the engine's fused hits as ``NodeWithScore`` s.

    ``similarity_top_k``: hits per query; ``filters``: ``MetadataFilters`` (or None);
    ``search_kwargs``: other ``engine.search`` options (``fusion``, ``weights``, ``reranker``
    ...); ``metadata_key``: where the retrieval details go in each node's metadata. Other
    keyword arguments go to LlamaIndex's ``BaseRetriever`` (``callback_manager``, ``verbose``).
    """

    def __init__(
        self,
        engine: Any,
        similarity_top_k: int = 10,
        filters: Any | None = None,
        *,
        search_kwargs: dict[str, Any] | None = None,
        metadata_key: str = _common.DEFAULT_METADATA_KEY,
        **kwargs: Any,
    ) -> None:
        self.engine = engine
        self.similarity_top_k = _common.check_k(similarity_top_k, "similarity_top_k")
        self.filters = filters
        from_llama_index(filters)  # a filter the engine cannot take fails here, not at retrieval
        self.search_kwargs = dict(search_kwargs or {})
        _common.search_options(1, None, self.search_kwargs)  # refuses k / filter in there
        self.metadata_key = metadata_key
        super().__init__(**kwargs)

    def _options(self) -> dict[str, Any]:
        filter = from_llama_index(self.filters)  # per call: ``filters`` may have been changed
        return _common.search_options(self.similarity_top_k, filter, self.search_kwargs)

    def _nodes(self, hits: list[Any]) -> list[NodeWithScore]:
        key = self.metadata_key
        return [
            NodeWithScore(
                node=TextNode(
                    id_=str(hit.id),
                    text=hit.text,
                    metadata=_common.hit_metadata(hit, key),
                    excluded_llm_metadata_keys=[key],
                    excluded_embed_metadata_keys=[key],
                ),
                score=hit.score,
            )
            for hit in hits
        ]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = _common.check_query(query_bundle.query_str)
        return self._nodes(_common.search(self.engine, query, **self._options()))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query = _common.check_query(query_bundle.query_str)
        return self._nodes(await _common.asearch(self.engine, query, **self._options()))
