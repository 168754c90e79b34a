"""Evidence that sees the documents: which part of a collection a lexical retriever can match.

A lexical retriever (BM25, SPLADE) matches the surface forms of a query, so it can only find
documents written in the query's script, and its scores mean something only for text its
tokenizer reads intact. An English SPLADE model reads an English query perfectly and still
cannot match a Korean collection, which its WordPiece vocabulary cuts into jamo; BM25 matches an
English query to the few Latin names and numbers that Korean documents hold.

:class:`CollectionStats` keeps, per document a retriever holds, its dominant script and how many
of its characters the retriever reads intact, with running totals updated on add and delete. At
query time :func:`document_reach` turns them into a factor in [0, 1] per query: how much of the
collection, and of the documents a script-free retriever ranks first for the query, is written
in the query's script and read intact. The adaptive fusion multiplies it into each lexical
retriever's query-only evidence (:meth:`hybrid.engine.retrievers.Retriever.evidence`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from hybrid.engine.scripts import (
    _dominant,
    _intact,
    query_profiles,
)
from hybrid.engine.standouts import (
    NO_SCRIPT,
    Reference,
    script_standouts,
    standout_reach,
)
from hybrid.engine.standouts import reference_lists as reference_lists  # re-exported

STATS_FILE = "collection_stats.npz"
EVIDENCE_VERSION = 5
"""Bumped when the evidence measures change: cached candidate sets measured with another
version measure their evidence again (:func:`hybrid.eval.retrieve_candidates`)."""

EXPLAIN_MIN_EVIDENCE = 0.05
"""Below this evidence a retriever's token or term lines are not shown as explaining a hit (its
matches for that query are noise: an English SPLADE model matching jamo of a Korean text).
Display only: the ranking uses the evidence as it is."""


class CollectionStats:
    """Per-document script and readability of the documents one retriever holds.

    Row ``i`` describes the document with internal id ``i``: its dominant script (a code into
    ``scripts``; :data:`NO_SCRIPT` without letters), its non-space characters and how many of
    them the retriever reads intact. Running totals over the live documents (documents per
    script, characters, intact characters) are updated on :meth:`add` and :meth:`delete`, so
    the shares a query needs cost a lookup.
    """

    def __init__(self) -> None:
        self.scripts: list[str] = []
        self.doc_script = np.zeros(0, dtype=np.int32)
        self.chars = np.zeros(0, dtype=np.int64)
        self.intact = np.zeros(0, dtype=np.int64)
        self.live = np.zeros(0, dtype=bool)
        self.docs_per_script = np.zeros(0, dtype=np.int64)
        self.no_script_docs = 0
        self.total_chars = 0
        self.total_intact = 0

    def __len__(self) -> int:
        """Live documents (counted once per state of :attr:`live`, which writes replace)."""
        live = self.live
        cached = self.__dict__.get("_n_live")
        if cached is None or cached[0] is not live:
            cached = (live, int(live.sum()))
            self._n_live = cached
        return cached[1]

    @property
    def n_rows(self) -> int:
        return int(self.live.shape[0])

    def copy(self) -> CollectionStats:
        """An independent copy (writes replace the arrays, so they are shared safely)."""
        out = CollectionStats()
        out.__dict__.update(self.__dict__)
        out.scripts = list(self.scripts)
        return out

    # -- writes ------------------------------------------------------------------------------------

    def add(
        self, texts: Sequence[str], known: Callable[[list[str]], dict[str, bool]] | None = None
    ) -> None:
        """Describe new documents, appended as the next rows (internal ids) in order.

        ``known`` tells which characters the retriever's tokenizer reads intact (see
        :func:`intact_characters`); None: all of them (an analyzer that reads every script).
        """
        codes = np.empty(len(texts), dtype=np.int32)
        chars = np.empty(len(texts), dtype=np.int64)
        intact = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            counts = Counter(text)
            codes[i] = self._code(_dominant(counts))
            chars[i], intact[i] = _intact(counts, known)
        self.doc_script = np.concatenate([self.doc_script, codes])
        self.chars = np.concatenate([self.chars, chars])
        self.intact = np.concatenate([self.intact, intact])
        self.live = np.concatenate([self.live, np.ones(len(texts), dtype=bool)])
        self._count(codes, chars, intact, +1)

    def delete(self, rows: Iterable[int] | np.ndarray) -> None:
        """Take documents out of the totals (rows already deleted or unknown are ignored)."""
        rows = np.unique(
            np.asarray(
                list(rows) if not isinstance(rows, np.ndarray) else rows, dtype=np.int64
            ).ravel()
        )
        rows = rows[(rows >= 0) & (rows < self.n_rows)]
        rows = rows[self.live[rows]]
        if rows.size == 0:
            return
        live = self.live.copy()
        live[rows] = False
        self.live = live
        self._count(self.doc_script[rows], self.chars[rows], self.intact[rows], -1)

    def _code(self, script: str | None) -> int:
        if script is None:
            return NO_SCRIPT
        if script not in self.scripts:
            self.scripts.append(script)
            self.docs_per_script = np.concatenate([self.docs_per_script, [0]])
        return self.scripts.index(script)

    def _count(self, codes: np.ndarray, chars: np.ndarray, intact: np.ndarray, sign: int) -> None:
        has = codes >= 0
        counts = np.bincount(codes[has], minlength=len(self.scripts))
        self.docs_per_script = self.docs_per_script + sign * counts
        self.no_script_docs += sign * int((~has).sum())
        self.total_chars += sign * int(chars.sum())
        self.total_intact += sign * int(intact.sum())

    # -- reads -------------------------------------------------------------------------------------

    def script_share(self, script: str | None) -> float:
        """Share of the live documents whose dominant script is ``script`` (documents without
        letters count for every script; 1.0 for a query without letters; 0 when empty)."""
        n = len(self)
        if n == 0:
            return 0.0
        if script is None:
            return 1.0
        code = self.scripts.index(script) if script in self.scripts else None
        same = 0 if code is None else int(self.docs_per_script[code])
        return (same + self.no_script_docs) / n

    def intact_share(self) -> float:
        """Share of the live documents' non-space characters the retriever reads intact."""
        return self.total_intact / self.total_chars if self.total_chars else 1.0

    def row_scripts(self, rows: np.ndarray) -> np.ndarray:
        """Script codes of some rows (``-2`` for padding ``-1`` or rows out of range)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.n_rows == 0:
            return np.full(rows.shape, -2, dtype=np.int32)
        ok = (rows >= 0) & (rows < self.n_rows)
        return np.where(ok, self.doc_script.take(rows, mode="clip"), np.int32(-2))

    # -- persistence -------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the per-document arrays (the totals are recomputed on load)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            np.savez(
                f,
                scripts=np.array(json.dumps(self.scripts)),
                doc_script=self.doc_script,
                chars=self.chars,
                intact=self.intact,
                live=self.live,
            )
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> CollectionStats:
        with np.load(Path(path)) as z:
            stats = cls()
            stats.scripts = list(json.loads(str(z["scripts"])))
            stats.doc_script = z["doc_script"].astype(np.int32)
            stats.chars = z["chars"].astype(np.int64)
            stats.intact = z["intact"].astype(np.int64)
            stats.live = z["live"].astype(bool)
        n = stats.n_rows
        if not all(a.shape == (n,) for a in (stats.doc_script, stats.chars, stats.intact)):
            raise ValueError(f"{path}: collection statistics arrays differ in length")
        stats.docs_per_script = np.zeros(len(stats.scripts), dtype=np.int64)
        live = stats.live
        stats._count(stats.doc_script[live], stats.chars[live], stats.intact[live], +1)
        return stats

    def totals(self) -> dict[str, Any]:
        """The running totals, for tests and reports."""
        return {
            "documents": len(self),
            "per_script": {
                s: int(n) for s, n in zip(self.scripts, self.docs_per_script, strict=True)
            },
            "no_script": self.no_script_docs,
            "chars": self.total_chars,
            "intact": self.total_intact,
        }


# -- query time ------------------------------------------------------------------------------------


REACH_MEASURES = ("share", "standout")
"""How :func:`document_reach` judges, from the reference lists, whether a query's answers are in
its script: ``"share"`` (the default) the share of their top :data:`SHARE_DEPTH` documents in the
query's script; ``"standout"`` :func:`standout_reach` (each script's best standardised within its
own script: solves the bilingual news pool but cuts BM25 on the AutoRAG + Belebele pool; see the
README)."""
SHARE_DEPTH = 100
"""How many of a reference list's best documents the ``"share"`` reach looks at (the fusion
depth: the documents that can enter the fused ranking)."""


def document_reach(
    stats: CollectionStats | None,
    scripts: Sequence[str | None],
    reference: Reference | None = None,
    crossing: np.ndarray | None = None,
    measure: str = "share",
) -> np.ndarray:
    """How much of what a query needs a script-bound retriever can match, per query, in [0, 1].

    The share of the collection's characters the retriever reads intact (1 for an analyzer that
    reads every script; 0.12 for an English WordPiece SPLADE over Korean news) times
    ``p + (1 - p) x crossing``: ``p`` says whether the answers are in the query's dominant
    script (``scripts``, from :func:`query_scripts`), ``crossing`` (:func:`crossing_share`,
    None: 0) how much of the query can still match documents in another script. ``p`` from a
    ``reference`` (retrievers not bound to a script), averaged over its lists, by ``measure``
    (:data:`REACH_MEASURES`); without one, the share of the collection in the query's script.
    A query without letters, and a document without letters, match any script. No statistics
    (None): 1, the query alone decides, as before.
    """
    if measure not in REACH_MEASURES:
        raise ValueError(f"measure must be one of {REACH_MEASURES}, got {measure!r}")
    if stats is None:
        return np.ones(len(scripts))
    code = _query_codes(stats, scripts)
    shares = {s: stats.script_share(s) for s in set(scripts)}
    share = np.array([shares[s] for s in scripts], dtype=np.float64)  # the collection's
    if reference is not None and len(scripts):
        for ids, scores in zip(reference.ids, reference.scores, strict=True):
            if ids.shape[0] != len(scripts) or scores.shape != ids.shape:
                raise ValueError(
                    f"reference lists hold {ids.shape[0]} queries, scripts {len(scripts)} "
                    f"(ids {ids.shape}, scores {scores.shape})"
                )
        if measure == "share":
            rows = np.concatenate([ids[:, :SHARE_DEPTH] for ids in reference.ids], axis=1)
            _reference_share(stats.doc_script, rows.astype(np.int64, copy=False), code, share)
        else:
            parts = []
            for ids, scores in zip(reference.ids, reference.scores, strict=True):
                same, other, _ = script_standouts(stats.row_scripts(ids), scores, code)
                parts.append(standout_reach(same, other))
            share = np.mean(parts, axis=0)
    if crossing is not None:
        crossing = np.asarray(crossing, dtype=np.float64)
        if crossing.shape != share.shape:
            raise ValueError(f"crossing must hold {share.shape[0]} values, got {crossing.shape}")
        share = share + (1.0 - share) * np.clip(crossing, 0.0, 1.0)
    share[code == NO_SCRIPT] = 1.0  # a query without letters
    return stats.intact_share() * share


@njit(cache=True, nogil=True)
def _reference_share(doc_script, reference, code, share):
    """``share[q]`` = the share of query ``q``'s reference rows (padding and unknown rows left
    out) whose script is the query's or none; unchanged where no row counts, 1 for a query
    without letters (``code`` :data:`NO_SCRIPT`)."""
    n_rows = doc_script.shape[0]
    for q in range(reference.shape[0]):
        if code[q] == NO_SCRIPT:
            share[q] = 1.0
            continue
        n = 0
        same = 0
        for r in reference[q]:
            if 0 <= r < n_rows:
                s = doc_script[r]
                n += 1
                if s == code[q] or s == NO_SCRIPT:
                    same += 1
        if n > 0:
            share[q] = same / n


def _query_codes(stats: CollectionStats, scripts: Sequence[str | None]) -> np.ndarray:
    """Script codes of the queries in ``stats`` (:data:`NO_SCRIPT`: no letters; ``-3``: a
    script no document has)."""
    codes = {s: stats.scripts.index(s) if s in stats.scripts else -3 for s in set(scripts)}
    return np.array([NO_SCRIPT if s is None else codes[s] for s in scripts], dtype=np.int32)


def describe_reach(
    stats: CollectionStats,
    script: str | None,
    value: float,
    reference: Reference | None = None,
    crossing: float = 0.0,
    measure: str = "share",
) -> str:
    """One query's reach in words, for explanations (``reference``: that query's reference
    lists, :meth:`Reference.rows`; None: the whole collection; ``crossing``: its
    :func:`crossing_share`)."""
    intact = stats.intact_share()
    if script is None:
        where = "the query has no letters, so every document is in reach"
    elif reference is None:
        share = stats.script_share(script)
        where = f"{share:.0%} of its documents are in the query's script ({script.title()})"
    elif measure == "share":
        code = _query_codes(stats, [script])
        parts = []
        for name, ids in zip(reference.names, reference.ids, strict=True):
            one = np.array([stats.script_share(script)])
            rows = np.asarray(ids[:1, :SHARE_DEPTH], dtype=np.int64)
            _reference_share(stats.doc_script, rows, code[:1], one)
            parts.append(
                f"{one[0]:.0%} of {name}'s top {min(ids.shape[1], SHARE_DEPTH)} are in the "
                f"query's script ({script.title()})"
            )
        where = "; ".join(parts)
    else:
        where = "; ".join(
            _describe_standout(stats, script, name, ids, scores)
            for name, ids, scores in zip(
                reference.names, reference.ids, reference.scores, strict=True
            )
        )
    if script is not None and crossing > 0:
        where += (
            f"; {crossing:.0%} of the query (digits, other scripts' letters) can match "
            "documents in other scripts"
        )
    if intact < 1.0:
        where = f"it reads {intact:.0%} of the collection's characters intact; {where}"
    return f"{where}: reach {value:.2f}"


def _describe_standout(
    stats: CollectionStats, script: str, name: str, ids: np.ndarray, scores: np.ndarray
) -> str:
    code = _query_codes(stats, [script])
    codes = stats.row_scripts(ids)
    same, other, other_code = (a[0] for a in script_standouts(codes, scores, code))
    valid = (codes[0] >= NO_SCRIPT) & np.isfinite(np.asarray(scores[0], dtype=np.float64))
    depth = f"{name}'s top {ids.shape[1]}"
    mine = script.title()
    if np.isneginf(same):
        return f"{depth} holds no document in the query's script ({mine})"

    def part(value: float, label: str, members: int, first: bool) -> str:
        noun = "document" if first else "one"
        if members < 2:
            return f"the only {label} {noun} stands {value:.1f} sd above the list's mean"
        return f"the best {label} {noun} stands {value:.1f} sd above the other {label} ones"

    n_same = int(np.count_nonzero(valid & ((codes[0] == code[0]) | (codes[0] == NO_SCRIPT))))
    text = f"in {depth}, " + part(same, mine, n_same, True)
    if np.isneginf(other):
        return f"{text}, and no other script is there"
    theirs = stats.scripts[int(other_code)].title()
    n_other = int(np.count_nonzero(valid & (codes[0] == other_code)))
    return f"{text}, " + part(other, theirs, n_other, False)


def measure_evidence(
    retriever: Any,
    queries: Sequence[str],
    encoded: Any,
    name: str | None = None,
    reference: Reference | None = None,
    scripts: Sequence[str | None] | None = None,
    crossing: np.ndarray | None = None,
    measure: str = "share",
) -> tuple[np.ndarray, np.ndarray]:
    """A retriever's evidence for each query in two parts, ``(read, reach)``: the product is
    what ``"adaptive"`` fusion weighs it by.

    ``read``: :meth:`~hybrid.engine.retrievers.Retriever.evidence`, measured on the query alone.
    ``reach``: for script-bound retrievers, :func:`document_reach` of the collection it holds,
    with the ``reference`` lists (:func:`reference_lists`) where available (1 for other
    retrievers, and for script-bound ones without statistics). ``scripts`` and ``crossing``:
    :func:`query_profiles` of the queries when the caller has them already.
    """
    n_q = len(queries)
    read = np.asarray(retriever.evidence(queries, encoded), dtype=np.float64)
    if read.shape != (n_q,) or not np.all((read >= 0) & (read <= 1)):
        label = name or getattr(retriever, "kind", type(retriever).__name__)
        raise ValueError(
            f"retriever {label!r}: evidence must be {n_q} values in [0, 1], got shape {read.shape}"
        )
    if not getattr(retriever, "script_bound", False):
        return read, np.ones(n_q)
    stats = retriever.collection_stats()
    if scripts is None or crossing is None:
        scripts, crossing = query_profiles(queries)
    return read, document_reach(stats, scripts, reference, crossing, measure)
