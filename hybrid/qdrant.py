"""Old import path of :mod:`hybrid.backends.qdrant` (kept so existing imports work)."""

from hybrid.backends.qdrant import (  # noqa: F401
    SERVER_FUSIONS,
    QdrantHybridRetriever,
    qdrant_retrievers,
)
