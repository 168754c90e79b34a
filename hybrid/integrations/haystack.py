"""Haystack retriever component over a :class:`hybrid.HybridRetriever` (needs ``haystack-ai``).

>>> from haystack import Pipeline
>>> from hybrid.integrations.haystack import HaystackRetriever
>>> pipe = Pipeline()
>>> pipe.add_component("retriever", HaystackRetriever(engine, top_k=5))
>>> f = {"field": "meta.lang", "operator": "==", "value": "ko"}
>>> out = pipe.run({"retriever": {"query": "위성 데이터", "filters": f}})
>>> out["retriever"]["documents"][0].meta["hybrid"]["sources"]

Haystack filters (``{"operator": "AND", "conditions": [{"field": "meta.lang", "operator": "==",
"value": "ko"}, ...]}``) are translated by :func:`hybrid.integrations.filters.from_haystack`.
Each ``Document`` has ``id`` = the engine's id (as a str), ``content`` = the text, ``score`` =
the hit's final score and ``meta`` = a copy of the document's metadata plus the retrieval
details under ``metadata_key`` (default ``"hybrid"``). ``run_async`` searches in a worker
thread (``AsyncPipeline``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hybrid.integrations import _common
from hybrid.integrations.filters import from_haystack

try:
    from haystack import Document, component
    from haystack.core.errors import SerializationError
    from haystack.core.serialization import default_from_dict, default_to_dict
    from haystack.document_stores.types import FilterPolicy, apply_filter_policy
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "hybrid.integrations.haystack needs haystack-ai: pip install 'splade-hybrid[haystack]'"
    ) from exc


@component
class HaystackRetriever:
    """A Haystack component: ``run(query, top_k=None, filters=None) -> {"documents": [...]}``.

    ``engine``: a :class:`hybrid.HybridRetriever`, or the folder of a saved one (opened with
    ``HybridRetriever.load``; only then can the component, and a pipeline holding it, be
    serialised with ``to_dict`` / YAML; Haystack 3 loads it with
    ``allowed_modules=["hybrid.integrations.haystack"]``). ``top_k``: hits per query (``run``'s
    ``top_k`` overrides it). ``filters``: a Haystack filter applied to every run, combined with
    a run's ``filters`` by Haystack's ``filter_policy`` (``REPLACE``, the default: a run's
    filters replace these; ``MERGE``: Haystack's merge). ``search_kwargs``: other
    ``engine.search`` options. ``metadata_key``: where the retrieval details go in each
    document's ``meta``.
    """

    def __init__(
        self,
        engine: Any,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        *,
        filter_policy: FilterPolicy | str = FilterPolicy.REPLACE,
        search_kwargs: dict[str, Any] | None = None,
        metadata_key: str = _common.DEFAULT_METADATA_KEY,
    ) -> None:
        self.engine_path: str | None = None
        if isinstance(engine, (str, Path)):
            from hybrid import HybridRetriever

            self.engine_path = str(engine)
            engine = HybridRetriever.load(engine)
        self.engine = engine
        self.top_k = _common.check_k(top_k, "top_k")
        from_haystack(filters)  # a filter the engine cannot take fails here, not in a pipeline
        self.filters = filters
        if isinstance(filter_policy, str):
            filter_policy = FilterPolicy.from_str(filter_policy)
        self.filter_policy = filter_policy
        self.search_kwargs = dict(search_kwargs or {})
        _common.search_options(1, None, self.search_kwargs)  # refuses k / filter in there
        self.metadata_key = metadata_key

    def to_dict(self) -> dict[str, Any]:
        """Haystack serialisation: possible when the engine was given as a saved folder."""
        if self.engine_path is None:
            raise SerializationError(
                "HaystackRetriever holds an engine object, which cannot be serialised; build it "
                "from a saved engine folder instead: HaystackRetriever(engine='path/to/index')"
            )
        return default_to_dict(
            self,
            engine=self.engine_path,
            top_k=self.top_k,
            filters=self.filters,
            filter_policy=self.filter_policy.value,
            search_kwargs=self.search_kwargs,
            metadata_key=self.metadata_key,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HaystackRetriever:
        return default_from_dict(cls, data)

    def _options(self, top_k: int | None, filters: dict[str, Any] | None) -> dict[str, Any]:
        k = _common.check_k(self.top_k if top_k is None else top_k, "top_k")
        merged = apply_filter_policy(self.filter_policy, self.filters, filters)
        return _common.search_options(k, from_haystack(merged), self.search_kwargs)

    def _documents(self, hits: list[Any]) -> list[Document]:
        return [
            Document(
                id=str(hit.id),
                content=hit.text,
                meta=_common.hit_metadata(hit, self.metadata_key),
                score=hit.score,
            )
            for hit in hits
        ]

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, top_k: int | None = None, filters: dict[str, Any] | None = None
    ) -> dict[str, list[Document]]:
        """The engine's top hits for ``query`` as Haystack documents, best first."""
        options = self._options(top_k, filters)
        hits = _common.search(self.engine, _common.check_query(query), **options)
        return {"documents": self._documents(hits)}

    @component.output_types(documents=list[Document])
    async def run_async(
        self, query: str, top_k: int | None = None, filters: dict[str, Any] | None = None
    ) -> dict[str, list[Document]]:
        """:meth:`run` without blocking the event loop (the search runs in a worker thread)."""
        options = self._options(top_k, filters)
        hits = await _common.asearch(self.engine, _common.check_query(query), **options)
        return {"documents": self._documents(hits)}
