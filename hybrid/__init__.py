"""Hybrid retrieval: SPLADE learned-sparse, dense (FAISS) and BM25 retrievers, fused and explained.

Start with :class:`HybridRetriever` (``HybridRetriever.from_preset("offline")``).
"""

from hybrid import _moved
from hybrid.engine import HybridRetriever
from hybrid.engine.candidates import Candidates
from hybrid.engine.config import DEFAULT_CONFIG, FusionConfig
from hybrid.engine.documents import Document
from hybrid.engine.results import Explanation, Hit, SourceScore, TermContribution, TokenContribution
from hybrid.engine.retrievers import BM25Retriever, DenseRetriever, Retriever, SpladeRetriever

_moved.install()  # old module paths (hybrid.retrievers, hybrid.cli_args, ...) keep working

__all__ = [
    "DEFAULT_CONFIG",
    "BM25Retriever",
    "Candidates",
    "DenseRetriever",
    "Document",
    "Explanation",
    "FusionConfig",
    "Hit",
    "HybridRetriever",
    "Retriever",
    "SourceScore",
    "SpladeRetriever",
    "TermContribution",
    "TokenContribution",
]

__version__ = "0.1.0"
