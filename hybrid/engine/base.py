"""What every part of the engine shares: its state, the checks of fusion settings, and the
thread pool helpers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

import fusion as fusion_lib
from hybrid.engine.config import FusionConfig
from hybrid.engine.locks import RWLock, run_each
from indexes.base import check_k, short

if TYPE_CHECKING:
    from hybrid.engine.filters import MetadataIndex
    from hybrid.engine.rerankers import Reranker
    from hybrid.engine.retrievers import Retriever
    from hybrid.engine.store import DocumentStore

ENCODE_PARALLEL_MIN_SECONDS = 0.001
"""Query encoding runs the retrievers' encoders side by side in the shared pool only when the
encoders that would run beside the slowest one are expected to take at least this long together
(from the time each took per query so far; unknown: side by side). Model encoders (tens of
milliseconds, the GIL released) run in parallel; look-ups and analyzers (microseconds) run in
the calling thread, where a hand-off to the pool would cost more than they do."""
PARALLEL_MIN_WORK = 20_000
"""Documents x queries below which ``parallel=True`` searches the retrievers one after another
in the calling thread, where a thread hand-off would cost about as much as it saves (a
single-query search of SciFact's 5,183 documents stays serial; ``benchmarks/concurrency.py``
compares both settings)."""
_T = TypeVar("_T")


class EngineBase:
    """The state the engine's parts (writes, search, explanations, persistence) work on, set by
    :class:`hybrid.HybridRetriever`'s constructor, and the helpers they all use."""

    retrievers: dict[str, Retriever]
    store: DocumentStore
    config: FusionConfig
    parallel: bool
    preset: str | None
    reranker: Reranker | None
    rerank_top: int
    _rw: RWLock  # searches read, a commit writes
    _writer: threading.RLock  # one writer at a time
    _filter_index: MetadataIndex | None
    _filter_build: threading.Lock
    _folder: Any  # the engine folder of a folder-backed engine
    _gen: int  # the folder generation this engine holds
    _encoders: dict[str, Any] | None
    _broken: str | None

    @property
    def names(self) -> list[str]:
        """The retrievers' names, in the order they were given."""
        return list(self.retrievers)

    def _config(
        self,
        config: FusionConfig | None = None,
        fusion: str | None = None,
        weights: Mapping[str, float] | None = None,
        norm: str | None = None,
        rrf_k: float | None = None,
        depth: int | None = None,
    ) -> FusionConfig:
        """The engine's configuration (or ``config``) with the given fields replaced, checked."""
        base = self.config if config is None else config
        no_change = fusion is None and weights is None and norm is None and rrf_k is None
        if no_change and depth is None and base is self.__dict__.get("_checked_config"):
            return base  # what the last call returned: checked already (and unchanged: frozen)
        if not isinstance(base, FusionConfig):
            raise TypeError(f"config must be a FusionConfig, got {type(base).__name__}")
        if fusion is not None and not isinstance(fusion, str):
            raise TypeError(f"fusion must be a method name (str), got {short(fusion)}")
        if fusion in fusion_lib.RANK_METHODS and norm is None:
            base = replace(base, norm=None)  # a rank method takes no normalisation
        cfg = base.replace(method=fusion, norm=norm, rrf_k=rrf_k, depth=depth)
        cfg = replace(cfg, weights=self._check_weights(cfg.weights if weights is None else weights))
        check_k(cfg.depth, "depth")
        check_k(cfg.stats_depth, "stats_depth")
        fusion_lib.check_options(cfg.method, cfg.norm, cfg.rrf_k)
        self._checked_config = cfg
        return cfg

    def _check_weights(self, weights: Mapping[str, float]) -> dict[str, float]:
        if not isinstance(weights, Mapping):
            raise TypeError("weights must be a dict of retriever name -> weight")
        for name, value in weights.items():
            if name not in self.retrievers:
                names = ", ".join(self.names)
                raise ValueError(f"unknown retriever {name!r} in weights; this engine has: {names}")
            if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (int, float, np.integer, np.floating)
            ):
                raise TypeError(f"weight of {name!r} must be a number, got {short(value)}")
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"weight of {name!r} must be finite and >= 0, got {value}")
        if all(weights.get(n, 1.0) == 0 for n in self.names):
            raise ValueError("every retriever weight is 0: nothing to search")
        return {name: float(value) for name, value in weights.items()}

    @staticmethod
    def _weight(cfg: FusionConfig, name: str) -> float:
        return float(cfg.weights.get(name, 1.0))

    def _encode_queries(self, queries: list[str], names: list[str]) -> dict[str, Any]:
        """Each named retriever's encoding of ``queries``: side by side in the shared pool when
        enabled and worth it (see :data:`ENCODE_PARALLEL_MIN_SECONDS`)."""
        if not self.parallel or len(names) < 2:  # one after another: no costs to keep
            return {name: self.retrievers[name].encode_queries(queries) for name in names}
        costs: dict[str, float] = self.__dict__.setdefault("_encode_costs", {})
        n = max(len(queries), 1)
        parallel = True
        if all(name in costs for name in names):
            expected = sorted(costs[name] * n for name in names)
            parallel = sum(expected[:-1]) >= ENCODE_PARALLEL_MIN_SECONDS

        def encode(name: str) -> Any:
            start = time.perf_counter()
            out = self.retrievers[name].encode_queries(queries)
            took = (time.perf_counter() - start) / n
            old = costs.get(name)  # a running average per query (races only blur it)
            costs[name] = took if old is None else 0.8 * old + 0.2 * took
            return out

        return run_each(encode, names, parallel)

    def _map(self, fn: Callable[[Any], _T], names: list[str]) -> dict[str, _T]:
        """Apply ``fn`` to each named retriever, in parallel threads when enabled."""
        return self._each(lambda n: fn(self.retrievers[n]), names)

    def _each(
        self, fn: Callable[[str], _T], names: list[str], work: int | None = None
    ) -> dict[str, _T]:
        """Apply ``fn`` to each retriever name: in the shared thread pool when enabled and
        ``work`` (documents x queries; None: unknown, e.g. encoding) is not tiny."""
        return run_each(fn, names, self._parallel_for(work))

    def _parallel_for(self, work: int | None) -> bool:
        """Whether work of ``work`` documents x queries (None: unknown) runs the retrievers
        side by side in the shared pool."""
        return self.parallel and (work is None or work >= PARALLEL_MIN_WORK)

    # Public hooks for engines built on this one (e.g. hybrid.backends.qdrant); the underscored
    # names stay as the same functions.
    resolve_config = _config
    weight_of = _weight
    map_retrievers = _map


def fusion_label(cfg: FusionConfig) -> str:
    """How a fusion configuration is named in explanations (found once per configuration:
    it is frozen)."""
    label = cfg.__dict__.get("_label")
    if label is None:
        label = cfg.__dict__["_label"] = _label(cfg)
    return label


def _label(cfg: FusionConfig) -> str:
    if cfg.method in fusion_lib.RANK_METHODS:
        return f"{cfg.method} k={cfg.rrf_k:g}" if cfg.method == "rrf" else cfg.method
    norm = fusion_lib.check_options(cfg.method, cfg.norm, cfg.rrf_k)
    if cfg.method == fusion_lib.ADAPTIVE:
        return f"{cfg.method} norm={norm} depth={cfg.depth} stats_depth={cfg.stats_depth}"
    return f"{cfg.method} norm={norm}"
