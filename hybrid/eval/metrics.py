"""Metrics: per-query values from ranx, and the one fast nDCG that tuning loops call.

:class:`FastNDCG` is the project's only nDCG implementation (linear gain, ranx's definition,
checked against ranx in tests); :func:`per_query_metrics` hands every metric to ranx, or with
``backend="numpy"`` computes nDCG by :class:`FastNDCG` and recall, MRR, MAP and precision in a
few lines of numpy (no numba start-up: what quick runs and notebooks use).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")
"""The metrics of ``hybrid eval``: ranx names (MAP is cut at the fused depth of 100)."""

Qrels = Mapping[str, Mapping[str, int]]
Run = dict[str, dict[str, float]]


def _ranx():
    try:
        import ranx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("evaluation needs ranx: pip install 'splade-hybrid[eval]'") from exc
    return ranx


METRIC_BACKENDS = ("ranx", "numpy")


def per_query_metrics(
    qrels: Qrels, run: Run, metrics: Sequence[str] = DEFAULT_METRICS, backend: str = "ranx"
) -> dict[str, np.ndarray]:
    """Per-query values, in the order of ``qrels`` (queries absent from the run get 0).

    ``backend="ranx"`` (default) computes them with ranx; ``"numpy"`` with
    :func:`numpy_metrics`, the same definitions (tested equal to ranx) without ranx's numba
    start-up cost. Queries without any positive judgement are left out.
    """
    qids = [q for q, rels in qrels.items() if any(v > 0 for v in rels.values())]
    if backend == "numpy":
        ranked = {
            q: [d for d, _ in sorted(run.get(q, {}).items(), key=lambda kv: (-kv[1], kv[0]))]
            for q in qids
        }
        return numpy_metrics(ranked, qrels, metrics, qids)
    if backend != "ranx":
        raise ValueError(f"unknown metrics backend {backend!r}; valid: {METRIC_BACKENDS}")
    ranx = _ranx()
    q = ranx.Qrels({qid: {d: int(v) for d, v in qrels[qid].items()} for qid in qids})
    r = ranx.Run({qid: dict(run.get(qid, {})) or {"__none__": 0.0} for qid in qids})
    scores = ranx.evaluate(q, r, list(metrics), return_mean=False, make_comparable=True)
    if len(metrics) == 1:
        scores = {metrics[0]: scores}
    # ranx sorts queries by id internally; map back to our order
    order = sorted(qids)
    index = {qid: i for i, qid in enumerate(order)}
    pos = np.array([index[qid] for qid in qids], dtype=np.int64)
    return {m: np.asarray(scores[m], dtype=np.float64)[pos] for m in metrics}


def numpy_metrics(
    ranked: Mapping[str, Sequence[str]],
    qrels: Qrels,
    metrics: Sequence[str] = DEFAULT_METRICS,
    query_ids: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """ranx's definitions on ranked doc-id lists: ``ndcg@k`` (linear gain), ``recall@k``,
    ``mrr@k``, ``map@k`` (AP over the relevant count), ``precision@k``; relevant: rel >= 1."""
    qids = list(ranked if query_ids is None else query_ids)
    out = {m: np.zeros(len(qids)) for m in metrics}
    parsed = []
    for m in metrics:
        name, _, cut = m.partition("@")
        if name not in ("ndcg", "recall", "mrr", "map", "precision"):
            raise ValueError(f"numpy backend has no metric {m!r}")
        parsed.append((m, name, int(cut) if cut else None))
    ndcg = _ndcg_of_ranked(ranked, qrels, qids, {cut for _, name, cut in parsed if name == "ndcg"})
    for m, name, cut in parsed:
        if name == "ndcg":
            out[m] = ndcg[cut]
    for i, q in enumerate(qids):
        rels = {d: v for d, v in qrels.get(q, {}).items() if v > 0}
        docs = list(ranked.get(q, []))
        n_rel = len(rels)
        if not n_rel:
            continue
        for m, name, cut in parsed:
            top = docs if cut is None else docs[:cut]
            gains = np.array([rels.get(d, 0) for d in top], dtype=np.float64)
            hit = gains > 0
            if name == "ndcg":
                continue  # FastNDCG, above
            if name == "recall":
                out[m][i] = hit.sum() / n_rel
            elif name == "precision":
                out[m][i] = hit.sum() / cut if cut else hit.mean() if len(hit) else 0.0
            elif name == "mrr":
                first = np.flatnonzero(hit)
                out[m][i] = 1.0 / (first[0] + 1) if first.size else 0.0
            else:  # map
                prec = np.cumsum(hit) / np.arange(1, len(hit) + 1)
                out[m][i] = float(prec[hit].sum()) / n_rel
    return out


def _ndcg_of_ranked(
    ranked: Mapping[str, Sequence[str]], qrels: Qrels, qids: Sequence[str], cuts: set
) -> dict[int | None, np.ndarray]:
    """nDCG at each cut (None: the whole list) of ranked doc-id lists, by :class:`FastNDCG`."""
    if not cuts:
        return {}
    docs = sorted({d for q in qids for d in ranked.get(q, [])})
    index = {d: i for i, d in enumerate(docs)}
    width = max((len(ranked.get(q, [])) for q in qids), default=0)
    rows = np.full((len(qids), max(width, 1)), -1, dtype=np.int64)
    for i, q in enumerate(qids):
        r = [index[d] for d in ranked.get(q, [])]
        rows[i, : len(r)] = r
    out = {}
    for cut in cuts:
        values = FastNDCG(qids, docs, qrels, k=cut or rows.shape[1])(rows)
        out[cut] = np.nan_to_num(values, nan=0.0)
    return out


def ndcg_at_k(
    rows: np.ndarray, query_ids: Sequence[str], doc_ids: Sequence[str], qrels: Qrels, k: int = 10
) -> np.ndarray:
    """Per-query nDCG@k (linear gain, as ranx's ``ndcg``) of fused rows: :class:`FastNDCG` once.

    Queries absent from ``qrels`` or without positive judgements get NaN.
    """
    return FastNDCG(query_ids, doc_ids, qrels, k)(rows)


class FastNDCG:
    """nDCG@k of many candidate fusions of one query set (the tuning objective).

    Precomputes the relevance lookup once (one sorted array of ``(query, document)`` keys);
    ``__call__(rows)`` returns per-query values, vectorised over queries.
    """

    def __init__(self, query_ids: Sequence[str], doc_ids: Sequence[str], qrels: Qrels, k: int = 10):
        self.k = k
        self.query_ids = list(query_ids)
        self.n_docs = len(doc_ids)
        doc_index = {d: i for i, d in enumerate(doc_ids)}
        keys, gains = [], []
        for i, q in enumerate(self.query_ids):
            for d, v in qrels.get(q, {}).items():
                if v > 0 and d in doc_index:
                    keys.append(i * self.n_docs + doc_index[d])
                    gains.append(float(v))
        order = np.argsort(keys)
        self._keys = np.asarray(keys, dtype=np.int64)[order]
        self._gains = np.asarray(gains, dtype=np.float64)[order]
        self.discounts = 1.0 / np.log2(np.arange(2, k + 2))
        ideal = np.full(len(self.query_ids), np.nan)
        for i, q in enumerate(self.query_ids):
            rels = sorted((v for v in qrels.get(q, {}).values() if v > 0), reverse=True)[:k]
            if rels:
                ideal[i] = float(np.dot(rels, self.discounts[: len(rels)]))
        self.ideal = ideal
        self.valid = ~np.isnan(ideal)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)[:, : self.k]
        gains = np.zeros(rows.shape)
        if self._keys.size:
            keys = np.arange(rows.shape[0])[:, None] * self.n_docs + rows
            pos = np.minimum(np.searchsorted(self._keys, keys), self._keys.size - 1)
            hit = (rows >= 0) & (self._keys[pos] == keys)
            gains = np.where(hit, self._gains[pos], 0.0)
        dcg = (gains * self.discounts[: rows.shape[1]]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return dcg / self.ideal
