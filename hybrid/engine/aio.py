"""Async twins of the engine's methods, for event-loop code (async RAG pipelines, web services).

Each ``a<method>`` runs the blocking method in a worker thread (:func:`asyncio.to_thread`, the
loop's default executor), so encoding and searching never block the event loop; other
coroutines run meanwhile. This is safe because the engine is thread safe: searches encode with
no lock held and then read one consistent state, writes are prepared outside any lock and
committed under the engine's readers-writer lock (see :mod:`hybrid.engine`).

Cancelling an awaiting coroutine does not stop the worker thread: a cancelled ``aadd`` /
``aupsert`` / ``adelete`` may still be applied, exactly as if the blocking call had been made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any


class AsyncEngineMixin:
    """``asearch``, ``aadd``, ``aupsert``, ``adelete``, ``aupdate_metadata`` and ``aget``.

    Mixed into :class:`hybrid.HybridRetriever`; each method takes exactly the arguments of its
    blocking twin and returns what it returns.
    """

    async def asearch(self, query: str | Sequence[str], k: int = 10, **options: Any) -> Any:
        """:meth:`search` in a worker thread (same arguments, same hits)."""
        return await asyncio.to_thread(self._method("search"), query, k, **options)

    async def aadd(
        self,
        texts: str | Sequence[str],
        ids: Sequence[Any] | None = None,
        metadata: Sequence[Mapping[str, Any] | None] | None = None,
        encoded: Mapping[str, Any] | None = None,
    ) -> list[Any]:
        """:meth:`add` in a worker thread; returns the new documents' ids."""
        return await asyncio.to_thread(self._method("add"), texts, ids, metadata, encoded)

    async def adelete(self, ids: Any) -> None:
        """:meth:`delete` in a worker thread."""
        await asyncio.to_thread(self._method("delete"), ids)

    async def aupsert(self, *args: Any, **kwargs: Any) -> Any:
        """:meth:`upsert` in a worker thread."""
        return await asyncio.to_thread(self._method("upsert"), *args, **kwargs)

    async def aupdate_metadata(self, *args: Any, **kwargs: Any) -> Any:
        """:meth:`update_metadata` in a worker thread."""
        return await asyncio.to_thread(self._method("update_metadata"), *args, **kwargs)

    async def aget(self, *args: Any, **kwargs: Any) -> Any:
        """:meth:`get` in a worker thread."""
        return await asyncio.to_thread(self._method("get"), *args, **kwargs)

    def _method(self, name: str) -> Callable[..., Any]:
        method = getattr(self, name, None)
        if not callable(method):
            raise NotImplementedError(
                f"{type(self).__name__} has no {name}(), so a{name}() cannot run it"
            )
        return method
