"""Searching a :class:`indexes.bm25.BM25Index` (private): the query paths over its segments,
with impacts precomputed, rescaled from stale ones, or computed at query time, under filters,
and per-term explanations."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from itertools import pairwise
from typing import Any

import numpy as np

from indexes import _bm25_common as _c  # thresholds read at call time (tests change them)
from indexes import _bm25_kernels as _k
from indexes import _bm25_row_kernels as _kr
from indexes._base import SearchResult, check_allowed, empty_result
from indexes._bm25_common import (
    _NO_IMPACTS,
    _NO_MASK,
    _NO_SCALE,
    _check_tokens,
    _ro,
)
from indexes._validate import check_search_k, is_int, short


class SearchMixin:
    """The read side of :class:`~indexes.bm25.BM25Index` (which sets the state it reads)."""

    def search(
        self,
        token_lists: Sequence[Sequence[str]],
        k: int,
        allowed: np.ndarray | None = None,
    ) -> SearchResult:
        """Top-k documents for each query (a token list): ids int64, scores float32, padded.

        ``allowed`` (a bool or uint8 mask over internal ids, one entry per id ever assigned)
        restricts the search to the documents it marks: the result is the unfiltered ranking
        with the other documents removed, with the same scores, so up to ``k`` hits however
        few documents it allows (fewer than 1 in ``_SELECTIVE_RATIO`` of a segment's
        documents: only those are scored; otherwise disallowed documents are skipped when the
        top k are collected).
        """
        if allowed is None and type(k) is int and k > 0 and type(token_lists) is list:
            found = self._search_common(token_lists, k)
            if found is not None:
                return found
        _check_tokens(token_lists, "queries")
        st = self._state  # one consistent state for this whole search
        positive = st.positive if self._positive is None else self._positive
        if allowed is not None:
            allowed = check_allowed(allowed, st.dn.shape[0])
            if not positive:  # the general kernel skips disallowed documents like deleted ones
                st = replace(st, dn=np.where(allowed, st.dn, np.float32(-1.0)), impacts=None)
                allowed = None
        idf = st.idf
        k = check_search_k(k, len(self))
        n_q = len(token_lists)
        get = self._vocab.get
        q_terms: list[int] = []
        q_ptr = np.zeros(n_q + 1, dtype=np.int64)
        for i, tokens in enumerate(token_lists):
            for tok in tokens:
                tid = get(tok)
                if tid is not None and tid < idf.shape[0]:
                    q_terms.append(tid)
            q_ptr[i + 1] = len(q_terms)
        if not q_terms or not st.segments or k == 0:
            return empty_result(n_q, k)
        terms = np.array(q_terms, dtype=np.int32)
        views = _views(st)
        stats = (views[0], *self._formula(), views[1])
        mask = None if allowed is None else _ro(allowed.view(np.uint8))
        if st.impacts is None and st.stale is not None and positive:
            rows = [self._search_stale(st, stats, terms[a:b], k, mask) for a, b in pairwise(q_ptr)]
            if all(r is not None for r in rows):
                return SearchResult(*(np.concatenate(x) for x in zip(*rows, strict=True)))
        return self._search_all(st, stats, positive, q_ptr, terms, k, mask)

    def _search_common(self, token_lists: list, k: int) -> SearchResult | None:
        """:meth:`search` without a filter of a list of token lists (lists of ``str``) when
        every contribution is > 0 and the impacts are precomputed (the state between writes):
        what the general path does, the token checks at C speed and the kernels' arguments
        made once per state (:func:`_plan`). None for anything else, including every input
        the general path refuses: it checks and searches those."""
        query = self._common_query(token_lists, k)
        if query is None or isinstance(query, SearchResult):
            return query
        st, q_ptr, q_terms, k = query
        block, chunk, ratio, pool = _c._BLOCK_DOCS, _k.CHUNK, _c._SPARSE_RATIO, self._pool
        best: tuple[np.ndarray, np.ndarray] | None = None
        for base, n_docs, args in st.__dict__.get("_plan") or _plan(st, self._formula()):
            key, sizes = _positive_scratch(n_docs, block, chunk)
            acc, touched = pool.get_group(key, sizes)
            res = _k.search_positive(
                *args, q_ptr, q_terms, k, acc, touched, _NO_MASK, block, chunk, ratio
            )  # a kernel that raised leaves its buffers dirty: they are not put back
            pool.put(key, (acc, touched))
            if base:
                res[0][res[0] >= 0] += base
            best = res if best is None else _k.merge_top(*best, *res, k)
        return SearchResult(*best)

    def _common_query(self, token_lists: list, k: int) -> tuple | SearchResult | None:
        """:meth:`_search_common`'s query: ``(state, q_ptr, q_terms, k)``, the empty result
        of a query without known terms, or None where the general path must search."""
        st = self._state
        positive = st.positive if self._positive is None else self._positive
        if not positive or not token_lists or st.impacts is None:
            return None
        n_idf = st.idf.shape[0]  # terms added since this state have no statistics in it
        get = self._vocab.get
        terms: list[int] = []
        ptr = [0]
        for tokens in token_lists:
            if type(tokens) is not list:
                return None
            try:
                "".join(tokens)  # a TypeError unless every token is a str
            except TypeError:
                return None
            terms += [t for t in map(get, tokens) if t is not None and t < n_idf]
            ptr.append(len(terms))
        k = min(k, self._n_live)
        if not terms or not st.segments or k == 0:
            return empty_result(len(token_lists), k)
        return st, np.array(ptr, dtype=np.int64), np.array(terms, dtype=np.int32), k

    def _one_call(self, token_lists: list, k: int) -> tuple | None:
        """``search(token_lists, k)`` as one call of ``search_positive`` for an index of one
        segment: ``(head, scratch key, scratch sizes, tail)``, its arguments being ``head``,
        the scratch buffers (taken from ``self._pool`` under that key, given back once the
        kernel returned), then ``tail``. None where the search takes other steps."""
        query = self._common_query(token_lists, k)
        if query is None or isinstance(query, SearchResult):
            return None
        st, q_ptr, q_terms, k = query
        plan = st.__dict__.get("_plan") or _plan(st, self._formula())
        if len(plan) != 1:
            return None
        _, n_docs, args = plan[0]  # (the first segment starts at id 0)
        block, chunk = _c._BLOCK_DOCS, _k.CHUNK
        key, sizes = _positive_scratch(n_docs, block, chunk)
        return (*args, q_ptr, q_terms, k), key, sizes, (_NO_MASK, block, chunk, _c._SPARSE_RATIO)

    def _search_all(self, st, stats, positive, q_ptr, terms, k, mask) -> SearchResult:
        n_q = q_ptr.shape[0] - 1
        best: tuple[np.ndarray, np.ndarray] | None = None
        for i, seg in enumerate(st.segments):
            seg_views = _views(st)[2][i]
            imp = _NO_IMPACTS if st.impacts is None else seg_views[3]
            seg_mask = None if mask is None else mask[seg.base : seg.base + seg.n_docs]
            if seg_mask is not None and not seg_mask.any():
                continue
            res = self._search_segment(
                seg, st, imp, stats, positive, q_ptr, terms, k, seg_mask, views=seg_views
            )
            if seg.base:
                res[0][res[0] >= 0] += seg.base
            best = res if best is None else _k.merge_top(*best, *res, k)
        if best is None:
            return empty_result(n_q, k)
        return SearchResult(*best)

    def _search_stale(self, st, stats, terms, k, mask) -> tuple[np.ndarray, np.ndarray] | None:
        """One query right after a write, before the precomputation: exact results without
        scoring every posting at query time, or None when this cannot prove them exact.

        A segment whose impacts were precomputed before the write is searched with them,
        rescaled by each term's IDF ratio (``_Stale.scale``), for its best ``m`` candidates;
        only those are scored exactly (:func:`indexes._bm25_row_kernels.search_allowed`). A
        document outside them scores at most ``bound`` x its rescaled stale score (<= the
        ``m``-th's), since each tf part changed by a factor between 1 and ``bound``; so if the
        exact k-th best score exceeds that (with a margin for float32 rounding), no document
        outside can enter the top k. New segments are scored at query time (they are small).
        """
        stale = st.stale
        m = 2 * k + 10
        q_ptr = np.array([0, terms.shape[0]], dtype=np.int64)
        outside = 0.0  # the best score a document outside the candidates may have
        best: tuple[np.ndarray, np.ndarray] | None = None
        for seg in st.segments:
            seg_mask = None if mask is None else mask[seg.base : seg.base + seg.n_docs]
            if seg_mask is not None and not seg_mask.any():
                continue
            imp = stale.impacts.get(id(seg))
            if imp is None:
                res = self._search_segment(
                    seg, st, _NO_IMPACTS, stats, True, q_ptr, terms, k, seg_mask
                )
            else:
                res = self._search_segment(
                    seg, st, imp, stats, True, q_ptr, terms, m, seg_mask, scale=stale.scale
                )
                ids, scores = res[0][0], res[1][0]
                n = int((ids >= 0).sum())
                if n == m:
                    outside = max(outside, float(scores[m - 1]))
                rows = np.sort(ids[:n]).astype(np.int32)
                lo, hi = seg.base, seg.base + seg.n_docs
                postings = (_ro(seg.indptr), _ro(seg.docs), _ro(seg.tfs), _NO_IMPACTS)
                args = (*postings, _ro(st.dn[lo:hi]), *stats, q_ptr, terms, k)
                with self._pool.take(("acc", seg.n_docs), np.float32) as acc:
                    res = _kr.search_allowed(*args, acc, _NO_MASK, rows, 0)
            if seg.base:
                res[0][res[0] >= 0] += seg.base
            best = res if best is None else _k.merge_top(*best, *res, k)
        if best is None:
            empty = empty_result(1, k)
            return empty.ids, empty.scores
        if outside > 0:
            kth = best[1][0, k - 1]
            if not (best[0][0, k - 1] >= 0 and kth > outside * stale.bound * (1 + 1e-4)):
                return None
        return best

    def _search_segment(
        self, seg, st, imp, stats, positive, q_ptr, terms, k, seg_mask, scale=None, views=None
    ):
        """One segment's top ``k``. ``views``: the segment's read-only arrays from
        :func:`_views` (``imp`` is then read-only already); made here when None."""
        n_docs = seg.n_docs
        lo, hi = seg.base, seg.base + n_docs
        if views is None:
            indptr, docs, tfs, imp = _ro(seg.indptr), _ro(seg.docs), _ro(seg.tfs), _ro(imp)
            dn = None
        else:
            indptr, docs, tfs, _, dn = views
        if not positive:  # the general kernel: contributions that may be <= 0
            args = (indptr, docs, tfs, None, st.dn[lo:hi], *stats, q_ptr, terms, k)
            with (
                self._pool.take(("acc", n_docs), np.float32) as acc,
                self._pool.take(("seen", n_docs), np.uint8) as seen,
                self._pool.take(("touched", n_docs), np.int32) as touched,
            ):
                return _k.search_batch(*args, acc, seen, touched)
        dn = _ro(st.dn[lo:hi]) if dn is None else dn
        args = (indptr, docs, tfs, imp, dn, *stats, q_ptr, terms, k)
        if seg_mask is not None and np.count_nonzero(seg_mask) * _c._SELECTIVE_RATIO < n_docs:
            rows = _kr.allowed_rows(seg_mask)
            with self._pool.take(("acc", n_docs), np.float32) as acc:
                return _kr.search_allowed(*args, acc, seg_mask, rows, _c._GALLOP_RATIO)
        key, sizes = _positive_scratch(n_docs, _c._BLOCK_DOCS, _k.CHUNK)
        acc, touched = self._pool.get_group(key, sizes)
        out = _k.search_positive(
            *args[:4],
            _NO_SCALE if scale is None else _ro(scale),
            *args[4:],
            acc,
            touched,
            _NO_MASK if seg_mask is None else seg_mask,
            _c._BLOCK_DOCS,
            _k.CHUNK,
            _c._SPARSE_RATIO,
        )  # a kernel that raised leaves its buffers dirty: they are not put back
        self._pool.put(key, (acc, touched))
        return out

    def explain(self, query_tokens: Sequence[str], doc_id: int) -> list[tuple[str, float]]:
        """Per-term score contributions of one live document, largest first.

        Each distinct query term appears once with its contribution times its count in the
        query; terms contributing nothing are left out. The values sum to the document's score
        (up to float32 rounding).
        """
        if isinstance(query_tokens, str):
            raise TypeError("query_tokens must be a list of tokens, not a string")
        _check_tokens([query_tokens], "query_tokens")
        if not is_int(doc_id):
            kind = type(doc_id).__name__
            raise TypeError(f"doc_id must be an integer, got {kind} {short(doc_id)}")
        doc_id = int(doc_id)
        st = self._state
        idf, dn, absent = st.idf, st.dn, st.absent
        if not 0 <= doc_id < dn.shape[0] or dn[doc_id] < 0:
            raise KeyError(f"{doc_id} is not a live document id")
        seg = next(s for s in st.segments if s.base <= doc_id < s.base + s.n_docs)
        local = doc_id - seg.base
        out: list[tuple[str, float]] = []
        for term, count in Counter(query_tokens).items():
            tid = self._vocab.get(term)
            if tid is None or tid >= idf.shape[0]:
                continue
            value = float(absent[tid])
            if tid + 1 < seg.indptr.shape[0]:
                lo, hi = seg.indptr[tid], seg.indptr[tid + 1]
                pos = lo + int(np.searchsorted(seg.docs[lo:hi], local))
                if pos < hi and seg.docs[pos] == local:
                    part = _k.tf_part(seg.tfs[pos], dn[doc_id], *self._formula())
                    value += float(np.float32(idf[tid]) * np.float32(part))
            if value == 0.0:
                continue
            out.append((term, count * value))
        out.sort(key=lambda tv: (-tv[1], tv[0]))
        return out


def _views(st: Any) -> tuple:
    """Read-only views of what the kernels read of state ``st``, made once per state (a
    frozen :class:`~indexes._bm25_common._State`, replaced by every write): ``(idf, absent,
    per segment (indptr, docs, tfs, impacts or None, dn))``."""
    views = st.__dict__.get("_views")
    if views is None:
        segs = tuple(
            (
                _ro(seg.indptr),
                _ro(seg.docs),
                _ro(seg.tfs),
                None if st.impacts is None else _ro(st.impacts[i]),
                _ro(st.dn[seg.base : seg.base + seg.n_docs]),
            )
            for i, seg in enumerate(st.segments)
        )
        views = (_ro(st.idf), _ro(st.absent), segs)
        st.__dict__["_views"] = views  # (two searches may both make them: equal views)
    return views


def _positive_scratch(n_docs: int, block: int, chunk: int) -> tuple:
    """The pool key and sizes of :func:`indexes._bm25_kernels.search_positive`'s scratch
    buffers for a segment of ``n_docs``: ``acc`` with room for the last block's scan chunk past
    ``n_docs`` and for a whole ``block``, and ``touched``."""
    n_acc = max(block, -(-n_docs // chunk) * chunk)
    return ("positive", n_acc, n_docs), ((n_acc, np.float32), (n_docs, np.int32))


def _plan(st: Any, formula: tuple) -> tuple:
    """Per segment of state ``st``: ``(base, n_docs, the leading arguments of
    search_positive)``, as :meth:`SearchMixin._search_segment` passes them without a filter or
    scale, made once per state (``formula``: the index's :meth:`_formula`, the same for every
    state of an index)."""
    plan = st.__dict__.get("_plan")
    if plan is None:
        idf, absent, segs = _views(st)
        plan = tuple(
            (seg.base, seg.n_docs, (indptr, docs, tfs, imp, _NO_SCALE, dn, idf, *formula, absent))
            for seg, (indptr, docs, tfs, imp, dn) in zip(st.segments, segs, strict=True)
        )
        st.__dict__["_plan"] = plan  # (two searches may both make it: equal plans)
    return plan


_WARM: set[tuple] = set()


def _warm_kernels(index: Any) -> None:
    """Load (or compile) every search kernel an index with these parameters can call, once per
    process, from a tiny index: the first search after a write (two segments to merge, scores
    computed at query time) or with a filter must not pay it (numba takes milliseconds to load
    a cached kernel on its first call). Runs on an index's first ``add`` and on ``load``."""
    key = (index.variant, tuple(sorted(index.params.items())))
    if key in _WARM:
        return
    _WARM.add(key)
    tiny = type(index)(index.variant, **index.params)
    tiny.precompute_delay = None
    tiny.add([["a", "b"], ["b"], ["a", "c"], ["c"]] * 40)  # selective filters: few allowed
    tiny.add([["a"]])
    allowed = np.zeros(161, dtype=bool)
    allowed[[0, 160]] = True
    for _ in range(2):
        tiny.search([["a", "c"]], 2)
        tiny.search([["a", "c"]], 2, allowed=allowed)
        tiny.search([["a", "c"]], 2, allowed=np.ones(161, dtype=bool))
        tiny.precompute()
    tiny.add([["b"]])  # merges the two small segments
