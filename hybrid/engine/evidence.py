"""Evidence that sees the documents: which part of a collection a lexical retriever can match.

A lexical retriever (BM25, SPLADE) matches the surface forms of a query, so it can only find
documents written in the query's script, and its scores mean something only for text its
tokenizer reads intact. An English SPLADE model reads an English query perfectly and still
cannot match a Korean collection, which its WordPiece vocabulary cuts into jamo; BM25 matches an
English query to the few Latin names and numbers that Korean documents hold.

:class:`CollectionStats` keeps, per document a retriever holds, its dominant script and how many
of its characters the retriever reads intact, with running totals per script updated on add and
delete. At query time :func:`stratum_reach` turns them into two factors in [0, 1] per query: one
for the documents in the query's script, one for the others (:mod:`hybrid.engine.strata`: the
adaptive fusion weighs each stratum by its own factor, and a script-free retriever places the
strata against each other). Each multiplies the retriever's query-only evidence
(:meth:`hybrid.engine.retrievers.Retriever.evidence`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.engine.npz import write_npz
from hybrid.engine.scripts import _dominant, _intact, _profiles
from hybrid.engine.strata import NO_SCRIPT, Strata

STATS_FILE = "collection_stats.npz"
EVIDENCE_VERSION = 7
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
        self.chars_per_script = np.zeros(0, dtype=np.int64)
        self.intact_per_script = np.zeros(0, dtype=np.int64)
        self.no_script_docs = 0
        self.no_script_chars = 0
        self.no_script_intact = 0
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
            for name in ("docs_per_script", "chars_per_script", "intact_per_script"):
                setattr(self, name, np.concatenate([getattr(self, name), [0]]))
        return self.scripts.index(script)

    def _count(self, codes: np.ndarray, chars: np.ndarray, intact: np.ndarray, sign: int) -> None:
        has = codes >= 0
        n = len(self.scripts)

        def per_script(weights: np.ndarray | None) -> np.ndarray:
            w = None if weights is None else weights[has]
            return np.bincount(codes[has], weights=w, minlength=n).astype(np.int64)

        self.docs_per_script = self.docs_per_script + sign * per_script(None)
        self.chars_per_script = self.chars_per_script + sign * per_script(chars)
        self.intact_per_script = self.intact_per_script + sign * per_script(intact)
        self.no_script_docs += sign * int((~has).sum())
        self.no_script_chars += sign * int(chars[~has].sum())
        self.no_script_intact += sign * int(intact[~has].sum())
        self.total_chars += sign * int(chars.sum())
        self.total_intact += sign * int(intact.sum())

    # -- reads -------------------------------------------------------------------------------------

    def intact_share(self) -> float:
        """Share of the live documents' non-space characters the retriever reads intact."""
        return self.total_intact / self.total_chars if self.total_chars else 1.0

    def only_script(self) -> int | None:
        """The one script code every live document has (:data:`NO_SCRIPT`: none has letters),
        None when there are several or none (found once per state of the counts)."""
        counts = self.docs_per_script
        cached = self.__dict__.get("_only")
        if cached is None or cached[0] is not counts or cached[1] != self.no_script_docs:
            present = [c for c, n in enumerate(counts.tolist()) if n > 0]
            if self.no_script_docs > 0:
                present.append(NO_SCRIPT)
            cached = (counts, self.no_script_docs, present[0] if len(present) == 1 else None)
            self._only = cached
        return cached[2]

    def intact_shares(self, script: str | None) -> tuple[float, float]:
        """``(inside, outside)``: the intact share of the characters of the live documents in
        ``script`` (with those without letters), and of all the others. A part without
        characters, and both parts of a query without letters (None), take the whole
        collection's share."""
        per_state = self.__dict__.get("_shares")  # found once per script and state of counts
        if per_state is None or per_state[0] is not self.chars_per_script:
            per_state = self._shares = (self.chars_per_script, {})  # (writes replace the array)
        shares = per_state[1].get(script)
        if shares is None:
            shares = per_state[1][script] = self._intact_shares(script)
        return shares

    def _intact_shares(self, script: str | None) -> tuple[float, float]:
        whole = self.intact_share()
        if script is None:
            return whole, whole
        code = self.scripts.index(script) if script in self.scripts else None
        chars = self.no_script_chars + (0 if code is None else int(self.chars_per_script[code]))
        intact = self.no_script_intact + (0 if code is None else int(self.intact_per_script[code]))
        rest_chars, rest_intact = self.total_chars - chars, self.total_intact - intact
        return (
            intact / chars if chars else whole,
            rest_intact / rest_chars if rest_chars else whole,
        )

    # -- persistence -------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the per-document arrays (the totals are recomputed on load)."""
        return write_npz(
            path,
            scripts=np.array(json.dumps(self.scripts)),
            doc_script=self.doc_script,
            chars=self.chars,
            intact=self.intact,
            live=self.live,
        )

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
        codes = stats.doc_script
        if n and (codes.min() < NO_SCRIPT or codes.max() >= len(stats.scripts)):
            raise ValueError(f"{path}: collection statistics hold unknown script codes")
        for name in ("docs_per_script", "chars_per_script", "intact_per_script"):
            setattr(stats, name, np.zeros(len(stats.scripts), dtype=np.int64))
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


