"""Numba kernels behind :class:`indexes.sparse.SparseIndex` (private).

Layout of one segment (a contiguous range of ``n_docs`` internal ids starting at ``base``), cut
into ``nw = ceil(n_docs / WINDOW)`` windows of ``WINDOW`` consecutive documents:

- **sparse terms**: ``ptr[t * nw + i] .. ptr[t * nw + i + 1]`` are term ``t``'s postings in
  window ``i``: ``docs`` holds each document's offset in its window (uint16, ascending) and
  ``weights`` its weight (uint16 codes or float32), so a posting takes 4 bytes (6 with float32);
- **dense terms**: the most frequent terms are stored as rows ``dense_of[t]`` of ``dense``
  (``n_dense x n_docs``, one weight per document, 0 = absent) and have no sparse postings. A
  row costs ``n_docs * w`` bytes instead of ``df * (2 + w)``; terms are made dense in order of
  document frequency while the segment's postings, rows and ``ptr`` stay within ``4 + w`` bytes
  per posting (the size of a plain 32-bit id + weight posting).

Search is exhaustive and exact, one query at a time, window by window: the window's float32
accumulator (128 KB) stays in the L2 cache, dense rows are added with vectorised loops, sparse
postings are scattered, and the window is scanned for the top k, 64 documents at a time,
skipping blocks with no score above the current k-th best. SPLADE queries are dominated by
frequent terms, so most of their postings take the dense path. The kernels release the GIL
(``nogil=True``): searches from several Python threads run on several cores.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from indexes._topk import offer, pop_into

_CACHE = True
WINDOW = 32768
"""Documents per window: offsets fit in uint16, the float32 accumulator (128 KB) in L2."""
_BLOCK = 64
"""Documents per block of the top-k scan."""


# ---------------------------------------------------------------------------------------------
# building


@njit(cache=_CACHE, nogil=True)
def csr_to_term_major(indptr, indices, codes, dim):
    """Transpose CSR rows (documents) into per-term lists of (local doc, weight), doc-sorted."""
    n_docs = indptr.shape[0] - 1
    counts = np.zeros(dim + 1, np.int64)
    for p in range(indices.shape[0]):
        if codes[p] != 0:
            counts[indices[p] + 1] += 1
    for t in range(dim):
        counts[t + 1] += counts[t]
    docs = np.empty(counts[dim], np.uint32)
    w = np.empty(counts[dim], codes.dtype)
    fill = counts[:dim].copy()
    for d in range(n_docs):
        for p in range(indptr[d], indptr[d + 1]):
            if codes[p] != 0:
                t = indices[p]
                q = fill[t]
                docs[q] = d
                w[q] = codes[p]
                fill[t] = q + 1
    return counts, docs, w


@njit(cache=_CACHE, nogil=True)
def n_windows(n_docs):
    """Windows of a segment of ``n_docs`` documents (at least one)."""
    return max(1, (n_docs + WINDOW - 1) // WINDOW)


@njit(cache=_CACHE, nogil=True)
def split_dense(ptr, docs, w, n_docs, min_share):
    """The segment layout (module docstring) of per-term doc-sorted lists ``ptr, docs, w``.

    Only terms in at least ``n_docs / min_share`` documents may become dense rows: rarer ones
    are quicker to score as postings (about 1.3 ns per posting against 0.12 ns per document of
    a row, measured here). Returns ``(ptr, docs, weights, dense_of, dense)``.
    """
    dim = ptr.shape[0] - 1
    nw = n_windows(n_docs)
    size = w.itemsize
    df = ptr[1:] - ptr[:-1]
    n_post = ptr[dim]
    # bytes left for dense rows: the 4 + w budget minus (2 + w) per posting and the ptr array
    slack = 2 * n_post - 8 * (dim * nw + 1)
    order = np.argsort(-df, kind="mergesort")
    extra = 0  # bytes of the rows chosen so far minus those of the postings they replace
    n_dense = 0
    for r in range(dim):
        extra += n_docs * size - df[order[r]] * (2 + size)
        if df[order[r]] * min_share < n_docs:
            break
        if extra <= slack:
            n_dense = r + 1
    dense_of = np.full(dim, -1, np.int32)
    for r in range(n_dense):
        dense_of[order[r]] = r
    dense = np.zeros((n_dense, n_docs), w.dtype)
    out_ptr = np.zeros(dim * nw + 1, np.int64)
    for t in range(dim):  # count the postings of each (term, window)
        if dense_of[t] < 0:
            for p in range(ptr[t], ptr[t + 1]):
                out_ptr[t * nw + docs[p] // WINDOW + 1] += 1
    for i in range(dim * nw):
        out_ptr[i + 1] += out_ptr[i]
    out_docs = np.empty(out_ptr[dim * nw], np.uint16)
    out_w = np.empty(out_ptr[dim * nw], w.dtype)
    q = 0
    for t in range(dim):  # term-major, window-ascending: the order of the input lists
        c = dense_of[t]
        if c >= 0:
            row = dense[c]
            for p in range(ptr[t], ptr[t + 1]):
                row[docs[p]] = w[p]
        else:
            for p in range(ptr[t], ptr[t + 1]):
                out_docs[q] = docs[p] % WINDOW
                out_w[q] = w[p]
                q += 1
    return out_ptr, out_docs, out_w, dense_of, dense


@njit(cache=_CACHE, nogil=True)
def to_term_major(ptr, docs, w, dense_of, dense, deleted, offset, ratio):
    """Per-term doc-sorted lists of a segment without its deleted docs, ids shifted by ``offset``.

    ``ratio`` rescales quantised weights (1.0 keeps them); weights that become 0 are dropped.
    """
    dim = dense_of.shape[0]
    n_docs = deleted.shape[0]
    nw = n_windows(n_docs)
    rescale = ratio != 1.0
    out_ptr = np.zeros(dim + 1, np.int64)
    out_docs = np.empty(0, np.uint32)
    out_w = np.empty(0, w.dtype)
    for step in range(2):  # count, then fill
        q = 0
        for t in range(dim):
            c = dense_of[t]
            a = 0 if c >= 0 else ptr[t * nw]
            b = n_docs if c >= 0 else ptr[(t + 1) * nw]
            i = 0  # window of sparse posting p
            for p in range(a, b):
                if c >= 0:
                    d = np.int64(p)
                    v = np.float64(dense[c, p])
                else:
                    while p >= ptr[t * nw + i + 1]:
                        i += 1
                    d = np.int64(i) * WINDOW + docs[p]
                    v = np.float64(w[p])
                if v == 0 or deleted[d] != 0:
                    continue
                if rescale:
                    v = min(np.rint(v * ratio), 65535.0)
                    if v == 0:
                        continue
                if step == 1:
                    out_docs[q] = d + offset
                    out_w[q] = v
                q += 1
            out_ptr[t + 1] = q
        if step == 0:
            out_docs = np.empty(q, np.uint32)
            out_w = np.empty(q, w.dtype)
    return out_ptr, out_docs, out_w


@njit(cache=_CACHE, nogil=True)
def concat_term_major(ptr_a, docs_a, w_a, ptr_b, docs_b, w_b):
    """Concatenate two per-term lists (every id of ``b`` is larger than every id of ``a``)."""
    dim = ptr_a.shape[0] - 1
    ptr = ptr_a + ptr_b
    docs = np.empty(ptr[dim], np.uint32)
    w = np.empty(ptr[dim], w_a.dtype)
    for t in range(dim):
        q = ptr[t]
        for p in range(ptr_a[t], ptr_a[t + 1]):
            docs[q] = docs_a[p]
            w[q] = w_a[p]
            q += 1
        for p in range(ptr_b[t], ptr_b[t + 1]):
            docs[q] = docs_b[p]
            w[q] = w_b[p]
            q += 1
    return ptr, docs, w


# ---------------------------------------------------------------------------------------------
# stored vectors


@njit(cache=_CACHE, nogil=True)
def _find(docs, a, b, x):
    """First position in ``docs[a:b]`` (sorted) whose id is >= x."""
    lo = a
    hi = b
    while lo < hi:
        mid = (lo + hi) >> 1
        if docs[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=_CACHE, nogil=True)
def extract_docs(ptr, docs, w, dense_of, dense, n_docs, wanted, by_scan):
    """Stored vectors of the sorted local ids ``wanted``: (row, term, weight) triplets.

    ``by_scan`` reads every posting once (cheaper for many documents) instead of binary
    searching each term's window for each wanted document.
    """
    dim = dense_of.shape[0]
    nw = n_windows(n_docs)
    m = wanted.shape[0]
    row_of = np.full(n_docs if by_scan else 0, -1, np.int64)
    if by_scan:
        for r in range(m):
            row_of[wanted[r]] = r
    rows = np.empty(0, np.int64)
    terms = np.empty(0, np.int64)
    vals = np.empty(0, np.float64)
    for step in range(2):  # count, then fill
        n = 0
        for t in range(dim):
            c = dense_of[t]
            for r in range(m if (c >= 0 or not by_scan) else 0):
                d = np.int64(wanted[r])
                if c >= 0:
                    v = np.float64(dense[c, d])
                else:
                    i = d // WINDOW
                    b = ptr[t * nw + i + 1]
                    pos = _find(docs, ptr[t * nw + i], b, d - i * WINDOW)
                    v = np.float64(w[pos]) if pos < b and docs[pos] == d - i * WINDOW else 0.0
                if v != 0:
                    if step == 1:
                        rows[n] = r
                        terms[n] = t
                        vals[n] = v
                    n += 1
            if c < 0 and by_scan:
                for i in range(nw):
                    for p in range(ptr[t * nw + i], ptr[t * nw + i + 1]):
                        r = row_of[np.int64(i) * WINDOW + docs[p]]
                        if r >= 0:
                            if step == 1:
                                rows[n] = r
                                terms[n] = t
                                vals[n] = w[p]
                            n += 1
        if step == 0:
            rows = np.empty(n, np.int64)
            terms = np.empty(n, np.int64)
            vals = np.empty(n, np.float64)
    return rows, terms, vals


# ---------------------------------------------------------------------------------------------
# search


@njit(cache=_CACHE, inline="always")
def _count_above(acc, b0, b1, thr):
    """How many of ``acc[b0:b1]`` exceed ``thr`` (a loop LLVM vectorises, unlike a max)."""
    c = 0
    for d in range(b0, b1):
        c += acc[d] > thr
    return c


@njit(cache=_CACHE, inline="always")
def _add_rows(acc, dense, rows, weights, j, lo, n):
    """``acc[:n] += sum of weights[j + i] * dense[rows[j + i], lo:lo + n]`` for i < 4."""
    r0 = dense[rows[j], lo : lo + n]
    r1 = dense[rows[j + 1], lo : lo + n]
    r2 = dense[rows[j + 2], lo : lo + n]
    r3 = dense[rows[j + 3], lo : lo + n]
    w0, w1, w2, w3 = weights[j], weights[j + 1], weights[j + 2], weights[j + 3]
    for d in range(n):
        acc[d] += (w0 * np.float32(r0[d]) + w1 * np.float32(r1[d])
                   + w2 * np.float32(r2[d]) + w3 * np.float32(r3[d]))


@njit(cache=_CACHE, inline="always")
def _scatter(acc, docs, w, a, b, q):
    """``acc[docs[x]] += q * w[x]`` for x in a..b-1, unrolled four times."""
    x = a
    while x + 4 <= b:
        d0 = np.int64(docs[x])
        d1 = np.int64(docs[x + 1])
        d2 = np.int64(docs[x + 2])
        d3 = np.int64(docs[x + 3])
        f0 = q * np.float32(w[x])
        f1 = q * np.float32(w[x + 1])
        f2 = q * np.float32(w[x + 2])
        f3 = q * np.float32(w[x + 3])
        acc[d0] += f0
        acc[d1] += f1
        acc[d2] += f2
        acc[d3] += f3
        x += 4
    while x < b:
        acc[np.int64(docs[x])] += q * np.float32(w[x])
        x += 1


@njit(cache=_CACHE, nogil=True)
def _search_one(ptr, docs, w, dense_of, dense, deleted, qt, qw, k, theta_in, acc, out_s, out_i):
    """Exact top-k of one query in one segment; returns the number of hits written.

    ``acc`` is scratch space of ``WINDOW`` floats. ``theta_in`` is a score that k hits of
    earlier (smaller-id) segments reach: nothing below it can enter the top k.
    """
    n_docs = deleted.shape[0]
    nw = n_windows(n_docs)
    nq = qt.shape[0]
    d_rows = np.empty(nq, np.int64)
    d_w = np.empty(nq, np.float32)
    s_at = np.empty(nq, np.int64)
    s_w = np.empty(nq, np.float32)
    nd = 0
    ns = 0
    for i in range(nq):
        t = qt[i]
        c = dense_of[t]
        if c >= 0:
            d_rows[nd] = c
            d_w[nd] = qw[i]
            nd += 1
        elif ptr[(t + 1) * nw] > ptr[t * nw]:
            s_at[ns] = t * nw
            s_w[ns] = qw[i]
            ns += 1
    hs = np.empty(k, np.float32)
    hi = np.empty(k, np.int64)
    size = 0
    floor = theta_in - theta_in * np.float32(1e-4)  # float summation order may differ slightly
    if floor <= 0:
        floor = np.float32(0.0)
    for win in range(nw):
        lo = win * WINDOW
        n = min(WINDOW, n_docs - lo)
        acc[:n] = 0.0
        j = 0
        while j + 4 <= nd:
            _add_rows(acc, dense, d_rows, d_w, j, lo, n)
            j += 4
        while j < nd:
            row = dense[d_rows[j], lo : lo + n]
            q = d_w[j]
            for d in range(n):
                acc[d] += q * np.float32(row[d])
            j += 1
        for j in range(ns):
            at = s_at[j] + win
            _scatter(acc, docs, w, ptr[at], ptr[at + 1], s_w[j])
        # ids only grow during the scan, so a score equal to the heap's worst cannot enter
        thr = hs[0] if size == k else floor
        for b0 in range(0, n, _BLOCK):
            b1 = min(b0 + _BLOCK, n)
            if _count_above(acc, b0, b1, thr) == 0:
                continue
            for d in range(b0, b1):
                s = acc[d]
                if s > thr and deleted[lo + d] == 0:
                    size = offer(hs, hi, size, k, s, np.int64(lo + d))
                    if size == k:
                        thr = hs[0]
    pop_into(hs, hi, size, out_i, out_s)
    return size


@njit(cache=_CACHE, nogil=True)
def search_serial(ptr, docs, w, dense_of, dense, deleted, q_ptr, q_idx, q_val, k, theta, acc,
                  out_s, out_i, out_n):
    """All queries of a CSR batch, one after another, in one segment."""
    for q in range(q_ptr.shape[0] - 1):
        a = q_ptr[q]
        b = q_ptr[q + 1]
        out_n[q] = _search_one(ptr, docs, w, dense_of, dense, deleted, q_idx[a:b], q_val[a:b], k,
                               theta[q], acc, out_s[q], out_i[q])


@njit(cache=_CACHE, parallel=True, nogil=True)
def search_parallel(ptr, docs, w, dense_of, dense, deleted, q_ptr, q_idx, q_val, k, theta, acc2,
                    out_s, out_i, out_n):
    """Queries spread over ``acc2.shape[0]`` threads, each with its own accumulator row."""
    n_threads = acc2.shape[0]
    n_q = q_ptr.shape[0] - 1
    for th in prange(n_threads):
        acc = acc2[th]
        for q in range(th, n_q, n_threads):
            a = q_ptr[q]
            b = q_ptr[q + 1]
            out_n[q] = _search_one(ptr, docs, w, dense_of, dense, deleted, q_idx[a:b],
                                   q_val[a:b], k, theta[q], acc, out_s[q], out_i[q])


@njit(cache=_CACHE, nogil=True)
def search_segment(ptr, docs, w, dense_of, dense, deleted, q_ptr, q_idx, q_val, k, acc2):
    """:func:`search_serial` over the only segment of an index, from the queries' CSR arrays as
    they are (their indices widened here), with the first accumulator row of ``acc2``:
    ``(ids, scores, overflow)``, ``(n_queries, k)`` each
    padded with -1 / -inf, ``overflow`` whether a score reached +inf."""
    n_q = q_ptr.shape[0] - 1
    out_s = np.full((n_q, k), -np.inf, np.float32)
    out_i = np.full((n_q, k), -1, np.int64)
    out_n = np.zeros(n_q, np.int64)
    theta = np.zeros(n_q, np.float32)
    search_serial(ptr, docs, w, dense_of, dense, deleted, q_ptr.astype(np.int64),
                  q_idx.astype(np.int64), q_val, k, theta, acc2[0], out_s, out_i, out_n)
    overflow = False
    for q in range(n_q):
        for j in range(k):
            if out_s[q, j] == np.inf:
                overflow = True
    return out_i, out_s, overflow
