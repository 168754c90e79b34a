"""The engine: :class:`HybridRetriever` and the parts it is made of (see :mod:`.core`)."""

from hybrid.engine.base import PARALLEL_MIN_WORK, EngineBase, fusion_label
from hybrid.engine.candidates import Candidates
from hybrid.engine.core import HybridRetriever
from hybrid.engine.persistence import FORMAT_VERSION, KIND
from hybrid.engine.writes import WriteBatch

__all__ = [
    "FORMAT_VERSION",
    "KIND",
    "PARALLEL_MIN_WORK",
    "Candidates",
    "EngineBase",
    "HybridRetriever",
    "WriteBatch",
    "fusion_label",
]