def stratum_reach(
    stats: CollectionStats | None,
    scripts: Sequence[str | None],
    crossing: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """How much a script-bound retriever can match, per query, in each stratum of the collection:
    ``(within, across)``, each ``(n_queries,)`` in [0, 1].

    ``within``: over the documents in the query's dominant script (``scripts``, from
    :func:`query_scripts`) and those without letters, the share of their characters the retriever
    reads intact (1 for an analyzer that reads every script; about 0 for an English WordPiece
    SPLADE over Hangul). ``across``: over the documents in other scripts, their intact share
    times ``crossing`` (:func:`crossing_share`, None: 0), the part of the query that can match
    them at all (its digits and foreign letters). A query without letters is within every
    document. No statistics (None): 1 for both, the query alone decides.
    """
    n = len(scripts)
    if stats is None:
        return np.ones(n), np.ones(n)
    within, across = _reach(stats, scripts, crossing)
    return np.array(within, dtype=np.float64), np.array(across, dtype=np.float64)


def _reach(
    stats: CollectionStats | None, scripts: Sequence[str | None], crossing: Any
) -> tuple[list[float], list[float]]:
    """:func:`stratum_reach` as lists (``crossing`` a list of floats, an array or None)."""
    n = len(scripts)
    if stats is None:
        return [1.0] * n, [1.0] * n
    if crossing is None:
        cross = [0.0] * n
    elif type(crossing) is list and len(crossing) == n:  # as _profiles gives it
        cross = crossing
    else:
        values = np.asarray(crossing, dtype=np.float64)
        if values.shape != (n,):
            raise ValueError(f"crossing must hold {n} values, got shape {values.shape}")
        cross = values.tolist()
    within, across = [], []
    for s, c in zip(scripts, cross, strict=True):
        inside, outside = stats.intact_shares(s)  # (a look-up per script and state)
        within.append(inside)
        # a query without letters is within every document; else outside share x clipped crossing
        across.append(inside if s is None else outside * min(max(c, 0.0), 1.0))
    return within, across


def strata_for(
    retrievers: Mapping[str, Any],
    scripts: Sequence[str | None],
    encoded: Mapping[str, Any] | None = None,
) -> Strata | None:
    """The :class:`~hybrid.engine.strata.Strata` of queries with dominant ``scripts``
    (:func:`query_scripts`) over the documents ``retrievers`` hold: the scripts kept by the first
    script-bound retriever with statistics (every retriever holds the same rows), and the names
    of the retrievers that are not script-bound. None when no retriever keeps statistics.

    ``encoded``: the queries as each retriever encoded them; with it, a collection in several
    scripts also gets each reference retriever's per-script baselines (its
    ``script_baselines``, e.g. :meth:`~hybrid.engine.retrievers.DenseRetriever.script_baselines`).
    """
    stats = None
    names = []  # the reference: retrievers that are not script-bound
    for name, r in retrievers.items():
        if not getattr(r, "script_bound", False):
            names.append(name)
        elif stats is None:
            stats = r.collection_stats()
    if stats is None:
        return None
    known = stats.scripts  # (a script no document has: a code none has)
    codes = [NO_SCRIPT if s is None else known.index(s) if s in known else -3 for s in scripts]
    query = np.array(codes, dtype=np.int32)
    reference = tuple(names)
    only = stats.only_script()
    baselines = {}
    if only is None and encoded:
        for name in reference:
            measure = getattr(retrievers[name], "script_baselines", None)
            if measure is not None and encoded.get(name) is not None:
                value = measure(encoded[name], stats)
                if value is not None:
                    baselines[name] = value
    return Strata(stats.doc_script, query, reference, only, baselines or None)


def describe_reach(
    stats: CollectionStats,
    script: str | None,
    value: float,
    crossing: float = 0.0,
    within: bool = True,
) -> str:
    """One query's reach for one hit in words, for explanations: whether the hit is in the
    query's script (``within``) and what the retriever can read there (``crossing``: the
    query's :func:`crossing_share`)."""
    inside, outside = stats.intact_shares(script)
    if script is None:
        where = "the query has no letters, so every document is in reach"
        intact = inside
    elif within:
        where = f"the document is in the query's script ({script.title()}) or has no letters"
        intact = inside
    else:
        where = (
            f"the document is not in the query's script ({script.title()}); "
            f"{crossing:.0%} of the query (digits, other scripts' letters) can match it"
        )
        intact = outside
    if intact < 1.0:
        where = f"it reads {intact:.0%} of those documents' characters intact; {where}"
    return f"{where}: reach {value:.2f}"


def evidence_parts(
    retriever: Any,
    queries: Sequence[str],
    encoded: Any,
    name: str | None = None,
    scripts: Sequence[str | None] | None = None,
    crossing: Any = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A retriever's evidence for each query in parts and the products fusion weighs by:
    ``(read, within, across, read x within, read x across)``, each ``(n_queries,)``; ``"adaptive"``
    fusion weighs the retriever by ``read x within`` among the documents in the query's script,
    by ``read x across`` among the others.

    ``read``: :meth:`~hybrid.engine.retrievers.Retriever.evidence`, measured on the query alone.
    ``within`` and ``across``: for script-bound retrievers, :func:`stratum_reach` of the
    collection it holds (1 for other retrievers, and for script-bound ones without
    statistics). ``scripts`` and ``crossing``: the queries' profiles
    (:func:`~hybrid.engine.scripts.query_profiles`) when the caller has them already. A
    retriever that is not script-bound gets shared arrays, not copies (within = across = 1, the
    products are ``read``): callers must not write to them."""
    n_q = len(queries)
    read = np.asarray(retriever.evidence(queries, encoded), dtype=np.float64)
    values = read.tolist()
    if read.shape != (n_q,) or not all(0 <= x <= 1 for x in values):  # (NaN is not)
        label = name or getattr(retriever, "kind", type(retriever).__name__)
        raise ValueError(
            f"retriever {label!r}: evidence must be {n_q} values in [0, 1], got shape {read.shape}"
        )
    if not getattr(retriever, "script_bound", False):
        ones = np.ones(n_q)
        return read, ones, ones, read, read
    stats = retriever.collection_stats()
    if scripts is None or crossing is None:
        scripts, crossing = _profiles(queries)
    within, across = _reach(stats, scripts, crossing)
    rows = np.array(  # one array for the four (a search measures every query: few calls)
        [
            within,
            across,
            [r * w for r, w in zip(values, within, strict=True)],
            [r * a for r, a in zip(values, across, strict=True)],
        ],
        dtype=np.float64,
    )
    return read, rows[0], rows[1], rows[2], rows[3]
