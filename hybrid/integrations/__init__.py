"""Retrievers for RAG frameworks, each a thin module over :class:`hybrid.HybridRetriever`.

Import the one you use; each needs its framework (an optional extra):

- :mod:`hybrid.integrations.langchain`: ``LangChainRetriever`` (``pip install
  'splade-hybrid[langchain]'``, i.e. ``langchain-core``).
- :mod:`hybrid.integrations.llama_index`: ``LlamaIndexRetriever`` (``[llamaindex]``,
  ``llama-index-core``).
- :mod:`hybrid.integrations.haystack`: ``HaystackRetriever`` (``[haystack]``, ``haystack-ai``).

:mod:`hybrid.integrations.filters` translates LlamaIndex and Haystack filters into the engine's
filter language; :mod:`hybrid.integrations._common` builds the metadata every adapter returns.
This package imports no framework.
"""
