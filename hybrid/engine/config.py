"""Fusion settings as one object: what ``search`` uses, what tuning produces, what a file holds."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusion import ADAPTIVE

CONFIG_KIND = "FusionConfig"


@dataclass(frozen=True)
class FusionConfig:
    """How an engine fuses its retrievers' candidate lists.

    ``method``: a :func:`fusion.fuse` method (``"adaptive"``, ``"wsum"``, ``"rrf"``, ...).
    ``weights``: retriever name -> non-negative weight (names left out weigh 1.0; 0 leaves a
    retriever out). ``norm``: score normalisation for score methods (None: the method's default,
    min-max; z-score for ``"adaptive"``). ``rrf_k``: the RRF constant. ``depth``: candidates
    each retriever contributes to the fused ranking. ``stats_depth`` (``"adaptive"`` only): how
    deep each retriever is searched for the normalisation statistics (its best ``depth``
    candidates are fused, their scores standardised by the mean and std of the top
    ``stats_depth``); other methods ignore it. An engine starts from :data:`DEFAULT_CONFIG`.
    """

    method: str = "wsum"
    weights: Mapping[str, float] = field(default_factory=dict)
    norm: str | None = None
    rrf_k: float = 60
    depth: int = 100
    stats_depth: int = 1000

    @property
    def retrieval_depth(self) -> int:
        """Candidates each retriever must return: ``max(depth, stats_depth)`` for
        ``"adaptive"``, ``depth`` otherwise."""
        if self.method == ADAPTIVE:
            return max(int(self.depth), int(self.stats_depth))
        return int(self.depth)

    def replace(self, **changes: Any) -> FusionConfig:
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": CONFIG_KIND,
            "method": self.method,
            "weights": dict(self.weights),
            "norm": self.norm,
            "rrf_k": self.rrf_k,
            "depth": self.depth,
            "stats_depth": self.stats_depth,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FusionConfig:
        if not isinstance(data, Mapping):
            raise ValueError(
                f"a fusion configuration is a JSON object with fields such as 'method' and "
                f"'weights', got a {type(data).__name__}"
            )
        if data.get("type", CONFIG_KIND) != CONFIG_KIND:
            raise ValueError(f"not a fusion configuration: type {data.get('type')!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names - {"type"}
        if unknown:
            raise ValueError(f"unknown fusion configuration fields: {sorted(unknown)}")
        return cls(**{k: v for k, v in data.items() if k in names})

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> FusionConfig:
        try:
            data = json.loads(Path(path).read_bytes().decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not a JSON fusion configuration: {exc}") from exc
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from exc


DEFAULT_CONFIG = FusionConfig(method=ADAPTIVE, norm="zscore")
"""The engine's default: ``"adaptive"`` fusion, an evidence-weighted sum of z-scores.

Per query and retriever: ``weight = configured weight x evidence``, the evidence in [0, 1] from
:meth:`~hybrid.engine.retrievers.Retriever.evidence` (BM25: share of the query's terms in the index;
SPLADE: share of the query's characters its tokenizer knows as whole tokens; dense: 1), times,
for BM25 and SPLADE, their reach (:func:`hybrid.engine.evidence.stratum_reach`: the share of
the documents' characters their tokenizer reads intact, within the query's script and across).
Each retriever's best ``depth`` (100) scores are z-scored with the mean and std of its top
``stats_depth`` (1000), so a retriever counts more for a query where its best documents stand
far out of its own score distribution. A query whose candidates hold several scripts is fused
per script stratum and the dense ranking places the strata (:mod:`hybrid.engine.strata`).
No weight is tuned. Measured with the offline models
(nDCG@10, ``benchmarks/default_fusion.py``), it is at least as good as the best single
retriever on every dataset in ``../shared/data``: SciFact test 0.737 (best single BM25 0.691;
former default, the z-score sum, 0.734; RRF 0.715), AutoRAG-ko 0.947 (BM25 0.930; 0.908; 0.592;
full-length dense documents), Belebele ko->en 0.671 (dense 0.670; 0.551; 0.203), the bilingual
news pool 0.723 (dense 0.605; 0.401; 0.115). The explicit
methods (``fusion="wsum"`` with this z-score norm, ``"rrf"``, ...) are unchanged."""
