"""Exact BM25 over pre-tokenised documents, with precomputed impacts, deletes and mmap loading.

Documents and queries are lists of string tokens (text processing lives in ``hybrid.analyzers``).
Postings are kept term-major with each document's raw term frequency; a write (``add`` or
``delete``) marks the index stale and the next read rebuilds the postings of live documents and
recomputes every posting's *impact* (its full score contribution) from the exact statistics of
the surviving documents: document count, average length and document frequencies, so scores
always equal those of an index built from scratch on the live documents. That refresh costs
O(postings) once per batch of writes; a query then touches only the postings of its own terms.

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

import json
import os
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from indexes import _bm25_kernels as _k
from indexes._base import (
    IndexCorruptedError,
    IndexFormatError,
    SearchResult,
    check_allowed,
    check_pointers,
    check_range,
    empty_result,
    load_array,
    read_meta,
    write_meta,
)
from indexes._validate import check_number, check_search_k, is_int, short, unique_ids

FORMAT_VERSION = 1
KIND = "BM25Index"

VARIANTS: dict[str, dict[str, float]] = {
    "lucene": {"k1": 1.2, "b": 0.75},
    "okapi": {"k1": 1.5, "b": 0.75, "epsilon": 0.25},
    "bm25l": {"k1": 1.5, "b": 0.75, "delta": 0.5},
    "bm25+": {"k1": 1.5, "b": 0.75, "delta": 1.0},
}
_CODES = {"okapi": _k.OKAPI, "lucene": _k.LUCENE, "bm25l": _k.BM25L, "bm25+": _k.BM25PLUS}
_ARRAYS = ("indptr", "docs", "tfs", "impacts", "absent", "doc_len", "live")
_DTYPES = {"indptr": np.int64, "docs": np.int32, "tfs": np.int32, "impacts": np.float32,
           "absent": np.float32, "doc_len": np.int32, "live": np.bool_}
# Search tuning (see indexes._bm25_kernels.search_positive); tests shrink them to reach every path.
_BLOCK_DOCS = 16_384  # documents per accumulator block (64 KiB of float32), a multiple of CHUNK
_SPARSE_RATIO = 32  # a query with fewer than n_docs / _SPARSE_RATIO postings tracks touched docs


_PARAM_RANGES = {"k1": (0.0, None), "b": (0.0, 1.0), "delta": (0.0, None), "epsilon": (0.0, None)}
"""Accepted (lo, hi) of each parameter: all finite; b in [0, 1], the others >= 0."""


def _is_seq(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return x.ndim == 1
    return isinstance(x, Sequence) and not isinstance(x, (str, bytes, bytearray))


def _check_tokens(token_lists: Sequence[Sequence[str]], what: str, each: bool = True) -> None:
    """A list (or tuple) of token lists, every token a ``str`` (checked here unless ``each``
    is False: ``add`` checks its distinct terms instead, far fewer); ``TypeError`` naming the
    first offending item and position otherwise. Runs before anything changes."""
    if isinstance(token_lists, str) or (
        _is_seq(token_lists) and len(token_lists) > 0 and isinstance(token_lists[0], str)
    ):
        raise TypeError(
            f"{what} must be a list of token lists (one list of strings per item), "
            "got a single string or a flat list of strings; wrap one item as [tokens]"
        )
    if not _is_seq(token_lists):
        raise TypeError(
            f"{what} must be a list of token lists (one list of strings per item), got "
            f"{type(token_lists).__name__} {short(token_lists)}"
        )
    for i, item in enumerate(token_lists):
        if type(item) not in (list, tuple) and not _is_seq(item):
            raise TypeError(
                f"{what}[{i}] must be a list of string tokens, got "
                f"{type(item).__name__} {short(item)}"
            )
    if each and not all(isinstance(t, str) for t in chain.from_iterable(token_lists)):
        _raise_bad_token(token_lists, what)


def _raise_bad_token(token_lists: Sequence[Sequence[str]], what: str) -> None:
    """``TypeError`` naming the first token that is not a ``str``."""
    for i, tokens in enumerate(token_lists):
        for j, tok in enumerate(tokens):
            if not isinstance(tok, str):
                raise TypeError(
                    f"{what}[{i}][{j}] is {type(tok).__name__} {short(tok)}; tokens must be str"
                )


class BM25Index:
    """BM25 inverted index over token lists; see the module docstring for variants.

    ``k1``, ``b``, ``delta`` (bm25l, bm25+) and ``epsilon`` (okapi) default per variant to the
    values of the implementation it follows (``VARIANTS``); the resolved values are ``params``.
    Searches may run from several threads (the kernels hold the GIL, so they take turns on the
    shared scratch buffers); writes must not run concurrently with anything else.
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
            name: check_number(given[name], name, lo=_PARAM_RANGES[name][0],
                               hi=_PARAM_RANGES[name][1])
            if given[name] is not None else float(v)
            for name, v in defaults.items()
        }
        self.variant = variant
        self.params = params
        self.extra: dict[str, Any] | None = None
        self._vocab: dict[str, int] = {}
        self._indptr = np.zeros(1, dtype=np.int64)
        self._docs = np.zeros(0, dtype=np.int32)
        self._tfs = np.zeros(0, dtype=np.int32)
        self._impacts = np.zeros(0, dtype=np.float32)
        self._absent = np.zeros(0, dtype=np.float32)
        self._doc_len = np.zeros(0, dtype=np.int32)
        self._live = np.zeros(0, dtype=bool)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._stale = False
        self._positive: bool | None = True  # every impact > 0 (None: not known yet)
        self._scratch: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ writes

    def add(self, token_lists: Sequence[Sequence[str]]) -> np.ndarray:
        """Index documents given as token lists; returns their new ids (int64, consecutive)."""
        _check_tokens(token_lists, "documents", each=False)
        start = self._doc_len.shape[0]
        n = len(token_lists)
        lens = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=n)
        if start + n > np.iinfo(np.int32).max:
            raise ValueError("BM25Index holds at most 2**31 - 1 documents")
        vocab = self._vocab
        flat = list(chain.from_iterable(token_lists))
        try:
            distinct = dict.fromkeys(flat)
        except TypeError:  # an unhashable token
            distinct = None
        if distinct is None or not all(isinstance(t, str) for t in distinct):
            _raise_bad_token(token_lists, "documents")  # before the vocabulary changes
        for term in distinct:
            if term not in vocab:
                vocab[term] = len(vocab)
        term_ids = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
        if flat:
            width = len(vocab)
            local = np.repeat(np.arange(n, dtype=np.int64), lens)
            keys, tfs = np.unique(local * width + term_ids, return_counts=True)
            self._pending.append(
                ((keys % width).astype(np.int32), (start + keys // width).astype(np.int32),
                 tfs.astype(np.int32))
            )
        self._doc_len = np.concatenate([self._doc_len, lens.astype(np.int32)])
        self._live = np.concatenate([self._live, np.ones(n, dtype=bool)])
        self._stale = True
        return np.arange(start, start + n, dtype=np.int64)

    def delete(self, ids: Iterable[int]) -> None:
        """Remove live documents by id; KeyError (nothing removed) if any id is not live,
        ValueError for an id given twice, TypeError for anything but integers."""
        ids = unique_ids(ids)
        bad = ids[(ids < 0) | (ids >= self._live.shape[0])]
        if bad.size == 0:
            bad = ids[~self._live[ids]]
        if bad.size:
            raise KeyError(f"not live document ids: {bad[:10].tolist()}")
        if ids.size:
            live = np.array(self._live)  # copy: the current array may be a read-only memory map
            live[ids] = False
            self._live = live
            self._stale = True

    def checkpoint(self) -> tuple:
        """An opaque token of the current state, for :meth:`rollback` (O(1): writes replace
        the arrays they change rather than modifying them)."""
        return (len(self._vocab), self._indptr, self._docs, self._tfs, self._impacts,
                self._absent, self._doc_len, self._live, list(self._pending), self._stale,
                self._positive)

    def rollback(self, token: tuple) -> None:
        """Undo every write since :meth:`checkpoint` returned ``token``."""
        n_vocab, *arrays, pending, stale, positive = token
        for term in list(self._vocab)[n_vocab:]:
            del self._vocab[term]
        (self._indptr, self._docs, self._tfs, self._impacts, self._absent, self._doc_len,
         self._live) = arrays
        self._pending, self._stale, self._positive = list(pending), stale, positive

    # ------------------------------------------------------------------ statistics

    def _refresh(self) -> None:
        """Rebuild live postings and impacts after writes (no-op when nothing changed)."""
        if not self._stale:
            return
        with self._lock:  # two searches right after a write must not both rebuild
            if self._stale:
                self._rebuild()

    def _rebuild(self) -> None:
        n_terms = len(self._vocab)
        counts = np.diff(self._indptr)
        terms = [np.repeat(np.arange(counts.shape[0], dtype=np.int32), counts)]
        docs, tfs = [self._docs], [self._tfs]
        for t, d, f in self._pending:
            terms.append(t)
            docs.append(d)
            tfs.append(f)
        terms_all = np.concatenate(terms)
        docs_all = np.concatenate(docs)
        tfs_all = np.concatenate(tfs)
        keep = self._live[docs_all]
        if not keep.all():
            terms_all, docs_all, tfs_all = terms_all[keep], docs_all[keep], tfs_all[keep]
        if self._pending:
            # Stable: within a term, committed docs then each pending batch, all ascending.
            order = np.argsort(terms_all, kind="stable")
            docs_all, tfs_all = docs_all[order], tfs_all[order]
        self._docs = docs_all
        self._tfs = tfs_all
        df = np.bincount(terms_all, minlength=n_terms)
        self._indptr = np.zeros(n_terms + 1, dtype=np.int64)
        np.cumsum(df, out=self._indptr[1:])
        self._pending = []
        self._compute_impacts(df)
        self._stale = False

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

    def _compute_impacts(self, df: np.ndarray) -> None:
        n = int(self._live.sum())
        total = int(self._doc_len[self._live].sum(dtype=np.int64)) if n else 0
        avgdl = total / n if total else 1.0
        idf = self._idf(df, n)
        p = self.params
        self._impacts = _k.compute_impacts(
            self._indptr, self._docs, self._tfs, idf, self._doc_len, avgdl, p["k1"], p["b"],
            p.get("delta", 0.0), _CODES[self.variant],
        )
        absent = idf * p["delta"] if self.variant == "bm25+" else np.zeros_like(idf)
        self._absent = absent.astype(np.float32)
        self._positive = self._all_positive()

    def _all_positive(self) -> bool:
        """Whether every impact is > 0 (the fast search path's precondition)."""
        return bool(self._impacts.size == 0 or self._impacts.min() > 0)

    def _buffer(self, name: str, size: int, dtype: type) -> np.ndarray:
        """A zeroed scratch array kept between searches (kernels leave it clean)."""
        buf = self._scratch.get(name)
        if buf is None or buf.shape[0] != size:
            buf = self._scratch[name] = np.zeros(size, dtype=dtype)
        return buf

    # ------------------------------------------------------------------ reads

    def __len__(self) -> int:
        return int(self._live.sum())

    def _live_count(self) -> int:
        """``len(self)``, cached per live mask (search needs it on every call)."""
        cached = getattr(self, "_n_live_cache", None)
        if cached is None or cached[0] is not self._live:
            cached = self._n_live_cache = (self._live, len(self))
        return cached[1]

    @property
    def n_terms(self) -> int:
        """Number of distinct terms ever added (including ones now only in deleted documents)."""
        return len(self._vocab)

    @property
    def vocabulary(self) -> Mapping[str, int]:
        """Read-only term -> term id map of every term ever added (``term in index.vocabulary``;
        includes terms now only in deleted documents, like :attr:`n_terms`)."""
        return MappingProxyType(self._vocab)

    @property
    def nbytes(self) -> int:
        """Bytes held by the index arrays (postings, impacts, lengths; not the term dict)."""
        self._refresh()
        arrays = (self._indptr, self._docs, self._tfs, self._impacts, self._absent,
                  self._doc_len, self._live)
        return int(sum(a.nbytes for a in arrays))

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
        few documents it allows.
        """
        _check_tokens(token_lists, "queries")
        if allowed is not None:
            allowed = check_allowed(allowed, self._doc_len.shape[0])
        self._refresh()
        k = check_search_k(k, self._live_count())
        n_q = len(token_lists)
        get = self._vocab.get
        q_terms: list[int] = []
        q_ptr = np.zeros(n_q + 1, dtype=np.int64)
        for i, tokens in enumerate(token_lists):
            for tok in tokens:
                tid = get(tok)
                if tid is not None:
                    q_terms.append(tid)
            q_ptr[i + 1] = len(q_terms)
        if not q_terms or k == 0:
            return empty_result(n_q, k)
        n_docs = self._doc_len.shape[0]
        terms = np.array(q_terms, dtype=np.int32)
        if self._positive is None:
            self._positive = self._all_positive()
        touched = self._buffer("touched", n_docs, np.int32)
        if allowed is not None and not (self._positive and self._mask_is_cheaper(terms, allowed)):
            # few allowed documents (or impacts that may be <= 0): intersect or skip postings
            ids, scores = _k.search_allowed(
                self._indptr, self._docs, self._impacts, self._absent, q_ptr, terms, k,
                self._buffer("acc", max(_BLOCK_DOCS, -(-n_docs // _k.CHUNK) * _k.CHUNK),
                             np.float32),
                self._buffer("seen", n_docs, np.uint8), touched,
                allowed.view(np.uint8), np.flatnonzero(allowed).astype(np.int64),
            )
            return SearchResult(ids, scores)
        # Room for the last block's scan chunk past n_docs, and for a whole block.
        acc = self._buffer("acc", max(_BLOCK_DOCS, -(-n_docs // _k.CHUNK) * _k.CHUNK), np.float32)
        if self._positive:
            if allowed is None:
                allowed = self._scratch.get("all")
                if allowed is None or allowed.shape[0] != n_docs:
                    allowed = self._scratch["all"] = np.ones(n_docs, dtype=bool)
            ids, scores = _k.search_positive(
                self._indptr, self._docs, self._impacts, self._absent, q_ptr, terms, k, acc,
                touched, _BLOCK_DOCS, _k.CHUNK, _SPARSE_RATIO, allowed.view(np.uint8),
            )
        else:
            ids, scores = _k.search_batch(
                self._indptr, self._docs, self._impacts, self._absent, q_ptr, terms, k,
                acc[:n_docs], self._buffer("seen", n_docs, np.uint8), touched,
            )
        return SearchResult(ids, scores)

    def _mask_is_cheaper(self, terms: np.ndarray, allowed: np.ndarray) -> bool:
        """Whether scoring every posting and skipping disallowed documents (the fast path's
        cost: the postings) beats intersecting postings with the allowed rows (per term about
        ``min(df, m) * (2 + log2(max / min))`` galloping steps, each weighed as 4 postings:
        measured on 200,000 documents), over the whole batch."""
        m = int(np.count_nonzero(allowed))
        df = (self._indptr[terms + 1] - self._indptr[terms]).astype(np.float64)
        short = np.minimum(df, m)
        steps = short * (2.0 + np.log2(np.maximum(df, m) / np.maximum(short, 1.0)))
        return bool(4.0 * steps.sum() >= df.sum())

    def explain(self, query_tokens: Sequence[str], doc_id: int) -> list[tuple[str, float]]:
        """Per-term score contributions of one live document, largest first.

        Each distinct query term appears once with its contribution times its count in the
        query; terms contributing nothing are left out. The values sum to the document's score
        (up to float32 rounding).
        """
        if isinstance(query_tokens, str):
            raise TypeError("query_tokens must be a list of tokens, not a string")
        _check_tokens([query_tokens], "query_tokens")
        self._refresh()
        if not is_int(doc_id):
            kind = type(doc_id).__name__
            raise TypeError(f"doc_id must be an integer, got {kind} {short(doc_id)}")
        doc_id = int(doc_id)
        if not 0 <= doc_id < self._live.shape[0] or not self._live[doc_id]:
            raise KeyError(f"{doc_id} is not a live document id")
        out: list[tuple[str, float]] = []
        for term, count in Counter(query_tokens).items():
            tid = self._vocab.get(term)
            if tid is None:
                continue
            lo, hi = self._indptr[tid], self._indptr[tid + 1]
            pos = lo + int(np.searchsorted(self._docs[lo:hi], doc_id))
            value = float(self._absent[tid])
            if pos < hi and self._docs[pos] == doc_id:
                value += float(self._impacts[pos])
            elif value == 0.0:
                continue
            out.append((term, count * value))
        out.sort(key=lambda tv: (-tv[1], tv[0]))
        return out

    # ------------------------------------------------------------------ persistence

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write the index as .npy arrays + terms.json + meta.json; ``extra`` must be JSON-able."""
        extra = self.extra if extra is None else extra
        json.dumps(extra)  # fail before writing anything
        try:
            terms = json.dumps(list(self._vocab), ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"a term of the index cannot be stored as UTF-8: {exc}") from exc
        self._refresh()
        path = write_meta(
            path, KIND, FORMAT_VERSION, variant=self.variant, params=self.params,
            n_terms=len(self._vocab), positive_impacts=self._positive, extra=extra,
        )
        arrays = {
            "indptr": self._indptr, "docs": self._docs, "tfs": self._tfs,
            "impacts": self._impacts, "absent": self._absent, "doc_len": self._doc_len,
            "live": self._live,
        }
        # Write beside and rename over: the old files may be memory-mapped by this very index.
        for name, arr in arrays.items():
            tmp = path / f"{name}.npy.tmp"
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(arr))
            os.replace(tmp, path / f"{name}.npy")
        (path / "terms.json").write_bytes(terms)
        return path

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> BM25Index:
        """Open a saved index; arrays are memory-mapped read-only unless ``mmap=False``."""
        path = Path(path)
        meta = read_meta(path, KIND, FORMAT_VERSION)
        missing = [f"{n}.npy" for n in _ARRAYS if not (path / f"{n}.npy").is_file()]
        if not (path / "terms.json").is_file():
            missing.append("terms.json")
        if missing:
            raise IndexCorruptedError(f"{path} is missing {missing}")
        try:
            index = cls(meta["variant"], **meta["params"])
        except (KeyError, TypeError, ValueError) as exc:
            raise IndexFormatError(f"{path}: bad BM25 parameters in meta.json: {exc}") from exc
        try:
            terms = json.loads((path / "terms.json").read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IndexCorruptedError(f"{path / 'terms.json'} is not valid JSON: {exc}") from exc
        if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
            raise IndexCorruptedError(f"{path / 'terms.json'} is not a list of terms")
        index._vocab = {t: i for i, t in enumerate(terms)}
        if len(index._vocab) != len(terms):
            raise IndexCorruptedError(f"{path / 'terms.json'} repeats a term")
        arrays = {n: load_array(path / f"{n}.npy", _DTYPES[n], mmap=mmap) for n in _ARRAYS}
        _check_arrays(path, arrays, len(terms))
        index._indptr, index._docs, index._tfs = arrays["indptr"], arrays["docs"], arrays["tfs"]
        index._impacts, index._absent = arrays["impacts"], arrays["absent"]
        index._doc_len, index._live = arrays["doc_len"], arrays["live"]
        index.extra = meta.get("extra")
        positive = meta.get("positive_impacts")
        index._positive = positive if isinstance(positive, bool) else None  # None: check later
        return index

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v:g}" for k, v in self.params.items())
        return f"BM25Index(variant={self.variant!r}, {params}, docs={len(self)})"


def _check_arrays(path: Path, a: dict[str, np.ndarray], n_terms: int) -> None:
    """Shapes and ranges the search kernels rely on (so damage cannot crash them)."""
    if a["indptr"].shape[0] != n_terms + 1:
        raise IndexCorruptedError(f"{path / 'indptr.npy'} does not match terms.json")
    n_post = a["docs"].shape[0]
    for name in ("tfs", "impacts"):
        if a[name].shape[0] != n_post:
            raise IndexCorruptedError(f"{path / (name + '.npy')}: length differs from docs.npy")
    if a["absent"].shape[0] != n_terms:
        raise IndexCorruptedError(f"{path / 'absent.npy'}: length differs from terms.json")
    n_docs = a["doc_len"].shape[0]
    if a["live"].shape[0] != n_docs:
        raise IndexCorruptedError(f"{path / 'live.npy'}: length differs from doc_len.npy")
    check_pointers(a["indptr"], n_post, path / "indptr.npy", "the term pointers")
    check_range(a["docs"], 0, n_docs, path / "docs.npy", "document ids")
    check_range(a["doc_len"], 0, np.iinfo(np.int32).max, path / "doc_len.npy", "lengths")
