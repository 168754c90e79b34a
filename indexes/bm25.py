"""Exact BM25 over pre-tokenised documents: segments, deletes, cheap writes, mmap loading.

Documents and queries are lists of string tokens (text processing lives in
``hybrid.encoders.analyzers``).
Each ``add`` becomes an immutable segment of term-major postings (document, term frequency) over
its own range of document ids; segments merge as they grow (binary-counter style, so a posting
is merged O(log n) times and there are O(log n) segments), and a merge drops deleted documents.
Scores are computed at query time from each posting's term frequency, the term's IDF and a
per-document length norm, and the collection statistics they need (live document count, average
length, document frequencies) are updated by every write: the IDF table is O(vocabulary) and the
length-norm array O(documents), one numba pass (milliseconds at a million documents). So a
write costs little and scores always equal those of an index built from scratch on the live
documents.

Searches: a background thread precomputes every posting's contribution once writes pause
(``precompute``). Until then a search uses the impacts last precomputed, rescaled per term by
the IDF change, to find a few candidates in each segment they cover and scores only those
exactly; a bound on how much any score can have moved proves the result exact, or the search
scores every posting at query time instead (vectorised; about 1.2-1.4x the precomputed cost).
A filter (``allowed``) that leaves few documents scores just those, galloping through long
postings lists; a broader one skips disallowed documents in the top-k scan.

Variants (``variant=``):

- ``"lucene"`` (default): ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` and
  ``tf / (tf + k1 * (1 - b + b * dl / avgdl))``, as Lucene >= 8 and Elasticsearch score (and
  bm25s' ``method="lucene"``), defaults k1=1.2, b=0.75 (Elasticsearch's). IDF is always positive,
  so every matching term helps. Lucene stores document lengths lossily in one byte; lengths
  here are exact, like bm25s.
- ``"okapi"``: exactly ``rank_bm25.BM25Okapi``: ``idf = ln(N - df + 0.5) - ln(df + 0.5)``, negative
  values (terms in more than half the documents) replaced by ``epsilon`` x the mean IDF over
  the live vocabulary, tf part ``tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))``; defaults
  k1=1.5, b=0.75, epsilon=0.25 (rank_bm25's).
- ``"bm25l"``: exactly ``rank_bm25.BM25L`` (``idf = ln(N + 1) - ln(df + 0.5)``, including its
  extra factor tf); defaults k1=1.5, b=0.75, delta=0.5.
- ``"bm25+"``: exactly ``rank_bm25.BM25Plus`` (``idf = ln((N + 1) / df)``, tf part plus
  ``delta``); defaults k1=1.5, b=0.75, delta=1.0. Its ``idf * delta`` is earned by every document
  for every query term, so it is added to each hit as a per-query constant.

Query terms repeated in a query count once per occurrence, as in rank_bm25 (and Lucene boolean
queries with repeated clauses). Only documents sharing at least one term with the query are hits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from itertools import chain
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from indexes import _bm25_io as _io
from indexes import _bm25_kernels as _k
from indexes._bm25_common import (
    _check_tokens,
    _concat_forward,
    _raise_bad_token,
    _ro,
    _Stale,
    _State,
)
from indexes._bm25_io import _SEG_ARRAYS, _Segment
from indexes._bm25_search import SearchMixin, _warm_kernels
from indexes._scratch import ScratchPool
from indexes._validate import check_number, short, unique_ids

VARIANTS: dict[str, dict[str, float]] = {
    "lucene": {"k1": 1.2, "b": 0.75},
    "okapi": {"k1": 1.5, "b": 0.75, "epsilon": 0.25},
    "bm25l": {"k1": 1.5, "b": 0.75, "delta": 0.5},
    "bm25+": {"k1": 1.5, "b": 0.75, "delta": 1.0},
}
# Search tuning (see indexes._bm25_kernels.search_positive); tests shrink them to reach every path.
# A filter allowing fewer than n_docs / _SELECTIVE_RATIO of a segment's documents scores just
# those (indexes._bm25_row_kernels.search_allowed), galloping through postings lists longer than
# _GALLOP_RATIO x the allowed documents.
_ADD_TOKENS = 2_000_000  # tokens an add processes at a time
PRECOMPUTE_DELAY = 0.5  # seconds after the last write before contributions are precomputed


_PARAM_RANGES = {"k1": (0.0, None), "b": (0.0, 1.0), "delta": (0.0, None), "epsilon": (0.0, None)}
"""Accepted (lo, hi) of each parameter: all finite; b in [0, 1], the others >= 0."""


class BM25Index(SearchMixin):
    """BM25 inverted index over token lists; see the module docstring for variants.

    ``k1``, ``b``, ``delta`` (bm25l, bm25+) and ``epsilon`` (okapi) default per variant to the
    values of the implementation it follows (``VARIANTS``); the resolved values are ``params``.

    Threads: any number of searches (and ``explain``) may run at once, on several cores (the
    kernels release the GIL; each search takes its own scratch buffers from a pool). A write
    (``add``, ``delete``) must not run concurrently with anything else on the same index:
    :class:`hybrid.HybridRetriever` guarantees that with its readers-writer lock.

    ``precompute_delay`` (default :data:`PRECOMPUTE_DELAY` s; None: never) is how long after the
    last write a background thread starts :meth:`precompute`.
    """

    def __init__(
        self,
        variant: str = "lucene",
        k1: float | None = None,
        b: float | None = None,
        delta: float | None = None,
        epsilon: float | None = None,
    ) -> None:
        if not isinstance(variant, str) or variant not in VARIANTS:
            choices = sorted(VARIANTS)
            raise ValueError(f"unknown BM25 variant {short(variant)}; choose one of {choices}")
        defaults = VARIANTS[variant]
        if delta is not None and "delta" not in defaults:
            raise ValueError(f"delta applies to 'bm25l' and 'bm25+' only, not {variant!r}")
        if epsilon is not None and "epsilon" not in defaults:
            raise ValueError(f"epsilon applies to 'okapi' only, not {variant!r}")
        given = {"k1": k1, "b": b, "delta": delta, "epsilon": epsilon}
        params = {
            name: check_number(
                given[name], name, lo=_PARAM_RANGES[name][0], hi=_PARAM_RANGES[name][1]
            )
            if given[name] is not None
            else float(v)
            for name, v in defaults.items()
        }
        self.variant = variant
        self.params = params
        self.extra: dict[str, Any] | None = None
        self._vocab: dict[str, int] = {}
        self._segments: list[_Segment] = []
        self._doc_len = np.zeros(0, dtype=np.int32)
        self._live = np.zeros(0, dtype=bool)
        self._df = np.zeros(0, dtype=np.int64)  # live documents holding each term
        self._n_live = 0
        self._total_len = 0  # summed length of the live documents
        self._pool = ScratchPool()
        self._state_lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.precompute_delay: float | None = PRECOMPUTE_DELAY
        self._positive: bool | None = None  # tests force the general kernel with False
        self._publish()

    # ------------------------------------------------------------------ writes

    def add(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """Index documents given as token lists; returns their new ids (int64, consecutive)."""
        _check_tokens(token_lists, "documents", each=False)
        _warm_kernels(self)
        start = self._doc_len.shape[0]
        n = len(token_lists)
        lens = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=n)
        if start + n > np.iinfo(np.int32).max:
            raise ValueError("BM25Index holds at most 2**31 - 1 documents")
        ids = np.arange(start, start + n, dtype=np.int64)
        if n == 0:
            return ids
        vocab = self._vocab
        try:
            distinct = dict.fromkeys(chain.from_iterable(token_lists))
        except TypeError:  # an unhashable token
            distinct = None
        if distinct is None or not all(isinstance(t, str) for t in distinct):
            _raise_bad_token(token_lists, "documents")  # before the vocabulary changes
        for term in distinct:
            if term not in vocab:
                vocab[term] = len(vocab)
        width = len(vocab)
        # (document, term) pairs with their counts, doc-major, a few documents at a time: the
        # per-token temporaries stay ~_ADD_TOKENS long however large the batch.
        step = max(1, int(n * _ADD_TOKENS // max(1, int(lens.sum()))))
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for c0 in range(0, n, step):
            chunk, c_lens = token_lists[c0 : c0 + step], lens[c0 : c0 + step]
            tokens = chain.from_iterable(chunk)
            term_ids = np.fromiter(map(vocab.__getitem__, tokens), np.int64, int(c_lens.sum()))
            local = np.repeat(np.arange(c0, c0 + c_lens.shape[0], dtype=np.int64), c_lens)
            keys, counts = np.unique(local * width + term_ids, return_counts=True)
            parts.append(
                ((keys // width).astype(np.int32), (keys % width).astype(np.int32), counts)
            )
        f_docs, f_terms, tfs = (np.concatenate(x) for x in zip(*parts, strict=True))
        fwd_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(f_docs, minlength=n), out=fwd_ptr[1:])
        order = np.argsort(f_terms, kind="stable")  # term-major, docs ascending within a term
        indptr = np.zeros(width + 1, dtype=np.int64)
        df_new = np.bincount(f_terms, minlength=width)
        np.cumsum(df_new, out=indptr[1:])
        seg = _Segment(
            start, n, indptr, f_docs[order], tfs.astype(np.int32)[order], fwd_ptr, f_terms
        )
        self._doc_len = np.concatenate([self._doc_len, lens.astype(np.int32)])
        self._live = np.concatenate([self._live, np.ones(n, dtype=bool)])
        segments = [*self._segments, seg]
        while len(segments) > 1 and segments[-2].n_postings <= 2 * segments[-1].n_postings:
            b_seg = segments.pop()
            segments.append(self._merge(segments.pop(), b_seg))
        df = np.zeros(width, dtype=np.int64)
        df[: self._df.shape[0]] = self._df
        self._segments = segments
        self._df = df + df_new
        self._n_live += n
        self._total_len += int(lens.sum())
        self._publish()
        return ids

    def delete(self, ids: Iterable[int]) -> None:
        """Remove live documents by id; KeyError (nothing removed) if any id is not live,
        ValueError for an id given twice, TypeError for anything but integers."""
        ids = unique_ids(ids)
        bad = ids[(ids < 0) | (ids >= self._live.shape[0])]
        if bad.size == 0:
            bad = ids[~self._live[ids]]
        if bad.size:
            raise KeyError(f"not live document ids: {bad[:10].tolist()}")
        if ids.size == 0:
            return
        df = np.array(self._df)
        for seg, local in self._locate(ids):
            lo, hi = seg.fwd_ptr[local], seg.fwd_ptr[local + 1]
            lens = hi - lo
            pos = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
            terms = seg.fwd_terms[np.repeat(lo, lens) + pos]
            df -= np.bincount(terms, minlength=df.shape[0])[: df.shape[0]]
        live = np.array(self._live)  # copy: the current array may be a read-only memory map
        live[ids] = False
        self._live = live
        self._df = df
        self._n_live -= int(ids.size)
        self._total_len -= int(self._doc_len[ids].sum(dtype=np.int64))
        segments = list(self._segments)
        for i, seg in enumerate(segments):  # compact segments that are mostly dead
            n_live = int(live[seg.base : seg.base + seg.n_docs].sum())
            if n_live * 2 < seg.n_docs and seg.n_postings:
                segments[i] = self._compact(seg)
        self._segments = segments
        self._publish()

    def checkpoint(self) -> tuple:
        """An opaque token of the current state, for :meth:`rollback` (O(1): writes replace
        the arrays and segment lists they change rather than modifying them)."""
        return (
            len(self._vocab),
            list(self._segments),
            self._doc_len,
            self._live,
            self._df,
            self._n_live,
            self._total_len,
            self._state,
        )

    def rollback(self, token: tuple) -> None:
        """Undo every write since :meth:`checkpoint` returned ``token``."""
        n_vocab, segments, doc_len, live, df, n_live, total_len, state = token
        for term in list(self._vocab)[n_vocab:]:
            del self._vocab[term]
        self._segments = list(segments)
        self._doc_len, self._live, self._df = doc_len, live, df
        self._n_live, self._total_len = n_live, total_len
        with self._state_lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._state = state

    def compact(self) -> None:
        """Merge all segments into one, dropping deleted documents' postings (faster searches)."""
        segments = list(self._segments)
        while len(segments) > 1:
            b_seg = segments.pop()
            segments.append(self._merge(segments.pop(), b_seg))
        if segments and not self._live[segments[0].base :].all():
            segments[0] = self._compact(segments[0])
        self._segments = segments
        self._publish()

    def _merge(self, a: _Segment, b: _Segment) -> _Segment:
        """One segment holding the live postings of two adjacent segments."""
        live = self._live_u8()
        keep_a = live[a.base : a.base + a.n_docs]
        keep_b = live[b.base : b.base + b.n_docs]
        n_terms = max(a.indptr.shape[0], b.indptr.shape[0]) - 1
        indptr, docs, tfs = _k.merge(
            a.indptr, a.docs, a.tfs, keep_a, b.indptr, b.docs, b.tfs, keep_b, a.n_docs, n_terms
        )
        fwd_ptr, fwd_terms = _concat_forward(
            [(a.fwd_ptr, a.fwd_terms, keep_a), (b.fwd_ptr, b.fwd_terms, keep_b)]
        )
        return _Segment(a.base, a.n_docs + b.n_docs, indptr, docs, tfs, fwd_ptr, fwd_terms)

    def _compact(self, seg: _Segment) -> _Segment:
        """``seg`` without its deleted documents' postings."""
        keep = self._live_u8()[seg.base : seg.base + seg.n_docs]
        empty = np.zeros(1, dtype=np.int64)
        none = np.zeros(0, dtype=np.int32)
        indptr, docs, tfs = _k.merge(
            seg.indptr,
            seg.docs,
            seg.tfs,
            keep,
            empty,
            none,
            none,
            np.zeros(0, np.uint8),
            0,
            seg.indptr.shape[0] - 1,
        )
        fwd_ptr, fwd_terms = _concat_forward([(seg.fwd_ptr, seg.fwd_terms, keep)])
        return _Segment(seg.base, seg.n_docs, indptr, docs, tfs, fwd_ptr, fwd_terms)

    def _live_u8(self) -> np.ndarray:
        return self._live.view(np.uint8)

    def _locate(self, ids: np.ndarray):
        """(segment, sorted local ids) for sorted, valid global ``ids``."""
        for seg in self._segments:
            lo, hi = np.searchsorted(ids, [seg.base, seg.base + seg.n_docs])
            if hi > lo:
                yield seg, ids[lo:hi] - seg.base

    # ------------------------------------------------------------------ statistics

    def _publish(self) -> None:
        """IDF per term, the per-document value of the scoring formula, and the BM25+ offsets,
        from the live documents (O(vocabulary + documents), vectorised); built aside, then
        published with the segments as one :class:`_State`, so a search running meanwhile sees
        the index either before or after the write."""
        n = self._n_live
        avgdl = self._total_len / n if self._total_len else 1.0
        idf = self._idf(self._df, n)
        p = self.params
        k1 = 1.0 if self.variant == "bm25l" else p["k1"]
        dn = _k.doc_values(_ro(self._doc_len), _ro(self._live.view(np.uint8)), p["b"], k1, avgdl)
        absent = idf * p["delta"] if self.variant == "bm25+" else np.zeros_like(idf)
        has = self._df > 0
        positive = bool(not has.any() or idf[has].min() > 0)
        state = _State(tuple(self._segments), idf, dn, absent.astype(np.float32), positive, avgdl)
        state = replace(state, stale=self._stale_from(self._state_or_none(), state))
        with self._state_lock:
            self._state = state
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self.precompute_delay is not None and state.segments:
                self._timer = threading.Timer(self.precompute_delay, self.precompute)
                self._timer.daemon = True
                self._timer.start()

    def precompute(self) -> None:
        """Compute every posting's contribution for the current statistics, so searches add
        them instead of computing them (about 1.2-1.4x faster); scores are
        bit-identical either way. Runs by itself in a background thread ``precompute_delay``
        seconds after the last write (None: never); a write in the meantime makes it start over
        for the new statistics, and searches never wait for it."""
        st = self._state
        if st.impacts is not None or not st.segments:
            return
        c, bm25l = self._formula()
        impacts = tuple(
            _k.impacts(s.indptr, s.docs, s.tfs, st.dn[s.base : s.base + s.n_docs], st.idf, c, bm25l)
            for s in st.segments
        )
        with self._state_lock:
            if self._state is st:  # no write since: attach them
                self._state = replace(st, impacts=impacts, stale=None)

    def _state_or_none(self) -> _State | None:
        return getattr(self, "_state", None)

    def _stale_from(self, old: _State | None, new: _State) -> _Stale | None:
        """What ``new`` keeps of the impacts precomputed for ``old`` (or that ``old`` kept):
        those of its segments that are unchanged, with the per-term IDF ratio and the bound
        of the tf parts' change. None for BM25+ (its per-query offset changes too) and when
        nothing is left."""
        if old is None or self.variant == "bm25+" or not new.positive:
            return None
        if old.impacts is not None:
            impacts = {id(s): imp for s, imp in zip(old.segments, old.impacts, strict=True)}
            segments, idf_then = old.segments, old.idf
            avgdl_then = old.avgdl
        elif old.stale is not None:
            impacts, segments = old.stale.impacts, old.stale.segments
            idf_then, avgdl_then = old.stale.idf, old.stale.avgdl
        else:
            return None
        if not any(id(s) in impacts for s in new.segments):
            return None
        n = min(idf_then.shape[0], new.idf.shape[0])
        scale = np.zeros(new.idf.shape[0], dtype=np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = new.idf[:n] / idf_then[:n]
        scale[:n] = np.where(idf_then[:n] > 0, ratio, 0.0)
        # Each tf part is decreasing in the document's value dn = A + B * length / avgdl;
        # a change of avgdl changes every dn by a factor between 1 and avgdl_then / avgdl.
        bound = max(1.0, new.avgdl / avgdl_then)
        return _Stale(impacts, segments, idf_then, avgdl_then, scale, bound)

    def _idf(self, df: np.ndarray, n: int) -> np.ndarray:
        dff = df.astype(np.float64)
        has = df > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.variant == "okapi":
                idf = np.log(n - dff + 0.5) - np.log(dff + 0.5)
                idf[~has] = 0.0
                if has.any():
                    eps = self.params["epsilon"] * idf[has].sum() / has.sum()
                    idf[has & (idf < 0)] = eps
            elif self.variant == "lucene":
                idf = np.log(1.0 + (n - dff + 0.5) / (dff + 0.5))
            elif self.variant == "bm25l":
                idf = np.log(n + 1.0) - np.log(dff + 0.5)
            else:
                idf = np.log((n + 1.0) / dff)
        idf[~has] = 0.0
        return idf

    def _formula(self) -> tuple[float, tuple[float, float] | None]:
        """``c`` and ``bm25l`` of :func:`indexes._bm25_kernels.tf_part` for this variant."""
        k1 = self.params["k1"]
        if self.variant == "bm25l":
            return k1 + 1.0, (k1, self.params["delta"])
        return (1.0 if self.variant == "lucene" else k1 + 1.0), None

    # ------------------------------------------------------------------ reads

    def __len__(self) -> int:
        return self._n_live

    @property
    def n_terms(self) -> int:
        """Number of distinct terms ever added (including ones now only in deleted documents)."""
        return len(self._vocab)

    @property
    def n_segments(self) -> int:
        return len(self._segments)

    @property
    def vocabulary(self) -> Mapping[str, int]:
        """Read-only term -> term id map of every term ever added (``term in index.vocabulary``;
        includes terms now only in deleted documents, like :attr:`n_terms`)."""
        return MappingProxyType(self._vocab)

    @property
    def nbytes(self) -> int:
        """Bytes held by the index arrays (postings, forward index, lengths, statistics)."""
        arrays = [getattr(s, a) for s in self._segments for a in _SEG_ARRAYS]
        st = self._state
        arrays += [self._doc_len, self._live, self._df, st.idf, st.dn, st.absent]
        arrays += list(st.impacts or ())
        if st.stale is not None:  # impacts kept from before the last writes, until the next
            arrays += list(st.stale.impacts.values())
        return int(sum(a.nbytes for a in arrays))

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write the index as .npy arrays (per segment) + terms.json + meta.json; ``extra`` must
        be JSON-able."""
        return _io.save(self, path, extra)

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> BM25Index:
        """Open a saved index; arrays are memory-mapped read-only unless ``mmap=False``."""
        index = _io.load(cls, path, mmap)
        _warm_kernels(index)
        return index

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"BM25Index(variant={self.variant!r}, {params}, docs={len(self)})"
