"""Tuning: the fast fusion path agrees with fusion.fuse_padded, searches find the obvious best,
cross-validation is honest, and configs round-trip through ``hybrid tune`` -> ``hybrid eval``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybrid.engine.config import FusionConfig
from hybrid.eval import CandidateSet
from hybrid.eval.tuning import (
    SMALL_SPACE,
    FusionTable,
    Objective,
    SearchSpace,
    grid_configs,
    search,
    sweep,
    tune,
)


def random_candidates(nq=30, depth=25, n_docs=150, seed=0) -> CandidateSet:
    rng = np.random.default_rng(seed)
    ids, scores = {}, {}
    for name in ("a", "b", "c"):
        i = np.stack([rng.permutation(n_docs)[:depth] for _ in range(nq)]).astype(np.int64)
        s = np.sort(rng.random((nq, depth)), axis=1)[:, ::-1].astype(np.float32) * 10
        i[0, -4:], s[0, -4:] = -1, -np.inf  # a short list
        ids[name], scores[name] = i, s
    return CandidateSet.from_arrays(
        [f"q{i}" for i in range(nq)], [f"d{i}" for i in range(n_docs)], ids, scores
    )


@pytest.mark.parametrize(
    "cfg",
    [
        FusionConfig("rrf", {"a": 1, "b": 0.5, "c": 0.2}, None, 60, 20),
        FusionConfig("rrf", {}, None, 5, 25),
        FusionConfig("wsum", {"a": 1, "b": 0, "c": 0.3}, "minmax", 60, 25),
        FusionConfig("wsum", {"a": 0.2, "b": 1}, "zscore", 60, 10),
        FusionConfig("wsum", {}, None, 60, 1),  # one hit per list: degenerate min-max
    ],
)
def test_fast_table_matches_fusion_library(cfg):
    cands = random_candidates()
    fast = FusionTable(cands).top(cfg, 10)
    reference, _ = cands.fused_arrays(cfg, 10)
    np.testing.assert_array_equal(fast, reference)


def synthetic_problem(n_queries=40, n_docs=120, seed=3):
    """'good' ranks the relevant doc near the top, 'noise' is random, 'bad' buries it."""
    rng = np.random.default_rng(seed)
    depth = 30
    ids = {n: np.zeros((n_queries, depth), np.int64) for n in ("good", "noise", "bad")}
    scores = {n: np.zeros((n_queries, depth), np.float32) for n in ids}
    qrels = {}
    for q in range(n_queries):
        rel = int(rng.integers(n_docs))
        qrels[f"q{q}"] = {f"d{rel}": 1}
        others = rng.permutation(np.setdiff1d(np.arange(n_docs), [rel]))
        for name, pos in (("good", int(rng.integers(0, 3))), ("noise", None), ("bad", depth - 1)):
            order = others[:depth].copy() if name != "noise" else rng.permutation(n_docs)[:depth]
            if pos is not None:
                order[pos] = rel
            ids[name][q] = order
            scores[name][q] = np.linspace(1, 0, depth) + rng.random(depth) * 1e-3
            scores[name][q] = np.sort(scores[name][q])[::-1]
    cands = CandidateSet.from_arrays(list(qrels), [f"d{i}" for i in range(n_docs)], ids, scores)
    return cands, qrels


GOOD_ONLY = FusionConfig("rrf", {"good": 1.0, "noise": 0.0, "bad": 0.0})


def test_grid_finds_obviously_best_weights():
    cands, qrels = synthetic_problem()
    trials = search(cands, qrels, "grid", SMALL_SPACE)
    best = trials[0].config
    w = {n: best.weights.get(n, 1.0) for n in cands.names}
    assert w["good"] > 0 and w["good"] >= w["noise"] and w["good"] >= w["bad"]
    assert w["bad"] <= 0.25 * w["good"]
    good_alone = Objective(cands, qrels)(GOOD_ONLY)
    assert trials[0].score == pytest.approx(good_alone) and trials[0].score > trials[-1].score


def test_optuna_finds_good_weights():
    pytest.importorskip("optuna")
    cands, qrels = synthetic_problem()
    trials = search(cands, qrels, "optuna", SMALL_SPACE, n_trials=30, seed=0)
    assert trials[0].score >= 0.95 * Objective(cands, qrels)(GOOD_ONLY)
    w = trials[0].config.weights
    assert w["good"] > w["bad"]


def test_tune_with_split_and_cv_are_honest():
    cands, qrels = synthetic_problem(n_queries=60)
    train, test = cands.subset(np.arange(40)), cands.subset(np.arange(40, 60))
    result = tune(train, qrels, test, qrels, space=SMALL_SPACE)
    assert result.heldout_mode == "split"
    assert result.heldout_score == pytest.approx(Objective(test, qrels)(GOOD_ONLY))
    lo, hi = result.heldout_ci
    assert lo <= result.heldout_score <= hi
    assert set(result.baselines) >= {"good", "noise", "bad", "rrf", "minmax-sum", "adaptive"}
    assert result.heldout_score > result.baselines["rrf"]
    cv = tune(cands, qrels, folds=4, space=SMALL_SPACE)
    assert cv.heldout_mode == "cv-4" and len(cv.fold_configs) == 4
    assert not np.isnan(cv.heldout_per_query).any()  # every query scored once, held out
    json.dumps(cv.to_dict())  # serialisable
    with pytest.raises(ValueError, match="folds"):
        tune(cands, qrels, folds=1, space=SMALL_SPACE)


def test_grid_dedups_scaled_weights_and_caps_depth():
    configs = grid_configs(
        ["a", "b"],
        SearchSpace(methods=("wsum:minmax",), weights=(0, 0.5, 1), depths=(10, 5000)),
        max_depth=100,
    )
    weights = {tuple(c.weights.values()) for c in configs}
    assert ((0.5, 0.5) in weights) != ((1.0, 1.0) in weights)  # equal up to scale: one kept
    assert (0.0, 0.0) not in weights and len(weights) == 5
    assert {c.depth for c in configs} == {10, 100}


def test_sweep_and_objective_count():
    cands, qrels = synthetic_problem()
    values = sweep(
        cands,
        qrels,
        FusionConfig("wsum", {"good": 1.0, "noise": 1.0, "bad": 1.0}),
        "weight:bad",
        [0.0, 1.0, 4.0],
    )
    assert values[0] > values[2]
    ks = sweep(cands, qrels, FusionConfig("rrf"), "rrf_k", [1, 60])
    assert ks.shape == (2,)
    obj = Objective(cands, qrels)
    obj(FusionConfig("rrf"))
    assert obj.calls == 1


def test_cli_tune_then_eval_with_config(scifact_dir, tmp_path, capsys):
    from hybrid.cli import main

    common = [
        str(scifact_dir),
        "--preset",
        "lexical",
        "--limit-docs",
        "150",
        "--limit-queries",
        "30",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
    ]
    out = tmp_path / "tuned.json"
    assert (
        main(
            [
                "tune",
                *common,
                "--train-split",
                "train",
                "--test-split",
                "test",
                "--space",
                "small",
                "--out",
                str(out),
                "--json",
            ]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert payload["heldout"]["mode"] == "split" and payload["saved_to"] == str(out)
    cfg = FusionConfig.load(out)
    assert cfg == FusionConfig.from_dict(payload["config"])
    assert main(["eval", *common, "--config", f"tuned={out}", "--metrics-backend", "numpy"]) == 0
    table = capsys.readouterr().out
    assert "| tuned |" in table and "optimistic" in table
    assert main(["tune", *common, "--train-split", "test", "--test-split", "test"]) == 2


def test_tuning_accepts_the_adaptive_default():
    """The engine's default ("adaptive") can be scored and searched like any other method; it
    is fused through fusion/ on candidates kept to its stats_depth, with their evidence."""
    from hybrid.engine.config import DEFAULT_CONFIG
    from hybrid.eval import FastNDCG

    cands, qrels = synthetic_problem(n_queries=20)
    cands.evidence = {"good": np.ones(20), "noise": np.zeros(20), "bad": np.full(20, 0.5)}
    cfg = DEFAULT_CONFIG.replace(depth=10)
    expected = FastNDCG(cands.query_ids, cands.doc_ids, qrels)(cands.fused_arrays(cfg, 10)[0])
    assert Objective(cands, qrels)(cfg) == pytest.approx(float(np.nanmean(expected)))
    # depth 10 of 30 cached: the statistics still use all 30 candidates of each list
    shallow = cands.truncated(10)
    assert not np.array_equal(cands.fused_arrays(cfg, 10)[1], shallow.fused_arrays(cfg, 10)[1])
    space = SearchSpace(methods=("adaptive",), weights=(0.0, 1.0), depths=(10,))
    trials = search(cands, qrels, "grid", space)
    assert len(trials) == 7 and all(t.config.method == "adaptive" for t in trials)
