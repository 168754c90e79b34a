"""What the engine needs of its parts, as :class:`typing.Protocol` s.

Any object with these methods works (structural typing): an encoder from another library, a
custom index, a retriever written for a new store. The project's own classes satisfy them:
:class:`~hybrid.encoders.SpladeEncoder` is a :class:`SparseEncoder`, the dense encoders are
:class:`DenseEncoder` s, the retrievers of :mod:`hybrid.engine.retrievers` are
:class:`RetrieverLike`.
The index protocol is :class:`indexes.base.Index`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from indexes.base import Index, SearchResult

__all__ = ["DenseEncoder", "Encoder", "EngineLike", "Index", "RetrieverLike", "SparseEncoder"]


@runtime_checkable
class Encoder(Protocol):
    """Texts in, vectors out, with a JSON-able ``spec`` that says what produced them."""

    name: str

    @property
    def dim(self) -> int: ...

    @property
    def spec(self) -> dict[str, Any]: ...

    def encode_documents(self, texts: str | Sequence[str]) -> Any: ...

    def encode_queries(self, texts: str | Sequence[str]) -> Any: ...


@runtime_checkable
class SparseEncoder(Encoder, Protocol):
    """A learned-sparse encoder: CSR rows over a vocabulary of ``dim`` tokens."""

    def decode(self, ids: Sequence[int] | np.ndarray) -> list[str]:
        """Token strings of vocabulary ids (for explanations)."""
        ...


@runtime_checkable
class DenseEncoder(Encoder, Protocol):
    """A dense encoder: ``(n, dim)`` float32 rows compared by ``metric`` (``"ip"``/``"l2"``)."""

    @property
    def metric(self) -> str: ...


@runtime_checkable
class RetrieverLike(Protocol):
    """What the engine, evaluation and tuning call on a retriever (see
    :class:`hybrid.engine.retrievers.Retriever` for the base class that provides the rest)."""

    kind: ClassVar[str]

    def encode_documents(self, texts: list[str]) -> Any: ...

    def encode_queries(self, texts: list[str]) -> Any: ...

    def add_encoded(self, encoded: Any) -> np.ndarray: ...

    def search_encoded(self, encoded: Any, k: int) -> SearchResult: ...

    def evidence(self, queries: Sequence[str], encoded: Any) -> np.ndarray: ...

    def settings(self) -> dict[str, Any]: ...

    def __len__(self) -> int: ...


@runtime_checkable
class EngineLike(Protocol):
    """What a reranker reads of the engine that holds its candidates: the retrievers by name
    (for their encoders and stored vectors)."""

    retrievers: dict[str, Any]

    @property
    def names(self) -> list[str]: ...
