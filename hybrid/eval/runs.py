"""Runs: fused rows as ``query id -> {doc id: score}``, and TREC run files (by ranx)."""

from __future__ import annotations

from pathlib import Path

from hybrid.engine.candidates import arrays_to_run
from hybrid.eval.metrics import Run

__all__ = ["arrays_to_run", "read_trec_run", "write_trec_run"]


def _ranx_run(run: Run, name: str):
    from hybrid.eval.metrics import _ranx

    return _ranx().Run({q: dict(docs) for q, docs in run.items() if docs}, name=name)


def write_trec_run(run: Run, path: str | Path, tag: str = "hybrid") -> Path:
    """TREC run format (``qid Q0 docid rank score tag``, ranks from 1 by descending score),
    written by ranx."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _ranx_run(run, tag).save(str(path), kind="trec")
    return path


def read_trec_run(path: str | Path) -> Run:
    """A TREC run file as ``query id -> {doc id: score}``, read by ranx."""
    from hybrid.eval.metrics import _ranx

    run = _ranx().Run.from_file(str(path), kind="trec")
    return {q: {d: float(s) for d, s in docs.items()} for q, docs in run.run.items()}
