"""Evaluation: metrics against hand-worked values and ranx, candidate cache, significance, CLI."""

from __future__ import annotations

import json
import math
from typing import ClassVar

import numpy as np
import pytest

from hybrid.engine.config import FusionConfig
from hybrid.engine.retrievers import BM25Retriever
from hybrid.eval import (
    CandidateSet,
    Dataset,
    FastNDCG,
    bootstrap_ci,
    evaluate,
    format_table,
    load_dataset,
    ndcg_at_k,
    paired_test,
    per_query_metrics,
    read_qrels_any,
    read_trec_run,
    retrieve_candidates,
    standard_systems,
    write_trec_run,
)

QRELS = {"q1": {"d1": 1, "d3": 2}, "q2": {"d2": 1}}
RUN = {
    "q1": {"d1": 0.9, "d2": 0.8, "d3": 0.7},  # rel at ranks 1 (gain 1) and 3 (gain 2)
    "q2": {"d1": 0.5, "d3": 0.4, "d4": 0.3},  # nothing relevant retrieved
}


RANX_SLOW = pytest.mark.slow  # ranx JIT-compiles its metrics with numba on first use (~10 s idle,
# minutes on a loaded 2-core machine); the numpy backend is checked against it here


@pytest.mark.parametrize("backend", ["numpy", pytest.param("ranx", marks=RANX_SLOW)])
def test_metrics_hand_worked(backend):
    if backend == "ranx":
        pytest.importorskip("ranx")
    m = per_query_metrics(QRELS, RUN, ["ndcg@10", "mrr@10", "recall@100", "map@100"], backend)
    dcg = 1 / math.log2(2) + 2 / math.log2(4)
    idcg = 2 / math.log2(2) + 1 / math.log2(3)
    assert m["ndcg@10"] == pytest.approx([dcg / idcg, 0.0])
    assert m["mrr@10"] == pytest.approx([1.0, 0.0])
    assert m["recall@100"] == pytest.approx([1.0, 0.0])
    assert m["map@100"] == pytest.approx([(1 / 1 + 2 / 3) / 2, 0.0])


@RANX_SLOW
def test_metrics_match_ranx_means_and_keep_query_order():
    ranx = pytest.importorskip("ranx")
    rng = np.random.default_rng(0)
    qrels = {
        f"q{i}": {f"d{j}": int(rng.integers(1, 3)) for j in rng.choice(30, 3, replace=False)}
        for i in range(12, 0, -1)
    }  # ids not in sorted order on purpose
    run = {q: {f"d{j}": float(rng.random()) for j in range(30)} for q in qrels}
    metrics = ["ndcg@10", "recall@100", "mrr@10", "map@100", "ndcg@5"]
    ours = per_query_metrics(qrels, run, metrics)
    expected = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), metrics)
    fast = per_query_metrics(qrels, run, metrics, backend="numpy")
    for m in metrics:
        assert ours[m].mean() == pytest.approx(expected[m])
        np.testing.assert_allclose(fast[m], ours[m], atol=1e-9)  # same per-query values
    single = per_query_metrics({"q3": qrels["q3"]}, run, ["ndcg@10"])["ndcg@10"][0]
    assert ours["ndcg@10"][list(qrels).index("q3")] == pytest.approx(single)


def test_fast_ndcg_matches_ranx():
    doc_ids = ["d1", "d2", "d3", "d4"]
    rows = np.array([[0, 1, 2, -1], [0, 2, 3, -1]])
    fast = FastNDCG(["q1", "q2"], doc_ids, QRELS, k=10)(rows)
    ranx_vals = per_query_metrics(QRELS, RUN, ["ndcg@10"], backend="numpy")["ndcg@10"]
    assert fast == pytest.approx(ranx_vals)
    assert ndcg_at_k(rows, ["q1", "q2"], doc_ids, QRELS) == pytest.approx(ranx_vals)


def test_read_qrels_tsv_with_spaces_in_ids_and_trec(tmp_path):
    p = tmp_path / "q.tsv"
    p.write_text("query-id\tcorpus-id\tscore\nq1\tdoc with spaces.pdf - 4\t1\n")
    assert read_qrels_any(p) == {"q1": {"doc with spaces.pdf - 4": 1}}
    t = tmp_path / "q.trec"
    t.write_text("q1 0 d1 2\nq1 0 d2 0\n")
    assert read_qrels_any(t) == {"q1": {"d1": 2, "d2": 0}}


def test_trec_run_round_trip(tmp_path):
    path = write_trec_run(RUN, tmp_path / "r.trec", tag="x")
    lines = path.read_text().splitlines()
    assert lines[0].split() == ["q1", "Q0", "d1", "1", "0.9", "x"]  # ranx writes repr(score)
    assert len(lines) == sum(len(docs) for docs in RUN.values())
    assert read_trec_run(path) == RUN


