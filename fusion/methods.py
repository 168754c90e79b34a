"""Fusion methods: one pure function each, on documents already aligned across lists.

Inputs are the aligned matrices built by :mod:`fusion._core` (one row per document of the union,
one column per input list): ``ranks`` ``(n, L)`` int, 1-based, 0 where the document is absent
from that list; ``normalized`` ``(n, L)`` float, NaN where absent; ``weights`` ``(L,)``, or
``(n, L)`` for a weight per document row (per-query weights, broadcast to each query's rows).

Every function returns ``(terms, contributions)``: ``terms`` is the per-list value before
weighting (what :class:`fusion.FusionResult` reports as ``normalized``), ``contributions`` the
weighted per-list share of the fused score. **For every method the fused score is exactly
``contributions.sum(axis=1)``** (summed left to right over lists), so explanations always add up.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._kernels import TERM_ISR, TERM_RRF, TERM_VALUE, contributions_of, terms_of
from ._scale import scale_rows
from ._validate import check_real, matrix, rank_matrix, real_array, weights_arg

__all__ = [
    "PER_LIST",
    "PerList",
    "adaptive",
    "adaptive_weights",
    "borda",
    "combanz",
    "combmax",
    "combmin",
    "combmnz",
    "combsum",
    "isr",
    "isr_term",
    "per_list_contributions",
    "rrf",
    "rrf_term",
    "wsum",
]

Pair = tuple[np.ndarray, np.ndarray]


def _w(weights: np.ndarray | None, n_lists: int) -> np.ndarray:
    return np.ones(n_lists) if weights is None else weights_arg(weights, n_lists)


def _ranks_from_1(ranks: np.ndarray) -> np.ndarray:
    r = real_array(ranks, "ranks")
    if r.size and not np.all(r >= 1):
        raise ValueError(f"ranks must be >= 1 (1 = best), got {r[~(r >= 1)][:3].tolist()}")
    return r


def _present_count(present: np.ndarray) -> np.ndarray:
    return present.sum(axis=1, keepdims=True)


def rrf_term(ranks: np.ndarray, k: float = 60.0) -> np.ndarray:
    """The RRF per-list term ``1 / (k + rank)`` (element-wise; ranks from 1)."""
    r = _ranks_from_1(ranks)
    return _elementwise(TERM_RRF, r, check_real(k, "k", lo=0.0))


def isr_term(ranks: np.ndarray) -> np.ndarray:
    """The ISR per-list term ``1 / rank**2`` (element-wise; ranks from 1)."""
    return _elementwise(TERM_ISR, _ranks_from_1(ranks), 0.0)


def _elementwise(kind: int, values: np.ndarray, k: float) -> np.ndarray:
    flat = np.ascontiguousarray(values, dtype=np.float64).ravel()
    out = terms_of(kind, flat, k).reshape(np.shape(values))
    return out[()] if out.ndim == 0 else out  # a scalar for a scalar, as numpy gives


class PerList(NamedTuple):
    """A method whose fused score is a sum over lists of one weighted term per list:
    ``score = m**count_power * sum_j w_j * term_j`` with ``m`` the number of lists holding the
    document (absent documents add nothing and are not counted).

    ``uses`` is ``"rank"`` (``term`` maps 1-based ranks to terms) or ``"score"`` (the term is the
    normalised score itself). ``term`` is one of :data:`fusion._kernels.TERM_VALUE`,
    ``TERM_RRF``, ``TERM_ISR``. This table is the one definition of these methods: the
    per-method functions below, :func:`fusion.fuse_padded` and :class:`fusion.FusionTable` all
    apply it through the compiled :mod:`fusion._kernels` (:func:`per_list_contributions`).
    """

    uses: str
    term: int
    count_power: int


PER_LIST: dict[str, PerList] = {
    "rrf": PerList("rank", TERM_RRF, 0),
    "isr": PerList("rank", TERM_ISR, 1),
    "wsum": PerList("score", TERM_VALUE, 0),
    "combsum": PerList("score", TERM_VALUE, 0),
    "combmnz": PerList("score", TERM_VALUE, 1),
    "combanz": PerList("score", TERM_VALUE, -1),
    "adaptive": PerList("score", TERM_VALUE, 0),
}
"""Methods with one term per list (see :class:`PerList`); the others need the whole row."""


def per_list_contributions(
    method: str, values: np.ndarray, weights: np.ndarray | float, m: np.ndarray | None, k: float
) -> Pair:
    """``(terms, contributions)`` of present entries only (any shape, broadcast together).

    ``values``: ranks (rank methods) or normalised scores (score methods) of present entries;
    ``weights``: the weight of each entry's list; ``m``: the number of lists holding each
    entry's document (only read when the method's ``count_power`` is not 0).
    """
    spec = PER_LIST[method]
    if spec.term == TERM_VALUE:
        terms = values
    else:
        k = check_real(k, "k", lo=0.0) if spec.term == TERM_RRF else 0.0
        terms = _elementwise(spec.term, real_array(values, "ranks"), k)
    parts = [terms, weights] if spec.count_power == 0 else [terms, weights, m]
    shape = np.broadcast_shapes(*(np.shape(p) for p in parts))
    t, w, mm = (
        np.ascontiguousarray(np.broadcast_to(np.asarray(p, dtype=np.float64), shape)).ravel()
        for p in (terms, weights, 0.0 if m is None else m)
    )
    return terms, contributions_of(t, w, mm, spec.count_power).reshape(shape)


def _aligned(method: str, x: np.ndarray, weights: np.ndarray | None, k: float = 60.0) -> Pair:
    """:func:`per_list_contributions` on aligned ``(n, L)`` matrices (absent: 0 rank / NaN)."""
    x = rank_matrix(x) if PER_LIST[method].uses == "rank" else matrix(x, "normalized")
    present = x > 0 if PER_LIST[method].uses == "rank" else ~np.isnan(x)
    fill = 1 if PER_LIST[method].uses == "rank" else 0.0
    m = _present_count(present)
    terms, contrib = per_list_contributions(
        method, np.where(present, x, fill), _w(weights, x.shape[1]), m, k
    )
    return np.where(present, terms, np.nan), np.where(present, contrib, 0.0)


def rrf(ranks: np.ndarray, weights: np.ndarray | None = None, k: float = 60.0) -> Pair:
    """Reciprocal rank fusion: ``sum_j w_j / (k + rank_j)`` over the lists holding the document.

    Source: Cormack, Clarke & Buettcher 2009, "Reciprocal rank fusion outperforms Condorcet and
    individual rank learning methods", SIGIR. ``k = 60`` as in the paper; ranks from 1; an
    absent document adds nothing for that list. Weighted form as in Elasticsearch/Vespa's
    weighted RRF. Terms: :func:`rrf_term`.
    """
    return _aligned("rrf", ranks, weights, k)


def isr(ranks: np.ndarray, weights: np.ndarray | None = None) -> Pair:
    """Inverse square rank: ``m * sum_j w_j / rank_j**2`` with ``m`` lists holding the document.

    Source: Mourao, Martins & Magalhaes 2015, "Multimodal medical information retrieval with
    unsupervised rank fusion", CMIG 39 (ranx ``isr``). Terms: :func:`isr_term`; contributions
    include the factor ``m`` (``w_j / rank_j**2 * m``) so they add up to the score.
    """
    return _aligned("isr", ranks, weights)


def borda(
    ranks: np.ndarray,
    n_candidates: np.ndarray,
    list_sizes: np.ndarray,
    weights: np.ndarray | None = None,
) -> Pair:
    """Borda count: ``sum_j w_j * points_j`` (BordaFuse; ranx ``bordafuse``).

    Source: Aslam & Montague 2001, "Models for metasearch", SIGIR. With ``c`` candidates (the
    union for this query) a document at rank ``r`` of a list gets ``c - r + 1`` points; a
    document the list does not hold gets the average of the points the list left unassigned,
    ``(c - len_j + 1) / 2``. **Exception to the missing-document rule:** absent documents
    therefore contribute a non-zero amount here (their ``terms`` stay NaN). ``n_candidates``
    ``(n,)`` and ``list_sizes`` ``(n, L)`` give ``c`` and ``len_j`` for each document's query.
    """
    ranks = rank_matrix(ranks)
    present = ranks > 0
    c = real_array(n_candidates, "n_candidates")
    sizes = real_array(list_sizes, "list_sizes")
    if c.shape != ranks.shape[:1] or sizes.shape != ranks.shape:
        raise ValueError(
            f"n_candidates must have shape {ranks.shape[:1]} and list_sizes {ranks.shape} "
            f"(those of ranks), got {c.shape} and {sizes.shape}"
        )
    c = c[:, None]
    points = np.where(present, c - ranks + 1.0, (c - sizes + 1.0) / 2.0)
    terms = np.where(present, points, np.nan)
    return terms, _w(weights, ranks.shape[1]) * points


def wsum(normalized: np.ndarray, weights: np.ndarray | None = None) -> Pair:
    """Weighted sum of normalised scores ``sum_j w_j * s_j`` (absent: contributes 0).

    With weights summing to 1 this is the convex combination that Bruch, Gai & Ingber 2023 ("An
    analysis of fusion functions for hybrid retrieval", ACM TOIS) find beats RRF once tuned.
    Weights are used as given (ranx ``wsum``); scaling all of them leaves the ranking unchanged.
    """
    return _aligned("wsum", normalized, weights)


def combsum(normalized: np.ndarray, weights: np.ndarray | None = None) -> Pair:
    """CombSUM: sum of (weighted) normalised scores (Fox & Shaw 1994, "Combination of multiple
    searches", TREC-2). Same arithmetic as :func:`wsum`; kept under its classic name."""
    return _aligned("combsum", normalized, weights)


def combmnz(normalized: np.ndarray, weights: np.ndarray | None = None) -> Pair:
    """CombMNZ: CombSUM times ``m``, the number of lists holding the document (Fox & Shaw 1994).

    Contributions are ``m * w_j * s_j`` so that they add up to the score.
    """
    return _aligned("combmnz", normalized, weights)


def combanz(normalized: np.ndarray, weights: np.ndarray | None = None) -> Pair:
    """CombANZ: CombSUM divided by ``m``, the number of lists holding the document (Fox & Shaw
    1994). Contributions are ``w_j * s_j / m``."""
    return _aligned("combanz", normalized, weights)


def _pick(normalized: np.ndarray, weights: np.ndarray | None, use_max: bool) -> Pair:
    x = matrix(normalized, "normalized")
    if x.shape[1] == 0:
        raise ValueError("normalized must have at least one column (one per list), got none")
    present = ~np.isnan(x)
    vals = _w(weights, x.shape[1]) * np.where(present, x, 0.0)
    fill = -np.inf if use_max else np.inf
    masked = np.where(present, vals, fill)
    best = np.argmax(masked, axis=1) if use_max else np.argmin(masked, axis=1)
    rows = np.arange(x.shape[0])
    contrib = np.zeros_like(vals)
    has_any = present.any(axis=1)
    contrib[rows[has_any], best[has_any]] = vals[rows[has_any], best[has_any]]
    return x, contrib


def combmax(normalized: np.ndarray, weights: np.ndarray | None = None) -> Pair:
    """CombMAX: the largest weighted normalised score over the lists holding the document.

    Source: Fox & Shaw 1994. Contributions: the winning list (the first one on ties) carries the
    whole score, the others 0.
    """
    return _pick(normalized, weights, use_max=True)


def combmin(normalized: np.ndarray, weights: np.ndarray | None = None) -> Pair:
    """CombMIN: the smallest weighted normalised score over the lists holding the document.

    Source: Fox & Shaw 1994. Contributions: the deciding list (first on ties) carries the score.
    """
    return _pick(normalized, weights, use_max=False)


def adaptive_weights(weights: np.ndarray | None, evidence: np.ndarray) -> np.ndarray:
    """Per-query weights of :func:`adaptive`: ``w[q, j] = weights[j] * evidence[q, j]``.

    ``weights``: ``(L,)`` or ``(n_queries, L)`` non-negative (None: all 1); ``evidence``:
    ``(n_queries, L)`` in [0, 1], how much signal list ``j`` can carry for query ``q`` (e.g. the
    share of the query's terms an index knows). A query where no list keeps a positive weight
    (no evidence anywhere) falls back to ``weights`` unchanged: with nothing to prefer one list
    over another, the lists are combined as configured rather than dropped.
    """
    e = real_array(evidence, "evidence")
    if e.ndim not in (1, 2) or not np.all((e >= 0) & (e <= 1)):
        raise ValueError(
            f"evidence must be a (n_queries, n_lists) array of values in [0, 1], got shape "
            f"{e.shape}" + ("" if e.ndim not in (1, 2) else f", values {e.ravel()[:3].tolist()}")
        )
    w = _w(weights, e.shape[-1])
    if w.ndim == 2 and w.shape != e.shape:
        raise ValueError(f"weights of shape {w.shape} do not match evidence of shape {e.shape}")
    return scaled_weights(w, e)


def scaled_weights(w: np.ndarray, e: np.ndarray) -> np.ndarray:
    """:func:`adaptive_weights` of checked float64 arrays (what :func:`fusion.fuse_padded`
    calls after checking its arguments)."""
    base = np.broadcast_to(w, e.shape)  # (refuses shapes that do not match)
    if e.size == 0:
        return base * e
    rows = e.shape[-1] if e.ndim else 1
    out, _, _ = scale_rows(base.reshape(-1, rows), e.reshape(-1, rows))
    return out.reshape(e.shape)


def adaptive(
    normalized: np.ndarray, weights: np.ndarray | None = None, evidence: np.ndarray | None = None
) -> Pair:
    """Evidence-weighted sum: ``sum_j weights[j] * evidence[j] * s_j`` (absent: contributes 0).

    A weighted CombSUM (Fox & Shaw 1994) whose weights are scaled per query by each list's
    evidence (:func:`adaptive_weights`; ``evidence`` here ``(n, L)`` per document row, or None
    when the weights already include it). The engine's default: scores are z-scored
    (``(s - mean) / std``, "ZMUV" of Montague & Aslam 2001, "Relevance score normalization for
    metasearch", CIKM) with statistics over a list retrieved deeper than it is fused, so a list
    whose best documents stand far out of its own score distribution counts more for that
    query, and a list that cannot read the query (evidence 0) counts not at all.
    """
    x = matrix(normalized, "normalized")
    w = _w(weights, x.shape[1]) if evidence is None else adaptive_weights(weights, evidence)
    return _aligned("adaptive", x, w)
