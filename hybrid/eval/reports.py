"""Reports: several systems scored on the same cached candidates, with paired tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.engine.candidates import Candidates
from hybrid.engine.config import FusionConfig
from hybrid.eval.metrics import DEFAULT_METRICS, Qrels, per_query_metrics
from hybrid.eval.runs import write_trec_run
from hybrid.eval.stats import PairedTest, paired_test


@dataclass
class SystemScores:
    name: str
    config: dict[str, Any] | None
    per_query: dict[str, np.ndarray]

    def mean(self, metric: str) -> float:
        return float(np.nanmean(self.per_query[metric]))


@dataclass
class EvalReport:
    """Scores of several systems over the same queries."""

    dataset: str
    split: str | None
    query_ids: list[str]
    metrics: list[str]
    systems: list[SystemScores]
    baseline: str | None = None
    tests: dict[str, PairedTest] = field(default_factory=dict)
    """System name -> paired test of its first metric against ``baseline``."""
    notes: list[str] = field(default_factory=list)

    def system(self, name: str) -> SystemScores:
        for s in self.systems:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "split": self.split,
            "queries": len(self.query_ids),
            "metrics": self.metrics,
            "baseline": self.baseline,
            "notes": self.notes,
            "systems": [],
        }
        for s in self.systems:
            row: dict[str, Any] = {
                "name": s.name,
                "config": s.config,
                "scores": {m: s.mean(m) for m in self.metrics},
            }
            t = self.tests.get(s.name)
            if t is not None:
                row["vs_baseline"] = {
                    "metric": self.metrics[0],
                    "test": t.method,
                    "diff": t.diff,
                    "p_value": t.p_value,
                    "ci": list(t.ci),
                }
            out["systems"].append(row)
        return out


def evaluate(
    candidates: Candidates,
    qrels: Qrels,
    systems: Mapping[str, FusionConfig | str],
    metrics: Sequence[str] = DEFAULT_METRICS,
    k: int = 100,
    baseline: str | None = None,
    test: str = "t-test",
    run_dir: str | Path | None = None,
    notes: Sequence[str] = (),
    backend: str = "ranx",
) -> EvalReport:
    """Score each system (a :class:`FusionConfig` or a retriever name) on ``candidates``.

    ``baseline`` (a system name) gets a paired ``test`` of every other system on the first
    metric. ``run_dir`` writes one TREC run file per system (``<name>.trec``). ``backend``:
    ``"ranx"`` or ``"numpy"`` (see :func:`per_query_metrics`).
    """
    judged = {q: qrels[q] for q in candidates.query_ids if q in qrels}
    scored = []
    for name, config in systems.items():
        run = candidates.run(config, k=k)
        if run_dir is not None:
            write_trec_run(run, Path(run_dir) / f"{_safe(name)}.trec", tag=_safe(name))
        cfg = config.to_dict() if isinstance(config, FusionConfig) else None
        scored.append(SystemScores(name, cfg, per_query_metrics(judged, run, metrics, backend)))
    qids = [q for q, rels in judged.items() if any(v > 0 for v in rels.values())]
    report = EvalReport(
        candidates.meta.get("dataset", ""),
        candidates.meta.get("split"),
        qids,
        list(metrics),
        scored,
        baseline,
        notes=list(notes),
    )
    if baseline is not None:
        base = report.system(baseline).per_query[metrics[0]]
        for s in scored:
            if s.name != baseline:
                report.tests[s.name] = paired_test(base, s.per_query[metrics[0]], test)
    return report


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def format_table(report: EvalReport, digits: int = 4) -> str:
    """A markdown table: one row per system, one column per metric (+ test vs baseline)."""
    head = ["system", *report.metrics]
    if report.tests:
        head += [f"Δ{report.metrics[0]} vs {report.baseline}", "p"]
    lines = [
        f"{report.dataset} ({report.split or 'all'}), {len(report.query_ids)} queries",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for s in report.systems:
        cells = [s.name] + [f"{s.mean(m):.{digits}f}" for m in report.metrics]
        if report.tests:
            t = report.tests.get(s.name)
            cells += [f"{t.diff:+.{digits}f}", f"{t.p_value:.3g}"] if t else ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    for note in report.notes:
        lines.append(f"\n{note}")
    return "\n".join(lines)


def standard_systems(
    names: Sequence[str], extra: Mapping[str, FusionConfig] | None = None, depth: int = 100
) -> dict[str, FusionConfig | str]:
    """Each retriever alone, RRF (k=60), weighted min-max (equal weights), the engine's default
    (``"adaptive"``, :data:`~hybrid.engine.config.DEFAULT_CONFIG`), then ``extra``."""
    from hybrid.engine.config import DEFAULT_CONFIG

    systems: dict[str, FusionConfig | str] = {n: n for n in names}
    if len(names) > 1:
        systems["rrf"] = FusionConfig(method="rrf", rrf_k=60, depth=depth)
        systems["minmax-sum"] = FusionConfig(method="wsum", norm="minmax", depth=depth)
        systems[DEFAULT_CONFIG.method] = DEFAULT_CONFIG.replace(depth=depth)
    systems.update(extra or {})
    return systems
