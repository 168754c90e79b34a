"""Evaluation and tuning: datasets, cached candidates, metrics, significance, runs, reports.

The workflow is *retrieve once, fuse many times*:

>>> data = load_dataset("../shared/data/scifact", split="test")
>>> cands = retrieve_candidates(retrievers, data, depth=1000, cache_dir="runs/cache")
>>> report = evaluate(cands, data.qrels, {"rrf": FusionConfig("rrf"), "bm25": "bm25"})
>>> print(format_table(report))

Modules: :mod:`~hybrid.eval.datasets` (BEIR folders and files), :mod:`~hybrid.eval.candidates`
(retrieval to a depth, cached), :mod:`~hybrid.eval.metrics` (ranx, and the one fast nDCG),
:mod:`~hybrid.eval.stats` (paired tests and intervals, by scipy), :mod:`~hybrid.eval.runs`
(TREC runs, by ranx), :mod:`~hybrid.eval.reports` (systems side by side),
:mod:`~hybrid.eval.tuning` (grid / optuna search, cross-validation).
"""

from hybrid.engine.candidates import Candidates, CandidateSet
from hybrid.eval.candidates import (
    cached_encode,
    candidates_meta,
    encode_with_progress,
    retrieve_candidates,
    retriever_spec,
)
from hybrid.eval.datasets import (
    Dataset,
    load_dataset,
    precomputed_encodings,
    read_qrels_any,
    read_queries_any,
)
from hybrid.eval.metrics import (
    DEFAULT_METRICS,
    METRIC_BACKENDS,
    FastNDCG,
    Qrels,
    Run,
    ndcg_at_k,
    numpy_metrics,
    per_query_metrics,
)
from hybrid.eval.reports import (
    EvalReport,
    SystemScores,
    evaluate,
    format_table,
    standard_systems,
)
from hybrid.eval.runs import arrays_to_run, read_trec_run, write_trec_run
from hybrid.eval.stats import PairedTest, bootstrap_ci, paired_test

__all__ = [
    "DEFAULT_METRICS",
    "METRIC_BACKENDS",
    "CandidateSet",
    "Candidates",
    "Dataset",
    "EvalReport",
    "FastNDCG",
    "PairedTest",
    "Qrels",
    "Run",
    "SystemScores",
    "arrays_to_run",
    "bootstrap_ci",
    "cached_encode",
    "candidates_meta",
    "encode_with_progress",
    "evaluate",
    "format_table",
    "load_dataset",
    "ndcg_at_k",
    "numpy_metrics",
    "paired_test",
    "per_query_metrics",
    "precomputed_encodings",
    "read_qrels_any",
    "read_queries_any",
    "read_trec_run",
    "retrieve_candidates",
    "retriever_spec",
    "standard_systems",
    "write_trec_run",
]
