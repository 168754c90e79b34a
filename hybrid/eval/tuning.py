"""Fusion tuning on cached candidates: grid search, Bayesian search (optuna), cross-validation.

Honest by construction: :func:`tune` picks a configuration on the *train* queries only and
reports its score on held-out queries (a test split, or the held-out folds of k-fold
cross-validation when only one split exists) with a bootstrap confidence interval.

The inner loop never calls models or indexes: :class:`FusionTable` keeps one
:class:`fusion.FusionTable` per candidate depth (the lists of all queries canonicalised and
aligned once, normalisations kept), so one configuration costs a weighted sum and a partial sort
(milliseconds), through the same scoring step as :func:`fusion.fuse_padded`.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import fusion
from fusion import ADAPTIVE
from hybrid.engine.candidates import Candidates
from hybrid.engine.config import DEFAULT_CONFIG, FusionConfig
from hybrid.eval.metrics import FastNDCG, Qrels
from hybrid.eval.stats import bootstrap_ci

logger = logging.getLogger("hybrid")


@dataclass(frozen=True)
class SearchSpace:
    """What tuning may choose. ``methods`` are ``"rrf"`` or ``"wsum:<norm>"``."""

    methods: tuple[str, ...] = ("rrf", "wsum:minmax", "wsum:zscore")
    weights: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
    """Grid values per retriever (weight vectors equal up to scale are tried once)."""
    rrf_k: tuple[float, ...] = (10, 30, 60, 100)
    depths: tuple[int, ...] = (100, 200)
    """Candidates per retriever (capped at the cached depth)."""
    weight_range: tuple[float, float] = (0.0, 1.0)
    rrf_k_range: tuple[float, float] = (1.0, 200.0)

    def to_dict(self) -> dict[str, Any]:
        return {f: list(getattr(self, f)) for f in self.__dataclass_fields__}


SMALL_SPACE = SearchSpace(
    methods=("rrf", "wsum:minmax"),
    weights=(0.0, 0.25, 0.5, 1.0),
    rrf_k=(10, 60),
    depths=(100,),
)
"""A quick space for tests and smoke runs."""


def _split_method(spec: str) -> tuple[str, str | None]:
    method, _, norm = spec.partition(":")
    return method, (norm or None) if method != "rrf" else None


class FusionTable:
    """Cached candidates fused fast for many configurations: one :class:`fusion.FusionTable`
    per (retrieval depth, fused depth), built on first use."""

    def __init__(self, candidates: Candidates) -> None:
        self.candidates = candidates
        self.names = candidates.names
        self._tables: dict[tuple[int, int | None], fusion.FusionTable] = {}

    def top(self, config: FusionConfig, k: int = 10) -> np.ndarray:
        """Top-``k`` fused rows per query, ``(n_queries, k)`` padded with -1."""
        _, _, options = self.candidates.fusion_args(config, self.names)
        depth = min(config.retrieval_depth, self.candidates.depth)
        key = (depth, options.pop("depth", None))
        if key not in self._tables:
            lists = [
                (r.ids[:, :depth], r.scores[:, :depth]) for r in self.candidates.results.values()
            ]
            self._tables[key] = fusion.FusionTable(lists, depth=key[1])
        return self._tables[key].top(top=k, **options)[0]


@dataclass
class Trial:
    config: FusionConfig
    score: float


class Objective:
    """Mean nDCG@k of a configuration over a set of queries (fast path, cached per config)."""

    def __init__(self, candidates: Candidates, qrels: Qrels, k: int = 10) -> None:
        self.candidates = candidates
        self.table = FusionTable(candidates)
        self.metric = FastNDCG(candidates.query_ids, candidates.doc_ids, qrels, k)
        self.k = k
        self.calls = 0

    def per_query(self, config: FusionConfig) -> np.ndarray:
        self.calls += 1
        return self.metric(self.table.top(config, self.k))

    def __call__(self, config: FusionConfig) -> float:
        values = self.per_query(config)
        return float(np.nanmean(values)) if np.any(~np.isnan(values)) else 0.0


def _unique_weight_vectors(names: Sequence[str], grid: Sequence[float]) -> list[dict[str, float]]:
    seen, out = set(), []
    for combo in itertools.product(grid, repeat=len(names)):
        top = max(combo)
        if top <= 0:
            continue
        key = tuple(round(c / top, 6) for c in combo)
        if key in seen:
            continue
        seen.add(key)
        out.append({n: float(c) for n, c in zip(names, combo, strict=True)})
    return out


def grid_configs(names: Sequence[str], space: SearchSpace, max_depth: int) -> list[FusionConfig]:
    """Every configuration of the grid (weights deduplicated up to scale, depths capped)."""
    depths = sorted({min(int(d), max_depth) for d in space.depths})
    out = []
    for spec in space.methods:
        method, norm = _split_method(spec)
        ks = space.rrf_k if method == "rrf" else (60,)
        for weights, k, depth in itertools.product(
            _unique_weight_vectors(names, space.weights), ks, depths
        ):
            out.append(
                FusionConfig(method=method, weights=weights, norm=norm, rrf_k=k, depth=depth)
            )
    return out


def _better(a: Trial, b: Trial | None) -> bool:
    return b is None or a.score > b.score + 1e-12


def grid_search(
    objective: Objective | Callable[[FusionConfig], float],
    names: Sequence[str],
    space: SearchSpace = SearchSpace(),
    max_depth: int = 1000,
    progress: bool = False,
) -> list[Trial]:
    """Score every grid configuration; trials sorted best first (ties: grid order)."""
    configs = grid_configs(names, space, max_depth)
    it: Any = configs
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(configs, desc="grid", unit="config", leave=False)
    trials = [Trial(c, objective(c)) for c in it]
    return sorted(trials, key=lambda t: -t.score)


def optuna_search(
    objective: Objective | Callable[[FusionConfig], float],
    names: Sequence[str],
    space: SearchSpace = SearchSpace(),
    max_depth: int = 1000,
    n_trials: int = 100,
    seed: int = 0,
) -> list[Trial]:
    """Bayesian search (optuna TPE) over method, weights, RRF k and depth."""
    try:
        import optuna
    except ImportError as exc:
        raise ImportError(
            "strategy 'optuna' needs optuna: pip install 'splade-hybrid[tune]'"
        ) from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    depths = sorted({min(int(d), max_depth) for d in space.depths})
    trials: list[Trial] = []

    def run(trial: Any) -> float:
        method, norm = _split_method(trial.suggest_categorical("method", list(space.methods)))
        lo, hi = space.weight_range
        weights = {n: trial.suggest_float(f"w_{n}", lo, hi) for n in names}
        if max(weights.values()) <= 0:
            return 0.0
        k = trial.suggest_float("rrf_k", *space.rrf_k_range, log=True) if method == "rrf" else 60
        depth = trial.suggest_categorical("depth", depths)
        cfg = FusionConfig(
            method=method,
            weights={n: round(w, 4) for n, w in weights.items()},
            norm=norm,
            rrf_k=round(float(k), 2),
            depth=int(depth),
        )
        score = objective(cfg)
        trials.append(Trial(cfg, score))
        return score

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(run, n_trials=n_trials)
    return sorted(trials, key=lambda t: -t.score)


def search(
    candidates: Candidates,
    qrels: Qrels,
    strategy: str = "grid",
    space: SearchSpace = SearchSpace(),
    n_trials: int = 100,
    seed: int = 0,
    k: int = 10,
    progress: bool = False,
) -> list[Trial]:
    """Tune on ``candidates`` (all of its queries): trials best first."""
    objective = Objective(candidates, qrels, k)
    if strategy == "grid":
        return grid_search(objective, candidates.names, space, candidates.depth, progress)
    if strategy == "optuna":
        return optuna_search(objective, candidates.names, space, candidates.depth, n_trials, seed)
    raise ValueError(f"unknown strategy {strategy!r}; valid: grid, optuna")


@dataclass
class TuneResult:
    """The chosen configuration and honest estimates of how it does on unseen queries."""

    config: FusionConfig
    train_score: float
    """Mean nDCG@k on the queries it was tuned on (optimistic by construction)."""
    heldout_score: float
    heldout_ci: tuple[float, float]
    heldout_mode: str
    """``"split"`` (a separate test split) or ``"cv-<k>"`` (k-fold cross-validation)."""
    heldout_per_query: np.ndarray
    baselines: dict[str, float] = field(default_factory=dict)
    """Held-out score of reference systems (RRF, each retriever alone) on the same queries."""
    fold_configs: list[FusionConfig] = field(default_factory=list)
    trials: list[Trial] = field(default_factory=list)
    metric: str = "ndcg@10"
    strategy: str = "grid"

    def to_dict(self, top_trials: int = 10) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "metric": self.metric,
            "strategy": self.strategy,
            "train_score": self.train_score,
            "heldout": {
                "mode": self.heldout_mode,
                "score": self.heldout_score,
                "ci95": list(self.heldout_ci),
                "queries": int(np.sum(~np.isnan(self.heldout_per_query))),
            },
            "baselines_heldout": self.baselines,
            "fold_configs": [c.to_dict() for c in self.fold_configs],
            "top_trials": [
                {"score": t.score, "config": t.config.to_dict()} for t in self.trials[:top_trials]
            ],
        }

    def summary(self) -> str:
        lo, hi = self.heldout_ci
        lines = [
            f"chosen: {describe(self.config)}",
            f"{self.metric} on tuning queries (optimistic): {self.train_score:.4f}",
            f"{self.metric} held out ({self.heldout_mode}): {self.heldout_score:.4f}"
            f"  95% CI [{lo:.4f}, {hi:.4f}]",
        ]
        for name, value in self.baselines.items():
            lines.append(f"  {name:<12} held out: {value:.4f}")
        return "\n".join(lines)


def describe(config: FusionConfig) -> str:
    w = ", ".join(f"{n}={v:g}" for n, v in config.weights.items())
    head = f"rrf k={config.rrf_k:g}" if config.method == "rrf" else f"{config.method}/{config.norm}"
    tail = f" stats_depth={config.stats_depth}" if config.method == ADAPTIVE else ""
    return f"{head} weights({w}) depth={config.depth}{tail}"


def _baseline_configs(names: Sequence[str]) -> dict[str, FusionConfig | str]:
    out: dict[str, FusionConfig | str] = {n: n for n in names}
    out["rrf"] = FusionConfig(method="rrf", rrf_k=60, depth=100)
    out["minmax-sum"] = FusionConfig(method="wsum", norm="minmax", depth=100)
    out[DEFAULT_CONFIG.method] = DEFAULT_CONFIG  # the engine's default (adaptive), untuned
    return out


def _per_query(
    candidates: Candidates, qrels: Qrels, config: FusionConfig | str, k: int
) -> np.ndarray:
    metric = FastNDCG(candidates.query_ids, candidates.doc_ids, qrels, k)
    return metric(candidates.fused_arrays(config, k)[0])


def tune(
    train: Candidates,
    train_qrels: Qrels,
    test: Candidates | None = None,
    test_qrels: Qrels | None = None,
    *,
    strategy: str = "grid",
    space: SearchSpace = SearchSpace(),
    folds: int = 5,
    n_trials: int = 100,
    seed: int = 0,
    k: int = 10,
    progress: bool = False,
) -> TuneResult:
    """Choose a fusion configuration on ``train``; estimate it on held-out queries.

    With ``test``: tuned on all train queries, scored on the test queries. Without: k-fold
    cross-validation over the train queries (each fold tuned on the others, scored on itself;
    the held-out score pools all folds' queries), and the returned configuration is the one
    tuned on all queries. ``k`` is the nDCG cut-off of the objective.
    """
    trials = search(train, train_qrels, strategy, space, n_trials, seed, k, progress)
    if not trials:
        raise ValueError("the search space is empty")
    best = trials[0]
    metric = f"ndcg@{k}"
    if test is not None:
        if test_qrels is None:
            raise ValueError("test needs test_qrels")
        per_q = _per_query(test, test_qrels, best.config, k)
        baselines = {
            name: float(np.nanmean(_per_query(test, test_qrels, cfg, k)))
            for name, cfg in _baseline_configs(test.names).items()
        }
        return TuneResult(
            best.config,
            best.score,
            float(np.nanmean(per_q)),
            bootstrap_ci(per_q),
            "split",
            per_q,
            baselines,
            [],
            trials,
            metric,
            strategy,
        )
    if folds < 2:
        raise ValueError("cross-validation needs folds >= 2")
    n = len(train)
    if n < folds:
        raise ValueError(f"{n} queries cannot make {folds} folds")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(n, dtype=np.int64)
    fold_of[rng.permutation(n)] = np.arange(n) % folds
    heldout = np.full(n, np.nan)
    base_q: dict[str, np.ndarray] = {}
    fold_configs = []
    for f in range(folds):
        tr, te = np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)
        fold_trials = search(
            train.subset(tr), train_qrels, strategy, space, n_trials, seed + f + 1, k
        )
        cfg = fold_trials[0].config
        fold_configs.append(cfg)
        held = train.subset(te)
        heldout[te] = _per_query(held, train_qrels, cfg, k)
        for name, bcfg in _baseline_configs(train.names).items():
            base_q.setdefault(name, np.full(n, np.nan))[te] = _per_query(held, train_qrels, bcfg, k)
    baselines = {name: float(np.nanmean(v)) for name, v in base_q.items()}
    return TuneResult(
        best.config,
        best.score,
        float(np.nanmean(heldout)),
        bootstrap_ci(heldout),
        f"cv-{folds}",
        heldout,
        baselines,
        fold_configs,
        trials,
        metric,
        strategy,
    )


def sweep(
    candidates: Candidates,
    qrels: Qrels,
    base: FusionConfig,
    field_name: str,
    values: Sequence[Any],
    k: int = 10,
) -> np.ndarray:
    """Mean nDCG@k as one setting varies: ``field_name`` is ``"rrf_k"``, ``"depth"`` or
    ``"weight:<retriever>"`` (for plots of the score against one weight or RRF k)."""
    objective = Objective(candidates, qrels, k)
    out = []
    for v in values:
        if field_name.startswith("weight:"):
            name = field_name.split(":", 1)[1]
            cfg = base.replace(weights={**dict(base.weights), name: float(v)})
            if all(cfg.weights.get(n, 1.0) == 0 for n in candidates.names):
                out.append(math.nan)
                continue
        else:
            cfg = base.replace(**{field_name: v})
        out.append(objective(cfg))
    return np.asarray(out)
