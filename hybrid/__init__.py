"""Hybrid retrieval: SPLADE learned-sparse, dense (FAISS) and BM25 retrievers, fused and explained.

Start with :class:`HybridRetriever` (``HybridRetriever.from_preset("offline")``).
"""

from hybrid.candidates import Candidates
from hybrid.config import DEFAULT_CONFIG, FusionConfig
from hybrid.engine import HybridRetriever
from hybrid.results import Explanation, Hit, SourceScore, TermContribution, TokenContribution
from hybrid.retrievers import BM25Retriever, DenseRetriever, Retriever, SpladeRetriever

__all__ = [
    "DEFAULT_CONFIG",
    "BM25Retriever",
    "Candidates",
    "DenseRetriever",
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
