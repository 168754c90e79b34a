"""The ranked lists a lexical retriever's reach is judged from (:class:`Reference`: those of the
retrievers not bound to a script), and how far the best document of each script stands out of
that script's other documents in such a list (the ``"standout"`` measure of
:func:`hybrid.engine.evidence.document_reach`; pure numpy, the documents' script codes come from
:class:`hybrid.engine.evidence.CollectionStats`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["NO_SCRIPT", "Reference", "reference_lists", "script_standouts", "standout_reach"]

NO_SCRIPT = -1
"""Script code of a text without letters (only digits, punctuation, symbols)."""


@dataclass(frozen=True)
class Reference:
    """The documents retrievers that are not bound to a script (a multilingual dense model)
    ranked first for each query, with their scores: where a query's answers are likely to be.

    ``ids[j]`` and ``scores[j]``: ``(n_queries, m)`` internal ids (``-1`` pads) and scores
    (``-inf`` pads) of retriever ``names[j]``, best first, as deep as it was searched.
    """

    names: tuple[str, ...]
    ids: tuple[np.ndarray, ...]
    scores: tuple[np.ndarray, ...]

    @property
    def label(self) -> str:
        """Who ranked the documents, in words (``"dense's top 1000"``)."""
        return " and ".join(
            f"{n}'s top {a.shape[1]}" for n, a in zip(self.names, self.ids, strict=True)
        )

    def rows(self, q: int) -> Reference:
        """The reference of query ``q`` alone."""
        return Reference(
            self.names,
            tuple(a[q : q + 1] for a in self.ids),
            tuple(s[q : q + 1] for s in self.scores),
        )


def reference_lists(
    retrievers: Mapping[str, Any], results: Mapping[str, tuple[np.ndarray, np.ndarray]]
) -> Reference | None:
    """The ranked lists (``name -> (ids, scores)``, each ``(n_queries, depth)``) of every
    retriever in ``results`` that is not script-bound; None when there is none."""
    names = [n for n in results if not getattr(retrievers[n], "script_bound", False)]
    if not names:
        return None
    return Reference(
        tuple(names),
        tuple(np.asarray(results[n][0], dtype=np.int64) for n in names),
        tuple(np.asarray(results[n][1], dtype=np.float64) for n in names),
    )


def _moments(scores: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per row: members, their mean and standard deviation (``scores`` 0 outside members)."""
    n = np.count_nonzero(member, axis=1)
    x = np.where(member, scores, 0.0)
    count = np.maximum(n, 1)
    mean = x.sum(axis=1) / count
    var = np.maximum(np.einsum("ij,ij->i", x, x) / count - mean**2, 0.0)
    sd = np.sqrt(var)
    spread = sd > 1e-12 * np.maximum(np.abs(mean), 1.0)
    return n, mean, np.where(spread, sd, 0.0)


def _standout(
    scores: np.ndarray, member: np.ndarray, pooled: tuple[np.ndarray, np.ndarray]
) -> np.ndarray:
    """Per row of best-first ``scores``, how many standard deviations the best member score
    lies above the members' mean (``(best - mean) / std`` over the members alone). A script
    with one member, or no spread, has no distribution of its own: its best is measured
    against ``pooled`` (mean, std of the whole list); 0 without any spread; ``-inf`` without
    members."""
    n, mean, sd = _moments(scores, member)
    alone = (n < 2) | (sd == 0)
    mean = np.where(alone, pooled[0], mean)
    sd = np.where(alone, pooled[1], sd)
    rows = np.arange(scores.shape[0])
    best = scores[rows, np.argmax(member, axis=1)]  # the first member is the best
    out = np.zeros(scores.shape[0])
    ok = sd > 0
    out[ok] = (best[ok] - mean[ok]) / sd[ok]
    out[n == 0] = -np.inf
    return out


def script_standouts(
    codes: np.ndarray, scores: np.ndarray, query_codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How far the best document of each script stands out from the other documents of that
    script in one retriever's ranked list, per query.

    ``codes``: ``(n_queries, m)`` script codes of the ranked documents
    (:meth:`CollectionStats.row_scripts`; below :data:`NO_SCRIPT`: padding), ``scores`` their
    scores, ``query_codes`` ``(n_queries,)`` each query's script code. Documents without letters
    join the query's script (a lexical retriever can match them). Returns ``(same, other,
    other_code)``: the standout (:func:`_standout`, in standard deviations of that script's own
    scores) of the query's script, the largest standout of any other script, and that script's
    code (``-2``: none). A retriever that favours documents in the query's language lifts all of
    them alike; standardising within each script leaves that bias out, and what remains is which
    script holds a document the query singles out.
    """
    scores = np.asarray(scores, dtype=np.float64)
    valid = (codes >= NO_SCRIPT) & np.isfinite(scores)
    if scores.size:  # centred on each row's best score: sums of squares stay well conditioned
        top = scores[:, :1]
        scores = np.where(valid, scores - np.where(np.isfinite(top), top, 0.0), 0.0)
    qc = np.asarray(query_codes)[:, None]
    same = valid & ((codes == qc) | (codes == NO_SCRIPT))
    _, *pooled = _moments(scores, valid)
    same_out = _standout(scores, same, pooled)
    other_out = np.full(scores.shape[0], -np.inf)
    other_code = np.full(scores.shape[0], -2, dtype=np.int32)
    rest = valid & ~same
    for code in range(int(codes.max(initial=-1)) + 1):
        member = rest & (codes == code)
        if not member.any():
            continue
        o = _standout(scores, member, pooled)
        better = o > other_out
        other_out[better], other_code[better] = o[better], code
    return same_out, other_out, other_code


def standout_reach(same: np.ndarray, other: np.ndarray) -> np.ndarray:
    """A lexical retriever's reach from :func:`script_standouts`: ``clip(same - other, 0, 1)``.

    1 when the query's script holds the document that stands out by a standard deviation more
    than any other script's best (or when no other script is among the ranked documents), 0 when
    another script's best stands out at least as far (the answer is likely written in a script
    the lexical retriever cannot match), in between linearly.
    """
    with np.errstate(invalid="ignore"):
        diff = same - other
    diff = np.where(np.isneginf(other), 1.0, np.where(np.isneginf(same), 0.0, diff))
    return np.clip(np.nan_to_num(diff, nan=0.0), 0.0, 1.0)