# -- significance --------------------------------------------------------------------------------


def test_paired_tests_sanity():
    rng = np.random.default_rng(1)
    a = rng.random(200)
    same = paired_test(a, a.copy(), "t-test")
    assert same.p_value == 1.0 and same.diff == 0.0
    better = a + 0.05 + rng.normal(0, 0.01, 200)
    for method in ("t-test", "bootstrap", "randomization"):
        t = paired_test(a, better, method, n_resamples=2000)
        assert t.p_value < 0.01 and t.significant()
        assert t.ci[0] < t.diff < t.ci[1] and t.ci[0] > 0
    noise = a + rng.normal(0, 0.2, 200)
    for method in ("t-test", "randomization"):
        assert paired_test(a, noise, method, n_resamples=2000).p_value > 0.01
    with pytest.raises(ValueError, match="unknown test"):
        paired_test(a, a, "wilcoxon")


def test_bootstrap_ci_covers_mean():
    values = np.linspace(0, 1, 101)
    lo, hi = bootstrap_ci(values, n_resamples=2000)
    assert lo < 0.5 < hi and hi - lo < 0.2


# -- candidate cache -----------------------------------------------------------------------------


class _CountingAnalyzer:
    """Counts the texts that reach the real analyzer (the encoding cache serves the others)."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def analyze_batch(self, texts, *args, **kwargs):
        CountingBM25.calls["analysed"] += len(texts)
        return self.inner.analyze_batch(texts, *args, **kwargs)


class CountingBM25(BM25Retriever):
    calls: ClassVar[dict[str, int]] = {"docs": 0, "queries": 0, "search": 0, "analysed": 0}

    def __init__(self, analyzer):
        super().__init__(analyzer)
        self.analyzer = _CountingAnalyzer(self.analyzer)

    def encode_documents(self, texts):
        CountingBM25.calls["docs"] += 1
        return super().encode_documents(texts)

    def encode_queries(self, texts):
        CountingBM25.calls["queries"] += 1
        return super().encode_queries(texts)

    def search_encoded(self, encoded, k):
        CountingBM25.calls["search"] += 1
        return super().search_encoded(encoded, k)


def tiny_dataset(texts=None) -> Dataset:
    texts = texts or [
        "the cat sat on the mat",
        "dogs chase cats",
        "a bird in the sky",
        "fish swim in water",
        "cats and dogs are pets",
        "the sky is blue",
    ]
    return Dataset(
        name="tiny",
        doc_ids=[f"d{i}" for i in range(len(texts))],
        doc_texts=texts,
        queries={"q1": "cat on a mat", "q2": "blue sky", "q3": "pets dogs"},
        qrels={"q1": {"d0": 1}, "q2": {"d5": 1, "d2": 1}, "q3": {"d4": 2, "d1": 1}},
        split="test",
    )


def factory():
    return {"bm25": CountingBM25("english"), "ws": BM25Retriever("whitespace")}


def test_cache_hit_avoids_retrieval_and_changes_invalidate(tmp_path):
    CountingBM25.calls.update(docs=0, queries=0, search=0, analysed=0)
    data = tiny_dataset()
    n_texts = len(data.doc_texts) + len(data.queries)
    first = retrieve_candidates(factory, data, depth=5, cache_dir=tmp_path, progress=False)
    assert CountingBM25.calls == {"docs": 1, "queries": 1, "search": 1, "analysed": n_texts}
    again = retrieve_candidates(factory, data, depth=5, cache_dir=tmp_path, progress=False)
    assert CountingBM25.calls["search"] == 1  # served from the cache
    for n in first.names:
        np.testing.assert_array_equal(first.ids[n], again.ids[n])
    assert again.meta["depth"] == 5 and "bm25" in again.meta["retrievers"]
    saved = json.loads(next(tmp_path.rglob("candidates-*.json")).read_text())
    assert saved["meta"]["retrievers"]["bm25"]["type"] == "bm25"  # records what produced it
    # a different depth -> new candidates, but document encodings come from their cache
    retrieve_candidates(factory, data, depth=3, cache_dir=tmp_path, progress=False)
    assert CountingBM25.calls["search"] == 2 and CountingBM25.calls["analysed"] == n_texts
    # changed documents -> everything recomputed
    changed = tiny_dataset([t + " x" for t in data.doc_texts])
    retrieve_candidates(factory, changed, depth=5, cache_dir=tmp_path, progress=False)
    assert CountingBM25.calls["analysed"] == n_texts + len(data.doc_texts)  # queries: cached
    assert CountingBM25.calls["search"] == 3


def test_candidates_fuse_like_engine_and_round_trip(tmp_path):
    data = tiny_dataset()
    cands = retrieve_candidates(factory, data, depth=6, progress=False)
    path = cands.save(tmp_path / "c")
    loaded = CandidateSet.load(path)
    cfg = FusionConfig(method="wsum", weights={"bm25": 1.0, "ws": 0.3}, depth=6)
    run = loaded.run(cfg, k=3)
    assert set(run) == {"q1", "q2", "q3"} and all(len(v) <= 3 for v in run.values())
    # the same fusion through the engine API gives the same top ids
    from hybrid import HybridRetriever

    engine = HybridRetriever({"bm25": BM25Retriever("english"), "ws": BM25Retriever("whitespace")})
    engine.add(data.doc_texts, ids=data.doc_ids)
    hits = engine.search(list(data.queries.values()), k=3, config=cfg)
    for qid, h in zip(data.queries, hits, strict=True):
        assert [x.id for x in h] == list(run[qid])
    with pytest.raises(ValueError, match="unknown retrievers"):
        loaded.run(FusionConfig(weights={"nope": 1.0}))


def test_evaluate_table_and_runs(tmp_path):
    data = tiny_dataset()
    cands = retrieve_candidates(factory, data, depth=6, progress=False)
    systems = standard_systems(cands.names, {"mine": FusionConfig("rrf", {"ws": 0.0})})
    report = evaluate(cands, data.qrels, systems, baseline="rrf", run_dir=tmp_path, backend="numpy")
    table = format_table(report)
    names = ["bm25", "ws", "rrf", "minmax-sum", "adaptive", "mine"]
    assert [s.name for s in report.systems] == names
    assert "| system | ndcg@10 | recall@100 | mrr@10 | map@100 |" in table.replace(
        " | Δndcg@10 vs rrf | p", ""
    )
    assert (tmp_path / "rrf.trec").is_file() and (tmp_path / "bm25.trec").is_file()
    # the 'mine' config ignores ws entirely: equal to bm25 alone
    assert report.system("mine").mean("ndcg@10") == pytest.approx(
        report.system("bm25").mean("ndcg@10")
    )
    d = report.to_dict()
    assert d["systems"][0]["scores"]["ndcg@10"] >= 0 and "vs_baseline" in d["systems"][0]


def test_load_dataset_beir_and_limits(scifact_dir):
    data = load_dataset(scifact_dir, "test", limit_docs=50, limit_queries=10)
    assert len(data.queries) == 10 and set(data.qrels) == set(data.queries)
    judged = {d for rels in data.qrels.values() for d in rels}
    assert judged <= set(data.doc_ids) and len(data.doc_ids) <= 50 + len(judged)
    with pytest.raises(FileNotFoundError, match="splits"):
        load_dataset(scifact_dir, "dev")


def test_load_dataset_plain_files(tmp_path):
    (tmp_path / "docs.jsonl").write_text('{"id": "a", "text": "x y"}\n{"id": "b", "text": "z"}\n')
    (tmp_path / "q.tsv").write_text("q1\tfind x\nq2\tunjudged\n")
    (tmp_path / "qrels.tsv").write_text("q1 0 a 1\n")
    data = load_dataset(
        tmp_path / "docs.jsonl", queries=tmp_path / "q.tsv", qrels=tmp_path / "qrels.tsv"
    )
    assert data.queries == {"q1": "find x"} and data.doc_ids == ["a", "b"]
    with pytest.raises(ValueError, match="queries= and qrels="):
        load_dataset(tmp_path / "docs.jsonl")


# -- CLI -----------------------------------------------------------------------------------------


def _cli(argv):
    from hybrid.cli import main

    return main(argv)


def test_cli_eval_table_json_and_runs(scifact_dir, tmp_path, capsys):
    args = [
        str(scifact_dir),
        "--preset",
        "lexical",
        "--limit-docs",
        "200",
        "--limit-queries",
        "25",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
        "--metrics-backend",
        "numpy",
    ]
    assert _cli(["eval", *args, "--run-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| system | ndcg@10 | recall@100 | mrr@10 | map@100")
    assert [line.split("|")[1].strip() for line in lines[1:]] == [
        "bm25",
        "bm25-ws",
        "rrf",
        "minmax-sum",
        "adaptive",
    ]
    assert len(list((tmp_path / "runs").glob("*.trec"))) == 5
    assert _cli(["eval", *args, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["queries"] == 25 and payload["baseline"] == "rrf"
    names = {"bm25", "bm25-ws", "rrf", "minmax-sum", "adaptive"}
    assert {s["name"] for s in payload["systems"]} == names
