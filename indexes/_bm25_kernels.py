"""Numba kernels behind :class:`indexes.bm25.BM25Index`: segment merging and top-k search.

A segment's postings are term-major CSR arrays: ``indptr`` (segment vocabulary + 1; a term id
past its end has no postings there), ``docs`` (int32 ids local to the segment, ascending within a
term) and ``tfs`` (int32 term frequencies). Scores are computed at query time from the term's
weight ``w`` (its IDF) times :func:`tf_part` of the term frequency and a per-document value
``dn`` (``k1 * length norm``, or the length norm itself for BM25L; negative for a deleted
document, which every kernel skips). Every kernel adds a query's contributions in float32,
per document in query-term order, so all paths give bit-identical scores, and keeps the best
``k`` with a bounded heap (score descending, id ascending).

``search_positive`` serves indexes whose contributions are all > 0 (the usual case): a score
above zero marks a hit, so no per-document "seen" flags are needed. A query with many postings
is scored one document block at a time: the postings of all its terms that fall in the block
are added into a block-sized (cache-resident) accumulator, which is then scanned for the top k
in chunks whose maximum is compared with the current k-th score (a vectorised integer max over
the float bits, valid because scores are non-negative) and cleared. A query with few postings
adds into a collection-sized accumulator and keeps a list of the documents it touched.
``search_batch`` is the general path (contributions that may be zero or negative).
All kernels are single-threaded and release the GIL (``nogil=True``), so searches from several
Python threads run on several cores; each running search needs its own scratch buffers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from indexes._topk import offer, pop_into

CHUNK = 64  # documents per top-k scan chunk; block sizes are multiples of it
BUF = 256  # postings whose query-time contributions are computed in one vectorised pass


@njit(inline="always")
def tf_part(tf, dn, c, bm25l):
    """The term-frequency part of a posting's score (float32); times the term's IDF it is the
    posting's contribution. ``dn`` is the document's value, ``k1 * length norm`` (the norm itself
    for BM25L). Lucene, Okapi and BM25+ share ``tf * c / (tf + dn)`` with ``c`` = 1 (Lucene) or
    ``k1 + 1``; ``bm25l`` is None for them (the branch is pruned when compiled) and ``(k1,
    delta)`` for BM25L. BM25+'s constant ``idf * delta``, which every document gets, is a
    per-query offset."""
    tf = np.float32(tf)
    if bm25l is None:
        return tf * np.float32(c) / (tf + dn)
    # rank_bm25.BM25L multiplies by the raw term frequency once more; kept for parity.
    k1 = np.float32(bm25l[0])
    delta = np.float32(bm25l[1])
    ctd = tf / dn
    return tf * np.float32(c) * (ctd + delta) / (k1 + ctd + delta)


@njit(inline="always")
def _qt(tfs, p, d, dn, wt, c, bm25l):
    """Contribution of posting ``p`` (document ``d``) computed at query time, 0 for a deleted
    document; bit-identical to :func:`impacts`."""
    v = dn[d]
    if v < 0:
        return np.float32(0.0)
    return wt * tf_part(tfs[p], v, c, bm25l)


@njit(cache=True, nogil=True)
def doc_values(doc_len, live, b, k1, avgdl):
    """Each document's value ``dn`` (float32): ``k1 * (1 - b + b * length / avgdl)`` in float64
    (k1 = 1 for BM25L, whose value is the length norm itself), -1 for a deleted document. One
    pass, one array: a write rebuilds it, and numpy's float64 temporaries would evict the
    caches (and fault in fresh pages) that the next search needs."""
    n = doc_len.shape[0]
    out = np.empty(n, dtype=np.float32)
    one_b = 1.0 - b
    for d in range(n):
        if live[d]:
            out[d] = np.float32(k1 * (one_b + b * np.float64(doc_len[d]) / avgdl))
        else:
            out[d] = np.float32(-1.0)
    return out


@njit(inline="always")
def _contribs(docs, tfs, dn, s0, m, wt, c, bm25l, vbuf, pbuf):
    """Contributions of the ``m`` postings from ``s0`` into ``pbuf`` (0 for deleted documents),
    bit-identical to :func:`impacts`: the documents' values are gathered first so that the
    arithmetic runs as one vectorised loop (divisions 8 or 16 at a time)."""
    b_docs = docs[s0 : s0 + m]
    b_tfs = tfs[s0 : s0 + m]
    for i in range(np.uint64(m)):
        vbuf[i] = dn[np.uint32(b_docs[i])]
    for i in range(np.uint64(m)):
        v = vbuf[i]
        part = wt * tf_part(b_tfs[i], v, c, bm25l)
        pbuf[i] = part if v >= 0 else np.float32(0.0)


@njit(inline="always")
def _contrib(tfs, imp, p, d, dn, wt, c, bm25l):
    """Contribution of posting ``p`` (document ``d``), 0 for a deleted document: precomputed in
    ``imp`` when it is not None (the branch is pruned when compiled), else computed."""
    if imp is not None:
        return imp[p]
    v = dn[d]
    if v < 0:
        return np.float32(0.0)
    return wt * tf_part(tfs[p], v, c, bm25l)


@njit(cache=True, nogil=True, error_model="numpy")
def impacts(indptr, docs, tfs, dn, w, c, bm25l):
    """Every posting's contribution for the given statistics (what the search kernels compute
    at query time when no impacts are given, bit-identical); 0 for deleted documents, so only
    :func:`search_positive` (where every live contribution is > 0) takes them."""
    out = np.zeros(docs.shape[0], dtype=np.float32)
    for t in range(indptr.shape[0] - 1):
        wt = np.float32(w[t]) if t < w.shape[0] else np.float32(0.0)
        for p in range(indptr[t], indptr[t + 1]):
            v = dn[docs[p]]
            if v >= 0:
                out[p] = wt * tf_part(tfs[p], v, c, bm25l)
    return out


@njit(inline="always")
def _span(indptr, t):
    """Postings range of term ``t`` in a segment (empty for terms newer than the segment)."""
    if t + 1 < indptr.shape[0]:
        return indptr[t], indptr[t + 1]
    return indptr[0], indptr[0]


@njit(cache=True, nogil=True, error_model="numpy")
def merge(a_ptr, a_docs, a_tfs, a_keep, b_ptr, b_docs, b_tfs, b_keep, b_shift, n_terms):
    """One segment from two adjacent ones: per term, ``a``'s kept postings then ``b``'s (doc ids
    shifted by ``b_shift``), dropping documents whose ``keep`` flag is 0."""
    ptr = np.zeros(n_terms + 1, dtype=np.int64)
    for t in range(n_terms):
        c = 0
        lo, hi = _span(a_ptr, t)
        for p in range(lo, hi):
            c += a_keep[a_docs[p]]
        lo, hi = _span(b_ptr, t)
        for p in range(lo, hi):
            c += b_keep[b_docs[p]]
        ptr[t + 1] = ptr[t] + c
    docs = np.empty(ptr[n_terms], dtype=np.int32)
    tfs = np.empty(ptr[n_terms], dtype=np.int32)
    o = 0
    for t in range(n_terms):
        lo, hi = _span(a_ptr, t)
        for p in range(lo, hi):
            if a_keep[a_docs[p]]:
                docs[o] = a_docs[p]
                tfs[o] = a_tfs[p]
                o += 1
        lo, hi = _span(b_ptr, t)
        for p in range(lo, hi):
            if b_keep[b_docs[p]]:
                docs[o] = b_docs[p] + b_shift
                tfs[o] = b_tfs[p]
                o += 1
    return ptr, docs, tfs


@njit(cache=True, nogil=True, error_model="numpy")
def search_batch(
    indptr, docs, tfs, imp, dn, w, c, bm25l, absent, q_indptr, q_terms, k, acc, seen, touched
):
    """Top-k (ids, scores) for each query; rows padded with -1 / -inf.

    ``q_terms`` holds known term ids (repeats allowed: each occurrence adds once, as rank_bm25
    does); ``w``, ``dn``, ``c`` and ``bm25l`` give the scores (:func:`tf_part`). ``absent[t]``
    is the score every document gets for term ``t`` whether or not it contains it (BM25+ only;
    zeros otherwise): it is added to every hit as a per-query offset.
    ``acc``, ``seen`` and ``touched`` are scratch buffers of the segment's length (n_docs), left
    clean on return.

    A query whose postings are few next to the collection keeps a list of the documents it
    touched; one with many (common on small collections) accumulates branch-free and then scans
    the whole score array, which is faster than tracking first touches.
    """
    n_q = q_indptr.shape[0] - 1
    n_docs = acc.shape[0]
    out_ids = np.full((n_q, k), -1, dtype=np.int64)
    out_scores = np.full((n_q, k), -np.inf, dtype=np.float32)
    hs = np.empty(k, dtype=np.float32)
    hd = np.empty(k, dtype=np.int64)
    for q in range(n_q):
        offset = np.float32(0.0)
        total = 0
        for j in range(q_indptr[q], q_indptr[q + 1]):
            t = q_terms[j]
            offset += absent[t]
            lo, hi = _span(indptr, t)
            total += hi - lo
        size = 0
        thr = np.float32(-np.inf)  # score of the worst kept hit once the heap is full
        if 8 * total >= n_docs:
            for j in range(q_indptr[q], q_indptr[q + 1]):
                t = q_terms[j]
                wt = np.float32(w[t])
                lo, hi = _span(indptr, t)
                for p in range(lo, hi):
                    d = docs[p]
                    if dn[d] < 0:  # deleted
                        continue
                    acc[d] += _contrib(tfs, imp, p, d, dn, wt, c, bm25l)
                    seen[d] = 1
            # Ascending ids: a later doc tying the worst kept score ranks below it, so only a
            # strictly better score enters (the test is cheap and rarely true).
            for d in range(n_docs):
                s = acc[d] + offset
                if s > thr:  # -inf until k hits are kept
                    if seen[d]:
                        size = offer(hs, hd, size, k, s, d)
                        if size == k:
                            thr = hs[0]
            for d in range(n_docs):
                acc[d] = 0.0
                seen[d] = 0
        else:
            n_touched = 0
            for j in range(q_indptr[q], q_indptr[q + 1]):
                t = q_terms[j]
                wt = np.float32(w[t])
                lo, hi = _span(indptr, t)
                for p in range(lo, hi):
                    d = docs[p]
                    if dn[d] < 0:  # deleted
                        continue
                    v = _contrib(tfs, imp, p, d, dn, wt, c, bm25l)
                    if seen[d] == 0:
                        seen[d] = 1
                        touched[n_touched] = d
                        n_touched += 1
                    acc[d] += v
            for i in range(n_touched):
                d = touched[i]
                s = acc[d] + offset
                acc[d] = 0.0
                seen[d] = 0
                if size < k or s >= thr:
                    size = offer(hs, hd, size, k, s, d)
                    if size == k:
                        thr = hs[0]
        pop_into(hs, hd, size, out_ids[q], out_scores[q])
    return out_ids, out_scores


@njit(inline="always")
def _block_end(docs, p, end, hi):
    """First position in ``[p, end)`` whose doc id is >= ``hi`` (ids ascending): gallop, bisect."""
    if p >= end or docs[p] >= hi:
        return p
    below = p  # docs[below] < hi
    step = 1
    while True:
        probe = below + step
        if probe >= end:
            probe = end
            break
        if docs[probe] >= hi:
            break
        below = probe
        step *= 2
    while probe - below > 1:  # docs[below] < hi <= docs[probe] (or probe == end)
        mid = (below + probe) >> 1
        if docs[mid] < hi:
            below = mid
        else:
            probe = mid
    return probe


@njit(inline="always")
def _raw_floor(thr, offset):
    """A raw-score floor ``rt >= 0`` with ``rt + offset <= thr`` in float32 arithmetic.

    Float32 addition is monotone, so no raw score ``r <= rt`` can beat ``thr`` once the offset
    is added and the scan may skip it; the exact ``r + offset > thr`` test still decides the rest.
    The floor sits within a few ulps of ``thr - offset`` (just a filter: lower is only slower).
    """
    if offset == 0:
        return max(thr, np.float32(0.0))
    rt = thr - offset
    step = max(abs(thr) * np.float32(2.0**-22), np.float32(1e-30))
    while rt > 0 and rt + offset > thr:
        rt -= step
        step *= np.float32(2.0)
    return max(rt, np.float32(0.0))


@njit(cache=True, nogil=True, error_model="numpy")
def search_positive(
    indptr,
    docs,
    tfs,
    imp,
    scale,
    dn,
    w,
    c,
    bm25l,
    absent,
    q_indptr,
    q_terms,
    k,
    acc,
    touched,
    allowed,
    block,
    chunk_size,
    sparse_ratio,
):
    """Top-k (ids, scores) per query when every contribution is > 0; rows padded with -1 / -inf.

    Same contract and results as :func:`search_batch`. Contributions come from ``imp`` (the
    precomputed impacts) when it holds one per posting, each times ``scale[t]`` if ``scale``
    is not empty (impacts of older statistics rescaled per term, for a candidate search:
    ``BM25Index._search_stale``; times 1 exactly otherwise), else they are computed at query time
    from ``tfs``, ``w`` and ``dn``: always the same array types, so one
    compiled specialisation serves both (no compilation or cache load on the first search
    after a write). ``allowed`` (uint8 over the segment's documents, or empty: all) restricts
    the hits. ``touched`` (int32, n_docs) and ``acc`` (float32, at least n_docs rounded up to
    ``CHUNK`` and at least ``block``, a multiple of ``CHUNK``) are scratch buffers, zero / left
    clean on return; ``chunk_size`` is ``CHUNK``, passed at run time because a compile-time
    trip count gets the chunk max unrolled instead of vectorised (1.2x slower overall). A query
    with ``sparse_ratio * postings < n_docs`` takes the touched-list path, others the blocked one.
    """
    n_q = q_indptr.shape[0] - 1
    n_docs = touched.shape[0]
    use_imp = imp.shape[0] == docs.shape[0] and docs.shape[0] > 0
    scaled = scale.shape[0] > 0
    masked = allowed.shape[0] > 0
    out_ids = np.full((n_q, k), -1, dtype=np.int64)
    out_scores = np.full((n_q, k), -np.inf, dtype=np.float32)
    hs = np.empty(k, dtype=np.float32)
    hd = np.empty(k, dtype=np.int64)
    bits = acc.view(np.int32)  # non-negative floats order like their int32 bit patterns
    floor_box = np.zeros(1, dtype=np.float32)
    floor_bits = floor_box.view(np.int32)
    max_terms = 0
    for q in range(n_q):
        max_terms = max(max_terms, q_indptr[q + 1] - q_indptr[q])
    cur = np.empty(max_terms, dtype=np.int64)
    vbuf = np.empty(BUF, dtype=np.float32)
    pbuf = np.empty(BUF, dtype=np.float32)
    chunk = np.uint64(chunk_size)
    for q in range(n_q):
        first = q_indptr[q]
        n_terms = q_indptr[q + 1] - first
        offset = np.float32(0.0)
        total = 0
        for j in range(n_terms):
            t = q_terms[first + j]
            offset += absent[t]
            lo, hi = _span(indptr, t)
            total += hi - lo
            cur[j] = lo
        size = 0
        thr = np.float32(-np.inf)  # score of the worst kept hit once the heap is full
        if sparse_ratio * total < n_docs:
            n_touched = 0
            for j in range(n_terms):
                t = q_terms[first + j]
                wt = np.float32(w[t])
                sc = scale[t] if scaled else np.float32(1.0)
                lo, hi = _span(indptr, t)
                for s0 in range(lo, hi, BUF):
                    m = min(BUF, hi - s0)
                    b_docs = docs[s0 : s0 + m]
                    if use_imp:
                        vals = imp[s0 : s0 + m]
                    else:
                        _contribs(docs, tfs, dn, s0, m, wt, c, bm25l, vbuf, pbuf)
                        vals = pbuf
                    for i in range(np.uint64(m)):
                        d = np.uint32(b_docs[i])
                        v = vals[i] * sc if use_imp else vals[i]
                        if v <= 0:  # a deleted document (every live contribution is > 0 here)
                            continue
                        if masked and allowed[d] == 0:
                            continue
                        if acc[d] == 0:  # first touch: every contribution is > 0
                            touched[n_touched] = d
                            n_touched += 1
                        acc[d] += v
            for i in range(n_touched):
                d = touched[i]
                s = acc[d] + offset
                acc[d] = 0.0
                if size < k or s >= thr:
                    size = offer(hs, hd, size, k, s, d)
                    if size == k:
                        thr = hs[0]
            pop_into(hs, hd, size, out_ids[q], out_scores[q])
            continue
        rt = np.float32(0.0)  # raw scores must exceed it: 0 (a hit) until the heap is full
        rt_bits = np.int32(0)
        for lo in range(0, n_docs, block):
            hi = min(lo + block, n_docs)
            base = np.uint32(lo)
            for j in range(n_terms):
                t = q_terms[first + j]
                wt = np.float32(w[t])
                sc = scale[t] if scaled else np.float32(1.0)
                p = cur[j]
                e = _block_end(docs, p, _span(indptr, t)[1], hi)
                seg_docs = docs[p:e]
                up = np.uint64(p)
                # Unsigned indices spare numba's negative-index checks in these hot loops.
                if use_imp:  # precomputed (0 for deleted documents): branch-free
                    for i in range(np.uint64(e - p)):
                        acc[np.uint32(seg_docs[i]) - base] += imp[up + i] * sc
                else:  # computed (0 for deleted documents), BUF postings at a time
                    for s0 in range(p, e, BUF):
                        m = min(BUF, e - s0)
                        _contribs(docs, tfs, dn, s0, m, wt, c, bm25l, vbuf, pbuf)
                        b_docs = docs[s0 : s0 + m]
                        for i in range(np.uint64(m)):
                            acc[np.uint32(b_docs[i]) - base] += pbuf[i]
                cur[j] = e
            # Ascending ids: a later doc tying the worst kept score ranks below it, so only a
            # strictly better score enters. Chunks past the block's end hold zeros.
            for c0 in range(np.uint64(0), np.uint64(hi - lo), chunk):
                top = np.int32(0)
                for i in range(c0, c0 + chunk):
                    top = max(top, bits[i])
                if top > rt_bits:  # disallowed documents are no hits
                    for i in range(c0, c0 + chunk):
                        r = acc[i]
                        if r > rt and (not masked or allowed[lo + np.int64(i)] != 0):
                            s = r + offset
                            if s > thr:
                                size = offer(hs, hd, size, k, s, lo + np.int64(i))
                                if size == k:
                                    thr = hs[0]
                                    rt = _raw_floor(thr, offset)
                                    floor_box[0] = rt
                                    rt_bits = floor_bits[0]
                if top > 0:
                    for i in range(c0, c0 + chunk):
                        acc[i] = 0.0
        pop_into(hs, hd, size, out_ids[q], out_scores[q])
    return out_ids, out_scores


@njit(cache=True, nogil=True, error_model="numpy")
def merge_top(a_ids, a_scores, b_ids, b_scores, k):
    """Top-k rows of two results over disjoint documents, each row sorted best first (score
    descending, id ascending) and padded with -1 / -inf: a linear merge per row."""
    n_q = a_ids.shape[0]
    out_ids = np.full((n_q, k), -1, dtype=np.int64)
    out_scores = np.full((n_q, k), -np.inf, dtype=np.float32)
    na, nb = a_ids.shape[1], b_ids.shape[1]
    for q in range(n_q):
        i = 0
        j = 0
        for o in range(k):
            ta = i < na and a_ids[q, i] >= 0
            tb = j < nb and b_ids[q, j] >= 0
            if ta and tb:
                sa, sb = a_scores[q, i], b_scores[q, j]
                ta = sa > sb or (sa == sb and a_ids[q, i] < b_ids[q, j])
                tb = not ta
            if ta:
                out_ids[q, o] = a_ids[q, i]
                out_scores[q, o] = a_scores[q, i]
                i += 1
            elif tb:
                out_ids[q, o] = b_ids[q, j]
                out_scores[q, o] = b_scores[q, j]
                j += 1
            else:
                break
    return out_ids, out_scores
