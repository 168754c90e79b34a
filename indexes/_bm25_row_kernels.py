"""Numba kernels that score chosen documents of a BM25 segment only (private): the rows a
selective filter allows, or the candidates that a search right after a write scores exactly.
Same arithmetic, order and heap as :mod:`indexes._bm25_kernels`, so scores are bit-identical."""

from __future__ import annotations

import numpy as np
from numba import njit

from indexes._bm25_kernels import _block_end, _qt, _span
from indexes._topk import offer, pop_into


@njit(cache=True, nogil=True, error_model="numpy")
def allowed_rows(allowed):
    """Positions of the nonzero entries of a uint8 mask, ascending (int32); skips zero 8-byte
    words, so a sparse mask costs about one load per 8 entries."""
    n = allowed.shape[0]
    rows = np.empty(n, dtype=np.int32)
    m = 0
    n8 = n // 8
    words = allowed[: n8 * 8].view(np.uint64)
    for wi in range(n8):
        if words[wi] != 0:
            b = wi * 8
            for j in range(8):
                rows[m] = b + j
                m += allowed[b + j] != 0
    for i in range(n8 * 8, n):
        rows[m] = i
        m += allowed[i] != 0
    return rows[:m]


@njit(cache=True, nogil=True, error_model="numpy")
def search_allowed(
    indptr,
    docs,
    tfs,
    imp,
    dn,
    w,
    c,
    bm25l,
    absent,
    q_indptr,
    q_terms,
    k,
    acc,
    allowed,
    rows,
    gallop_ratio,
):
    """Top-k per query over the few documents ``rows`` (ascending local ids, those ``allowed``
    marks) when every contribution is > 0: same contract and results as
    :func:`search_positive` with ``allowed``. A query term whose postings outnumber
    ``gallop_ratio`` x the rows is intersected with them by galloping search (cost in
    proportion to the rows, not to the term's postings); a shorter one is walked, skipping
    disallowed documents. Each row's contributions are added in query-term order, as in every
    kernel, so scores are bit-identical. ``acc`` (float32, n_docs) is left clean."""
    n_q = q_indptr.shape[0] - 1
    n_rows = rows.shape[0]
    use_imp = imp.shape[0] == docs.shape[0] and docs.shape[0] > 0
    out_ids = np.full((n_q, k), -1, dtype=np.int64)
    out_scores = np.full((n_q, k), -np.inf, dtype=np.float32)
    hs = np.empty(k, dtype=np.float32)
    hd = np.empty(k, dtype=np.int64)
    for q in range(n_q):
        offset = np.float32(0.0)
        for j in range(q_indptr[q], q_indptr[q + 1]):
            t = q_terms[j]
            offset += absent[t]
            wt = np.float32(w[t])
            lo, hi = _span(indptr, t)
            if hi - lo > gallop_ratio * n_rows:
                p = lo
                for i in range(n_rows):
                    d = rows[i]
                    p = _block_end(docs, p, hi, d)
                    if p >= hi:
                        break
                    if docs[p] == d:
                        if use_imp:
                            acc[d] += imp[p]
                        else:
                            acc[d] += _qt(tfs, p, d, dn, wt, c, bm25l)
            else:
                for p in range(lo, hi):
                    d = docs[p]
                    if allowed[d] != 0:
                        if use_imp:
                            acc[d] += imp[p]
                        else:
                            acc[d] += _qt(tfs, p, d, dn, wt, c, bm25l)
        size = 0
        thr = np.float32(-np.inf)
        for i in range(n_rows):
            d = rows[i]
            r = acc[d]
            if r > 0:  # a hit (every live contribution is > 0; deleted ones add 0)
                acc[d] = 0.0
                s = r + offset
                if size < k or s > thr:  # ascending ids: a tie ranks below the kept hit
                    size = offer(hs, hd, size, k, s, np.int64(d))
                    if size == k:
                        thr = hs[0]
        pop_into(hs, hd, size, out_ids[q], out_scores[q])
    return out_ids, out_scores
