"""What every adapter shares: the hit's retrieval details as metadata, and the search call."""

from __future__ import annotations

import asyncio
import copy
import math
from collections.abc import Mapping
from typing import Any

from hybrid.engine.results import Hit

DEFAULT_METADATA_KEY = "hybrid"


def hit_details(hit: Hit) -> dict[str, Any]:
    """A hit's retrieval details as a JSON-able dict (the ``"hybrid"`` metadata entry).

    ``id``, ``score`` (final), ``rank`` (final, from 1), ``fused_score``, ``fused_rank``,
    ``reranker_score`` (None without a reranker) and ``sources``: per retriever, ``rank``
    (0: not among its candidates), raw ``score`` (None when absent) and ``contribution``
    (its share of the fused score).
    """
    return {
        "id": hit.id,
        "score": hit.score,
        "rank": hit.rank,
        "fused_score": hit.fused_score,
        "fused_rank": hit.fused_rank,
        "reranker_score": hit.reranker_score,
        "sources": {
            name: {
                "rank": s.rank,
                "score": None if math.isnan(s.score) else s.score,
                "contribution": s.contribution,
            }
            for name, s in hit.sources.items()
        },
    }


def hit_metadata(hit: Hit, key: str = DEFAULT_METADATA_KEY) -> dict[str, Any]:
    """A copy of the document's metadata with :func:`hit_details` under ``key``.

    The copy is deep, so a framework that edits it cannot change the engine's stored metadata.
    A document whose own metadata already has ``key`` is an error (nothing is overwritten):
    choose another ``metadata_key`` for the adapter.
    """
    meta = copy.deepcopy(dict(hit.metadata or {}))
    if key in meta:
        raise ValueError(
            f"document {hit.id!r} has its own metadata field {key!r}, where the adapter puts the "
            f"retrieval details; pass another metadata_key= to the adapter"
        )
    meta[key] = hit_details(hit)
    return meta


def search_options(
    k: int, filter: Mapping[str, Any] | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """Keyword arguments for ``engine.search``: ``filter=`` only when a filter is given.

    ``options`` (an adapter's ``search_kwargs``) must not hold ``k`` or ``filter``: each adapter
    has its own argument for those.
    """
    clash = sorted({"k", "filter"} & set(options))
    if clash:
        raise ValueError(
            f"search_kwargs must not hold {clash}: use the adapter's own top-k and filter arguments"
        )
    kwargs = {"k": k, **options}
    if filter is not None:
        kwargs["filter"] = filter
    return kwargs


def search(engine: Any, query: str, **kwargs: Any) -> list[Hit]:
    return engine.search(query, **kwargs)


async def asearch(engine: Any, query: str, **kwargs: Any) -> list[Hit]:
    """``engine.asearch`` when it has one, else ``engine.search`` in a worker thread."""
    method = getattr(engine, "asearch", None)
    if method is not None:
        return await method(query, **kwargs)
    return await asyncio.to_thread(engine.search, query, **kwargs)


def check_k(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_query(query: Any) -> str:
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, got {type(query).__name__}")
    return query
