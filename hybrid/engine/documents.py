"""Stored documents as :meth:`hybrid.HybridRetriever.get` returns them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Document:
    """One live document: its id, text and metadata (a copy: changing it changes nothing)."""

    id: str | int
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view: ``{"id", "text", "metadata"}``."""
        return {"id": self.id, "text": self.text, "metadata": dict(self.metadata)}
