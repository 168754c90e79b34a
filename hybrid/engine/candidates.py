"""Candidates: each retriever's top documents for a batch of queries, before fusion.

The one candidate type of the project. The engine retrieves them (:meth:`HybridRetriever.
retrieve`) and explains what it fuses; an evaluation retrieves them once to a depth, caches them
and fuses them under many configurations; tuning fuses them thousands of times. All three turn a
:class:`~hybrid.engine.config.FusionConfig` into :mod:`fusion` arguments through
:meth:`Candidates.fusion_args`, and fuse with :func:`fusion.fuse_padded` (explained hits) or
:class:`fusion.FusionTable` (top-k arrays, many configurations).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import fusion
from fusion.trusted import fuse_trusted
from hybrid.engine.config import FusionConfig
from hybrid.engine.npz import write_npz
from hybrid.engine.strata import Placement, Strata, stratified_fuse
from indexes.base import SearchResult

logger = logging.getLogger("hybrid")

CACHE_FORMAT_VERSION = 1
_CANDS_KIND = "CandidateSet"


@dataclass
class Candidates:
    """Per-retriever candidates of a batch of queries (internal ids), ready to be fused.

    ``results[name]`` holds ``(n_queries, depth)`` int64 ids (``-1`` pads) and matching scores
    (``-inf`` pads). ``queries`` are the queries in order: their texts when the engine
    retrieved them, their ids in an evaluation (``query_ids``). ``encoded`` keeps each
    retriever's query encodings (for explanations), ``evidence`` each retriever's
    ``(n_queries,)`` evidence (:meth:`~hybrid.engine.retrievers.Retriever.evidence`, what
    ``"adaptive"`` fusion weighs by). ``doc_ids`` names the internal ids (an evaluation's
    documents) and ``meta`` records what produced the candidates (dataset, retrievers, depth).
    """

    queries: list[str]
    results: dict[str, SearchResult]
    encoded: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, np.ndarray] = field(default_factory=dict)
    """Retriever name -> ``(n_queries,)`` evidence, filled when a fusion first needs it."""
    doc_ids: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    read: dict[str, np.ndarray] = field(default_factory=dict)
    """The query-only part of the engine's evidence (:meth:`Retriever.evidence`)."""
    reach: dict[str, np.ndarray] = field(default_factory=dict)
    """Its documents' part within the query's script (:func:`hybrid.engine.evidence.
    stratum_reach`; 1 for dense retrievers)."""
    evidence_across: dict[str, np.ndarray] = field(default_factory=dict)
    """Retriever name -> ``(n_queries,)`` evidence over documents in other scripts than the
    query's (:mod:`hybrid.engine.strata`); ``evidence`` is the one within its script."""
    reach_across: dict[str, np.ndarray] = field(default_factory=dict)
    """The documents' part of ``evidence_across``."""
    strata: Strata | None = None
    """The documents' and queries' scripts and the script-free retrievers, when the adaptive
    fusion fuses by script strata (None: one stratum, as for retrievers without statistics)."""
    placements: dict[int, Placement] = field(default_factory=dict)
    """Query position -> how the last fusion by strata placed its scripts (explanations)."""
    evidence_version: int = 1
    """The :data:`hybrid.engine.evidence.EVIDENCE_VERSION` a cached evidence was measured with."""

    @classmethod
    def from_arrays(
        cls,
        query_ids: Sequence[str],
        doc_ids: Sequence[str],
        ids: dict[str, np.ndarray],
        scores: dict[str, np.ndarray],
        meta: dict[str, Any] | None = None,
        evidence: dict[str, np.ndarray] | None = None,
        evidence_across: dict[str, np.ndarray] | None = None,
        strata: Strata | None = None,
    ) -> Candidates:
        """Candidates of an evaluation: query ids, document ids, and per-retriever arrays."""
        results = {n: SearchResult(ids[n], scores[n]) for n in ids}
        return cls(
            list(query_ids),
            results,
            {},
            dict(evidence or {}),
            list(doc_ids),
            dict(meta or {}),
            evidence_across=dict(evidence_across or {}),
            strata=strata,
        )

    # -- shape -----------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self.results)

    @property
    def query_ids(self) -> list[str]:
        return self.queries

    @property
    def ids(self) -> dict[str, np.ndarray]:
        return {n: r.ids for n, r in self.results.items()}

    @property
    def scores(self) -> dict[str, np.ndarray]:
        return {n: r.scores for n, r in self.results.items()}

    @property
    def depth(self) -> int:
        return min(r.ids.shape[1] for r in self.results.values())

    def __len__(self) -> int:
        return len(self.queries)

    def subset(self, rows: Sequence[int] | np.ndarray) -> Candidates:
        """The candidates of some queries (by position)."""
        rows = np.asarray(rows, dtype=np.int64)
        return Candidates(
            [self.queries[i] for i in rows],
            {n: SearchResult(r.ids[rows], r.scores[rows]) for n, r in self.results.items()},
            {},
            {n: a[rows] for n, a in self.evidence.items()},
            self.doc_ids,
            dict(self.meta),
            evidence_across={n: a[rows] for n, a in self.evidence_across.items()},
            strata=None if self.strata is None else self.strata.subset(rows),
        )

    def truncated(self, depth: int) -> Candidates:
        """The first ``depth`` candidates of each list (a view, no copy)."""
        depth = min(int(depth), self.depth)
        if depth == self.depth:
            return self
        return Candidates(
            self.queries,
            {
                n: SearchResult(r.ids[:, :depth], r.scores[:, :depth])
                for n, r in self.results.items()
            },
            self.encoded,
            self.evidence,
            self.doc_ids,
            dict(self.meta),
            evidence_across=self.evidence_across,
            strata=self.strata,
        )

    def select(self, query_ids: Iterable[str]) -> Candidates:
        pos = {q: i for i, q in enumerate(self.queries)}
        return self.subset([pos[q] for q in query_ids if q in pos])

    def encoded_query(self, retriever: Any, name: str, q: int) -> Any:
        """Query ``q`` as retriever ``name`` encoded it (encoded again when not kept)."""
        if name in self.encoded:
            return self.encoded[name][q]
        return retriever.encode_queries([self.queries[q]])[0]

    # -- fusion ----------------------------------------------------------------------------------

    def fusion_args(
        self, config: FusionConfig, names: Sequence[str] | None = None
    ) -> tuple[list[str], list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
        """What :mod:`fusion` needs to fuse these candidates under ``config``: the names of the
        retrievers with a positive weight, their lists (cut to ``config.retrieval_depth``) and
        the keyword arguments (method, weights, norm, k; ``depth`` and ``evidence`` for
        ``"adaptive"``, which reads :attr:`evidence`: 1.0, with a warning, where missing)."""
        given = config.weights
        weights = {n: float(given.get(n, 1.0)) for n in self.results}
        unknown = {n for n, w in given.items() if n not in self.results and w > 0}
        if unknown:  # (a weight of 0 may name a retriever that was not searched)
            raise ValueError(
                f"weights name unknown retrievers {sorted(unknown)}; have {self.names}"
            )
        if names is None:
            names = [n for n in self.results if weights[n] > 0]
        names = list(names)
        if not names:
            raise ValueError("every retriever weight is 0: nothing to fuse")
        wanted = config.retrieval_depth
        have = self.depth
        depth = min(wanted, have)
        n_docs = len(self.doc_ids) if self.doc_ids else depth
        if min(wanted, n_docs) > have:  # shallower than asked
            logger.warning(
                "hybrid: config depth %d exceeds the candidates' depth %d; using %d",
                wanted,
                have,
                have,
            )
        options: dict[str, Any] = {
            "method": config.method,
            "weights": [weights[n] for n in names],
            "norm": config.norm,
            "k": config.rrf_k,
        }
        if config.method == fusion.ADAPTIVE:
            missing = [n for n in names if n not in self.evidence]
            if missing:
                logger.warning(
                    "hybrid: candidates carry no evidence for %s; adaptive fusion uses 1.0",
                    ", ".join(missing),
                )
            options.update(depth=min(int(config.depth), depth), evidence=self._columns(names))
        lists = []
        for n in names:  # a cut that keeps every column is the arrays themselves
            r = self.results[n]
            cut = depth < r.ids.shape[1]
            lists.append((r.ids[:, :depth], r.scores[:, :depth]) if cut else (r.ids, r.scores))
        return names, lists, options

    def fuse(
        self, config: FusionConfig, k: int, names: Sequence[str] | None = None
    ) -> tuple[list[str], list[fusion.FusionResult]]:
        """Fused, explained rankings (:func:`fusion.fuse_padded`, through its trusted entry
        :func:`fusion.trusted.fuse_trusted`), one per query, top ``k``; with the names of the
        retrievers fused (the columns of each result). ``"adaptive"`` fuses by script strata
        where :attr:`strata` is known (:mod:`hybrid.engine.strata`)."""
        names, lists, options = self.fusion_args(config, names)
        if self._by_strata(config, names, options):
            across = self._across(names)
            return names, stratified_fuse(
                lists, names, options, across, self.strata, k, self.placements
            )
        return names, fuse_trusted(lists, top=k, **options)

    def fused_arrays(
        self, config: FusionConfig | str, k: int = 100
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` fused rows and scores, ``(n_queries, k)`` padded with -1 / -inf
        (:class:`fusion.FusionTable`: the same ranking as :meth:`fuse`, without explanations).

        ``config`` is a :class:`FusionConfig`, or a retriever name for that retriever alone.
        """
        if isinstance(config, str):
            if config not in self.results:
                raise ValueError(f"unknown retriever {config!r}; candidates hold: {self.names}")
            return self.results[config].ids[:, :k], self.results[config].scores[:, :k]
        names, lists, options = self.fusion_args(config)
        if self._by_strata(config, names, options):
            _, results = self.fuse(config, k)
            ids = np.full((len(self), k), -1, dtype=np.int64)
            scores = np.full((len(self), k), -np.inf)
            for q, r in enumerate(results):
                ids[q, : len(r.ids)], scores[q, : len(r.ids)] = r.ids, r.scores
            return ids, scores
        table = fusion.FusionTable(lists, depth=options.pop("depth", None))
        return table.top(top=k, **options)

    def _by_strata(
        self, config: FusionConfig, names: Sequence[str], options: dict[str, Any]
    ) -> bool:
        """Whether ``config`` fuses these candidates by script strata. On a collection in one
        script it does not: ``options``' evidence becomes each query's stratum's instead."""
        if config.method != fusion.ADAPTIVE or self.strata is None:
            return False
        sides = self.strata.sides()
        if sides is None:
            return True
        if not self.strata.all_within():  # (all within: the evidence stays as it is)
            options["evidence"] = np.where(sides[:, None], options["evidence"], self._across(names))
        return False

    def _across(self, names: Sequence[str]) -> np.ndarray:
        """``(n_queries, len(names))`` evidence across scripts (within where not measured)."""
        return self._columns(names, self.evidence_across)

    def _columns(self, names: Sequence[str], first: dict | None = None) -> np.ndarray:
        """``(n_queries, len(names))`` float64 evidence: each name's in ``first``, else in
        :attr:`evidence`, else 1.0."""
        ones = None
        cols = []
        for n in names:
            col = None if first is None else first.get(n)
            if col is None:
                col = self.evidence.get(n)
            if col is None:
                col = ones = np.ones(len(self)) if ones is None else ones
            cols.append(col)
        return np.array(cols, dtype=np.float64, order="F").T  # (C order: one copy)

    def run(self, config: FusionConfig | str, k: int = 100) -> dict[str, dict[str, float]]:
        """A ranx/TREC-style run: query id -> {doc id: score} of the top ``k``."""
        rows, scores = self.fused_arrays(config, k)
        return arrays_to_run(self.query_ids, self.doc_ids, rows, scores)

    # -- persistence -----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """``<path>.npz`` (arrays) + ``<path>.json`` (ids and the producing configuration)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for n, r in self.results.items():
            arrays[f"ids__{n}"] = r.ids
            arrays[f"scores__{n}"] = r.scores
            if n in self.evidence:
                arrays[f"evidence__{n}"] = np.asarray(self.evidence[n], dtype=np.float64)
            if n in self.evidence_across:
                arrays[f"across__{n}"] = np.asarray(self.evidence_across[n], dtype=np.float64)
        if self.strata is not None:
            arrays["doc_scripts"] = self.strata.doc_scripts
            arrays["query_scripts"] = self.strata.query_scripts
            arrays["only_script"] = np.array([-9 if self.strata.only is None else self.strata.only])
            for n, b in (self.strata.baselines or {}).items():
                arrays[f"baselines__{n}"] = np.asarray(b, dtype=np.float64)
        write_npz(path.with_suffix(".npz"), **arrays)
        record = {
            "type": _CANDS_KIND,
            "format_version": CACHE_FORMAT_VERSION,
            "meta": self.meta,
            "names": self.names,
            "query_ids": self.queries,
            "doc_ids": self.doc_ids,
            "evidence_version": self.evidence_version,
            "reference": None if self.strata is None else list(self.strata.reference),
        }
        tmp_json = path.with_name(path.name + ".tmp.json")
        tmp_json.write_text(json.dumps(record, ensure_ascii=False))
        tmp_json.replace(path.with_suffix(".json"))  # written last: marks the entry complete
        return path.with_suffix(".json")

    @classmethod
    def load(cls, path: str | Path) -> Candidates:
        path = Path(path)
        record = json.loads(path.with_suffix(".json").read_text())
        if record.get("type") != _CANDS_KIND:
            raise ValueError(f"{path} is not a saved CandidateSet")
        if record.get("format_version") != CACHE_FORMAT_VERSION:
            raise ValueError(f"{path}: candidate cache format {record.get('format_version')}")
        with np.load(path.with_suffix(".npz")) as z:
            ids = {n: z[f"ids__{n}"] for n in record["names"]}
            scores = {n: z[f"scores__{n}"] for n in record["names"]}
            evidence = {n: z[f"evidence__{n}"] for n in record["names"] if f"evidence__{n}" in z}
            across = {n: z[f"across__{n}"] for n in record["names"] if f"across__{n}" in z}
            strata = None
            if "doc_scripts" in z and record.get("reference") is not None:
                only = int(z["only_script"][0]) if "only_script" in z else -9
                baselines = {
                    n: z[f"baselines__{n}"] for n in record["reference"] if f"baselines__{n}" in z
                }
                strata = Strata(
                    z["doc_scripts"].astype(np.int32),
                    z["query_scripts"].astype(np.int32),
                    tuple(record["reference"]),
                    None if only == -9 else only,
                    baselines or None,
                )
                if strata.doc_scripts.shape != (len(record["doc_ids"]),) or (
                    strata.query_scripts.shape != (len(record["query_ids"]),)
                ):
                    raise ValueError(f"{path}: script codes do not match the documents/queries")
                n_codes = int(strata.doc_scripts.max(initial=-1)) + 2
                for n, b in baselines.items():
                    if (
                        b.ndim != 2
                        or b.shape[0] != len(record["query_ids"])
                        or b.shape[1] < n_codes
                    ):
                        raise ValueError(f"{path}: {n}'s script baselines have shape {b.shape}")
        out = cls.from_arrays(
            record["query_ids"],
            record["doc_ids"],
            ids,
            scores,
            record["meta"],
            evidence,
            across,
            strata,
        )
        out.evidence_version = int(record.get("evidence_version", 1))
        return out


def arrays_to_run(
    query_ids: Sequence[str], doc_ids: Sequence[str], rows: np.ndarray, scores: np.ndarray
) -> dict[str, dict[str, float]]:
    run: dict[str, dict[str, float]] = {}
    for q, qid in enumerate(query_ids):
        valid = rows[q] >= 0
        run[qid] = {
            doc_ids[int(r)]: float(s)
            for r, s in zip(rows[q][valid].tolist(), scores[q][valid].tolist(), strict=True)
        }
    return run


CandidateSet = Candidates
"""The name evaluations used: the same type (build one with :meth:`Candidates.from_arrays`)."""
