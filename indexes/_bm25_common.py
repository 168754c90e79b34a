"""What the parts of :class:`indexes.bm25.BM25Index` share (private): the state a search reads,
the checks of token lists, the read-only views every kernel argument takes, and the kernels'
block sizes and thresholds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np

from indexes._bm25_io import _Segment
from indexes._validate import short

_BLOCK_DOCS = 16_384  # documents per accumulator block (64 KiB of float32), a multiple of CHUNK
_SPARSE_RATIO = 32  # a query with fewer than n_docs / _SPARSE_RATIO postings tracks touched docs
_SELECTIVE_RATIO = 32
_GALLOP_RATIO = 4


@dataclass(frozen=True)
class _State:
    """What searches read, published whole by each write (a search keeps the one it started
    with): segments, IDF per term, the per-document scoring value (negative: deleted), BM25+
    offsets per term, and whether every contribution is > 0."""

    segments: tuple[_Segment, ...]
    idf: np.ndarray
    dn: np.ndarray
    absent: np.ndarray
    positive: bool
    avgdl: float = 1.0
    impacts: tuple[np.ndarray, ...] | None = None  # per segment, once precomputed
    stale: _Stale | None = None  # the last precomputed impacts, while these are not


@dataclass(frozen=True)
class _Stale:
    """Impacts precomputed for older statistics, kept by the writes that made them stale:
    rescaled per term they bound the current scores of the segments they cover, so a search
    before the next precomputation can find candidates with them and score only those exactly
    (``BM25Index._search_stale``)."""

    impacts: dict[int, np.ndarray]  # id(segment) -> its impacts (segments are immutable)
    segments: tuple[_Segment, ...]  # keeps those segments alive, so their ids stay unique
    idf: np.ndarray  # the IDF the impacts were computed with
    avgdl: float  # and the average length
    scale: np.ndarray  # float32 per term: current IDF / the IDF the impacts were computed with
    bound: float  # every current tf part <= bound x the stale one (average length change)


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


def _ro(a: np.ndarray) -> np.ndarray:
    """A read-only view: every array reaching a search kernel has one type whether it was
    built in memory or memory-mapped, so one compiled specialisation serves both (a new one
    would be compiled or loaded from numba's cache on first use, milliseconds)."""
    v = a.view()
    v.flags.writeable = False
    return v


_NO_IMPACTS = _ro(np.zeros(0, dtype=np.float32))  # contributions computed at query time
_NO_MASK = _ro(np.zeros(0, dtype=np.uint8))  # every document allowed
_NO_SCALE = _ro(np.zeros(0, dtype=np.float32))  # impacts as they are


def _concat_forward(parts) -> tuple[np.ndarray, np.ndarray]:
    """Forward indexes (ptr, terms, keep) of adjacent segments, concatenated; dropped documents
    keep an empty slot. Written into one preallocated array (no per-part copies, and no
    per-posting mask where a part keeps every document), so a merge's peak memory is the
    merged forward index once."""
    lens = [np.diff(ptr) * keep.astype(bool) for ptr, _, keep in parts]
    ptr_out = np.zeros(1 + sum(len(x) for x in lens), dtype=np.int64)
    np.cumsum(np.concatenate(lens) if lens else np.zeros(0, np.int64), out=ptr_out[1:])
    out = np.empty(int(ptr_out[-1]), dtype=np.int32)
    o = 0
    for (ptr, fwd_terms, keep), kept in zip(parts, lens, strict=True):
        n = int(kept.sum())
        if keep.all():
            out[o : o + n] = fwd_terms[:n]
        else:
            out[o : o + n] = fwd_terms[np.repeat(keep.astype(bool), np.diff(ptr))]
        o += n
    return ptr_out, out
