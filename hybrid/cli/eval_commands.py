"""``hybrid eval`` and ``hybrid tune``, added to the main parser by :func:`add_commands`.

Both commands retrieve each retriever's candidates once (to ``--depth``), cache them under
``--cache-dir`` keyed by data + retriever settings + depth, and fuse from that cache.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hybrid.cli.args import positive_int
from hybrid.cli.errors import UserError
from hybrid.engine.presets import EVAL_ONLY_PRESETS, PRESETS

DEFAULT_CACHE = "runs/cache"


EVAL_PRESETS: dict[str, tuple[str, Callable[[], dict[str, Any]] | None]] = {
    **{name: (desc, None) for name, desc in PRESETS.items()},
    **EVAL_ONLY_PRESETS,
}
"""Retriever sets ``hybrid eval/tune --preset`` accepts: the engine presets plus two more."""


def build_retrievers(preset: str) -> Callable[[], dict[str, Any]]:
    """A function building fresh retrievers of ``preset`` (called only on a cache miss)."""
    if preset not in EVAL_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of: {', '.join(EVAL_PRESETS)}")
    builder = EVAL_PRESETS[preset][1]
    if builder is not None:
        return builder

    def from_engine_preset() -> dict[str, Any]:
        from hybrid.engine.presets import build_retrievers as engine_retrievers

        return engine_retrievers(preset)[1]

    return from_engine_preset


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/) or corpus JSONL")
    p.add_argument("--queries", default=None, help="queries JSONL/TSV (with a corpus file)")
    p.add_argument("--qrels", default=None, help="judgements TSV/TREC (with a corpus file)")
    p.add_argument(
        "--preset",
        default="offline",
        choices=list(EVAL_PRESETS),
        help="retrievers: " + "; ".join(f"{k}: {v[0]}" for k, v in EVAL_PRESETS.items()),
    )
    p.add_argument(
        "--depth", type=positive_int, default=1000, help="candidates retrieved per retriever"
    )
    p.add_argument(
        "--limit-docs",
        type=positive_int,
        default=None,
        help="first N documents (plus those judged for the kept queries)",
    )
    p.add_argument(
        "--limit-queries", type=positive_int, default=None, help="first N judged queries"
    )
    p.add_argument("--cache-dir", default=DEFAULT_CACHE, help="candidate/encoding cache folder")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--metrics-backend",
        default="ranx",
        choices=["ranx", "numpy"],
        help="ranx (default) or the same definitions in numpy (no numba start-up)",
    )


def _candidates(args: argparse.Namespace, split: str | None):
    from hybrid.eval import load_dataset, retrieve_candidates

    inputs = (("data", args.data), ("--queries", args.queries), ("--qrels", args.qrels))
    for option, value in inputs:
        if value is not None and not Path(value).exists():
            raise UserError(f"{option}: no such file or folder: {value}")
    data = load_dataset(
        args.data,
        split,
        queries=args.queries,
        qrels=args.qrels,
        limit_docs=args.limit_docs,
        limit_queries=args.limit_queries,
    )
    factory = build_retrievers(args.preset)
    extra = {
        "preset": args.preset,
        "limit_docs": args.limit_docs,
        "limit_queries": args.limit_queries,
    }
    cands = retrieve_candidates(
        factory,
        data,
        args.depth,
        cache_dir=None if args.no_cache else args.cache_dir,
        extra=extra,
        progress=not args.no_progress,
    )
    return data, cands


def _parse_config(value: str):
    from hybrid.engine.config import FusionConfig

    name, sep, path = value.partition("=")
    if not sep:
        name, path = Path(value).stem, value
    return name, FusionConfig.load(path)


def cmd_eval(args: argparse.Namespace) -> int:
    from hybrid.eval import evaluate, format_table, standard_systems

    data, cands = _candidates(args, args.split)
    extra = dict(_parse_config(c) for c in args.config or [])
    systems = standard_systems(cands.names, extra)
    notes = []
    if args.split == "test" and extra:
        notes.append(
            "configs given with --config: if they were tuned on this split, these "
            "scores are optimistic"
        )
    report = evaluate(
        cands,
        data.qrels,
        systems,
        k=args.k,
        baseline="rrf" if "rrf" in systems else None,
        test=args.test,
        run_dir=args.run_dir,
        notes=notes,
        backend=args.metrics_backend,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(format_table(report))
        if args.run_dir:
            print(f"\nTREC run files written to {args.run_dir}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from hybrid.eval.tuning import SMALL_SPACE, SearchSpace, tune

    train, c_train = _candidates(args, args.train_split)
    test = c_test = None
    if args.test_split:
        if args.test_split == args.train_split:
            raise ValueError("--test-split equals --train-split: use --folds (cross-validation)")
        test, c_test = _candidates(args, args.test_split)
    space = SMALL_SPACE if args.space == "small" else SearchSpace()
    result = tune(
        c_train,
        train.qrels,
        c_test,
        None if test is None else test.qrels,
        strategy=args.strategy,
        space=space,
        folds=args.folds,
        n_trials=args.trials,
        seed=args.seed,
        progress=not args.no_progress,
    )
    if args.out:
        result.config.save(args.out)
    if args.json:
        payload = result.to_dict()
        payload["saved_to"] = args.out
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        where = (
            f"tuned on '{args.train_split}', held out: '{args.test_split}'"
            if args.test_split
            else f"tuned on '{args.train_split}', {args.folds}-fold CV"
        )
        print(f"{train.name}: {where}")
        print(result.summary())
        if args.out:
            print(f"configuration saved to {args.out} (use: hybrid eval ... --config {args.out})")
    return 0


def add_commands(subparsers: Any) -> None:
    """Add ``eval`` and ``tune`` to the ``hybrid`` command's subparsers."""
    ev = subparsers.add_parser(
        "eval",
        help="score retrievers and fusions on a BEIR folder (one table)",
        description="Each retriever alone, RRF, weighted min-max and any --config, one table.",
    )
    _common(ev)
    ev.add_argument("--split", default="test", help="qrels split (default: test)")
    ev.add_argument(
        "--config",
        action="append",
        metavar="[NAME=]FILE",
        help="a saved FusionConfig to evaluate too (repeatable)",
    )
    ev.add_argument("--k", type=positive_int, default=100, help="fused results kept per query")
    ev.add_argument(
        "--test",
        default="t-test",
        choices=["t-test", "bootstrap", "randomization"],
        help="paired significance test against RRF",
    )
    ev.add_argument("--run-dir", default=None, help="write TREC run files here")
    ev.set_defaults(func=cmd_eval)

    tu = subparsers.add_parser(
        "tune",
        help="tune fusion method, weights, RRF k and depth on a train split",
        description="Tune on --train-split; score on --test-split, or by k-fold CV without one.",
    )
    _common(tu)
    tu.add_argument("--train-split", default="train")
    tu.add_argument("--test-split", default=None, help="held-out split (omit for CV)")
    tu.add_argument("--strategy", default="grid", choices=["grid", "optuna"])
    tu.add_argument("--trials", type=positive_int, default=100, help="optuna trials")
    tu.add_argument(
        "--folds", type=positive_int, default=5, help="CV folds when there is no test split"
    )
    tu.add_argument("--space", default="default", choices=["default", "small"])
    tu.add_argument("--seed", type=int, default=0)
    tu.add_argument("--out", default=None, help="save the chosen FusionConfig (JSON) here")
    tu.set_defaults(func=cmd_tune)
