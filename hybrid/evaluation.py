"""Evaluation: datasets, cached candidate lists, metrics (ranx), significance tests, TREC runs.

The workflow is *retrieve once, fuse many times*:

>>> data = load_dataset("../shared/data/scifact", split="test")
>>> cands = retrieve_candidates(retrievers, data, depth=1000, cache_dir="runs/cache")
>>> report = evaluate(cands, data.qrels, {"rrf": FusionConfig("rrf"), "bm25": "bm25"})
>>> print(format_table(report))

:func:`retrieve_candidates` encodes documents and queries (with progress bars), searches every
retriever to ``depth`` and stores the candidate lists (``.npz``) with a JSON record of what
produced them (dataset fingerprint, retriever settings, depth). The file name is a hash of that
record, so changing any of it computes new candidates; a record that does not match what was
asked for is never used. :class:`CandidateSet` then fuses with any :class:`FusionConfig`
without encoding or searching again.

Metrics come from ``ranx`` (nDCG@10, Recall@100, MRR@10, MAP@100 by default), kept per query
for :func:`paired_test` (paired t-test, paired bootstrap, randomisation) and
:func:`bootstrap_ci`. ``ndcg_at_k`` is a vectorised nDCG with ranx's definition (linear gain,
checked against ranx in tests), used as the inner objective of tuning loops.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.config import FusionConfig

logger = logging.getLogger("hybrid")

CACHE_FORMAT_VERSION = 1
_CANDS_KIND = "CandidateSet"
DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")
"""The metrics of ``hybrid eval``: ranx names (MAP is cut at the fused depth of 100)."""

Qrels = Mapping[str, Mapping[str, int]]
Run = dict[str, dict[str, float]]

# ------------------------------------------------------------------------------------------------
# datasets


@dataclass
class Dataset:
    """Documents, queries and judgements of one evaluation (one split, or several)."""

    name: str
    doc_ids: list[str]
    doc_texts: list[str]
    queries: dict[str, str]
    """Query id -> text, only the queries that have judgements in the loaded splits."""
    qrels: dict[str, dict[str, int]]
    """Query id -> {doc id: relevance} of the split(s) loaded."""
    split: str | None = None
    source: str = ""

    def fingerprint(self) -> str:
        """Hash of the document ids and texts (what an index of this collection depends on)."""
        h = hashlib.sha256()
        for doc_id, text in zip(self.doc_ids, self.doc_texts, strict=True):
            h.update(doc_id.encode())
            h.update(b"\x00")
            h.update(text.encode())
            h.update(b"\x01")
        return h.hexdigest()[:16]

    def subset_queries(self, query_ids: Iterable[str]) -> Dataset:
        ids = [q for q in query_ids if q in self.queries]
        return Dataset(
            self.name,
            self.doc_ids,
            self.doc_texts,
            {q: self.queries[q] for q in ids},
            {q: dict(self.qrels.get(q, {})) for q in ids},
            self.split,
            self.source,
        )


def read_queries_any(path: str | Path) -> dict[str, str]:
    """Queries from JSONL (``_id``/``id`` + ``text``/``query``) or TSV (``id<TAB>text``)."""
    from hybrid.data import json_object, text_lines

    path = Path(path)
    out: dict[str, str] = {}
    for line_no, line in text_lines(path):
        if not line.strip():
            continue
        if path.suffix in (".jsonl", ".json"):
            row = json_object(path, line_no, line)
            qid = next((row[k] for k in ("_id", "id", "qid", "query_id") if k in row), None)
            text = next((row[k] for k in ("text", "query", "title") if k in row), None)
            if qid is None or not isinstance(text, str):
                raise ValueError(f"{path}:{line_no}: a query needs an id and a text field")
        else:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) < 2:
                raise ValueError(f"{path}:{line_no}: expected 'id<TAB>text'")
            qid, text = parts[0], parts[1]
            if line_no == 1 and qid in ("id", "_id", "qid", "query-id", "query_id"):
                continue  # header row
        out[str(qid)] = text
    return out


def read_qrels_any(path: str | Path) -> dict[str, dict[str, int]]:
    """Judgements from BEIR TSV (header; ``qid doc score``) or TREC (``qid 0 doc score``)."""
    from hybrid.data import text_lines

    qrels: dict[str, dict[str, int]] = {}
    for line_no, line in text_lines(path):
        line = line.rstrip("\r\n")
        parts = line.split("\t") if "\t" in line else line.split()
        parts = [x.strip() for x in parts]
        if not any(parts):
            continue
        if len(parts) == 3:
            qid, doc, rel = parts
        elif len(parts) == 4:
            qid, _, doc, rel = parts
        else:
            raise ValueError(f"{path}:{line_no}: expected 3 (BEIR) or 4 (TREC) columns")
        try:
            value = int(float(rel))
        except ValueError:
            if line_no == 1:
                continue  # header row
            raise ValueError(f"{path}:{line_no}: relevance {rel!r} is not a number") from None
        qrels.setdefault(qid, {})[doc] = value
    return qrels


def load_dataset(
    source: str | Path,
    split: str | None = "test",
    *,
    queries: str | Path | None = None,
    qrels: str | Path | None = None,
    limit_docs: int | None = None,
    limit_queries: int | None = None,
) -> Dataset:
    """A BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) or plain files.

    ``source`` is a BEIR folder or a documents JSONL file; ``queries`` (JSONL or TSV) and
    ``qrels`` (BEIR TSV or TREC) override the folder's files and are required with a file.
    ``split=None`` loads every ``qrels/*.tsv``. Only judged queries are kept, in file order.
    ``limit_docs`` keeps the first N documents plus every document judged for the kept
    queries (so a quick run still has its relevant documents); ``limit_queries`` keeps the
    first N judged queries.
    """
    from hybrid.data import read_documents

    path = Path(source)
    if path.is_dir():
        q_path = Path(queries) if queries else path / "queries.jsonl"
        if qrels:
            qrel_paths = [Path(qrels)]
        elif split is None:
            qrel_paths = sorted((path / "qrels").glob("*.tsv"))
        else:
            qrel_paths = [path / "qrels" / f"{split}.tsv"]
        for p in qrel_paths:
            if not p.is_file():
                have = sorted(x.stem for x in (path / "qrels").glob("*.tsv"))
                raise FileNotFoundError(f"no judgements {p}; splits in {path}: {have}")
        if not qrel_paths:
            raise FileNotFoundError(f"{path} has no qrels/*.tsv")
    else:
        if queries is None or qrels is None:
            raise ValueError("a documents file needs queries= and qrels= files too")
        q_path, qrel_paths = Path(queries), [Path(qrels)]
    all_queries = read_queries_any(q_path)
    judged: dict[str, dict[str, int]] = {}
    for p in qrel_paths:
        for qid, rels in read_qrels_any(p).items():
            judged.setdefault(qid, {}).update(rels)
    qids = [q for q in all_queries if q in judged]
    if limit_queries is not None:
        qids = qids[:limit_queries]
    docs = read_documents(path)
    doc_ids, doc_texts = docs.ids, docs.texts
    if limit_docs is not None and limit_docs < len(doc_ids):
        needed = {d for q in qids for d in judged[q]}
        keep = [i for i, d in enumerate(doc_ids) if i < limit_docs or d in needed]
        doc_ids = [doc_ids[i] for i in keep]
        doc_texts = [doc_texts[i] for i in keep]
    name = path.name if path.is_dir() else path.stem
    return Dataset(
        name=name,
        doc_ids=list(doc_ids),
        doc_texts=list(doc_texts),
        queries={q: all_queries[q] for q in qids},
        qrels={q: dict(judged[q]) for q in qids},
        split=split,
        source=str(path),
    )


# ------------------------------------------------------------------------------------------------
# encoding with progress and a cache


def retriever_spec(retriever: Any) -> dict[str, Any]:
    """What a retriever's encodings and rankings depend on (its type and settings)."""
    settings = retriever._settings() if hasattr(retriever, "_settings") else {}
    return json.loads(
        json.dumps({"type": getattr(retriever, "kind", "?"), **settings}, default=str)
    )


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _concat(kind: str, parts: list[Any]) -> Any:
    if kind == "splade":
        import scipy.sparse as sp

        return sp.vstack(parts).tocsr()
    if kind == "dense":
        return np.concatenate([np.asarray(p, dtype=np.float32) for p in parts], axis=0)
    return [row for p in parts for row in p]


def encode_with_progress(
    retriever: Any,
    texts: Sequence[str],
    what: str = "documents",
    batch: int = 256,
    progress: bool = True,
    label: str = "",
) -> Any:
    """``retriever.encode_documents`` / ``encode_queries`` in batches with a tqdm bar."""
    fn = retriever.encode_documents if what == "documents" else retriever.encode_queries
    texts = list(texts)
    if not texts:
        raise ValueError(f"no {what} to encode")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(texts),
            desc=f"{label or retriever.kind} {what}",
            unit="text",
            file=sys.stderr,
            leave=False,
        )
    parts = []
    try:
        for i in range(0, len(texts), batch):
            parts.append(fn(texts[i : i + batch]))
            if bar is not None:
                bar.update(len(texts[i : i + batch]))
    finally:
        if bar is not None:
            bar.close()
    return _concat(retriever.kind, parts)


def _save_encoded(path: Path, kind: str, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if kind == "splade":
        import scipy.sparse as sp

        with open(tmp, "wb") as f:
            sp.save_npz(f, value.tocsr())
    elif kind == "dense":
        with open(tmp, "wb") as f:
            np.save(f, np.asarray(value, dtype=np.float32))
    else:
        tmp.write_text(json.dumps(value, ensure_ascii=False))
    tmp.replace(path)


def _load_encoded(path: Path, kind: str) -> Any:
    if kind == "splade":
        import scipy.sparse as sp

        return sp.load_npz(path).tocsr()
    if kind == "dense":
        return np.load(path)
    return json.loads(path.read_text())


def _suffix(kind: str) -> str:
    return {"splade": ".npz", "dense": ".npy"}.get(kind, ".json")


def cached_encode(
    retriever: Any,
    texts: Sequence[str],
    what: str,
    cache_dir: str | Path | None,
    key: str,
    progress: bool = True,
    label: str = "",
) -> Any:
    """Encode through a file cache named by ``key`` + the retriever's settings."""
    if cache_dir is None:
        return encode_with_progress(retriever, texts, what, progress=progress, label=label)
    spec = retriever_spec(retriever)
    digest = _hash([key, spec, len(texts)])
    name = f"{what}-{label or retriever.kind}-{digest}{_suffix(retriever.kind)}"
    path = Path(cache_dir) / "encoded" / name
    if path.is_file():
        logger.info("hybrid: using cached %s encodings %s", what, path)
        return _load_encoded(path, retriever.kind)
    value = encode_with_progress(retriever, texts, what, progress=progress, label=label)
    _save_encoded(path, retriever.kind, value)
    return value


# ------------------------------------------------------------------------------------------------
# candidate sets


@dataclass
class CandidateSet:
    """Each retriever's top-``depth`` candidates for a batch of queries, with provenance.

    ``ids[name]`` is ``(n_queries, depth)`` int64 of rows into ``doc_ids`` (``-1`` pads),
    ``scores[name]`` the matching float32 scores (``-inf`` pads). ``meta`` records the
    configuration that produced them (dataset, split, retriever settings, depth).
    ``evidence[name]`` is the retriever's ``(n_queries,)`` evidence for each query
    (:meth:`~hybrid.retrievers.Retriever.evidence`), what ``"adaptive"`` fusion weighs by.
    """

    query_ids: list[str]
    doc_ids: list[str]
    ids: dict[str, np.ndarray]
    scores: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.ids)

    @property
    def depth(self) -> int:
        return min(a.shape[1] for a in self.ids.values())

    def __len__(self) -> int:
        return len(self.query_ids)

    def subset(self, rows: Sequence[int] | np.ndarray) -> CandidateSet:
        """The candidates of some queries (by position)."""
        rows = np.asarray(rows, dtype=np.int64)
        return CandidateSet(
            [self.query_ids[i] for i in rows],
            self.doc_ids,
            {n: a[rows] for n, a in self.ids.items()},
            {n: a[rows] for n, a in self.scores.items()},
            dict(self.meta),
            {n: a[rows] for n, a in self.evidence.items()},
        )

    def truncated(self, depth: int) -> CandidateSet:
        """The first ``depth`` candidates of each list (a view, no copy)."""
        depth = min(int(depth), self.depth)
        if depth == self.depth:
            return self
        return CandidateSet(
            self.query_ids,
            self.doc_ids,
            {n: a[:, :depth] for n, a in self.ids.items()},
            {n: a[:, :depth] for n, a in self.scores.items()},
            dict(self.meta),
            self.evidence,
        )

    def select(self, query_ids: Iterable[str]) -> CandidateSet:
        pos = {q: i for i, q in enumerate(self.query_ids)}
        return self.subset([pos[q] for q in query_ids if q in pos])

    # -- fusion ----------------------------------------------------------------------------------

    def fused_arrays(
        self, config: FusionConfig | str, k: int = 100
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` fused rows and scores, ``(n_queries, k)`` padded with -1 / -inf.

        ``config`` is a :class:`FusionConfig`, or a retriever name for that retriever alone.
        ``"adaptive"`` uses each list to ``config.stats_depth`` (capped at the cached depth) and
        the candidates' ``evidence`` (1.0, with a warning, for a retriever without any).
        """
        if isinstance(config, str):
            if config not in self.ids:
                raise ValueError(f"unknown retriever {config!r}; candidates hold: {self.names}")
            return self.ids[config][:, :k], self.scores[config][:, :k]
        import fusion as fusion_lib

        weights = {n: float(config.weights.get(n, 1.0)) for n in self.names}
        unknown = set(config.weights) - set(self.names)
        if unknown:
            raise ValueError(
                f"weights name unknown retrievers {sorted(unknown)}; have {self.names}"
            )
        names = [n for n in self.names if weights[n] > 0]
        if not names:
            raise ValueError("every retriever weight is 0: nothing to fuse")
        depth = min(config.retrieval_depth, self.depth)
        if min(config.retrieval_depth, len(self.doc_ids)) > self.depth:  # shallower than asked
            logger.warning(
                "hybrid: config depth %d exceeds the cached depth %d; using %d",
                config.retrieval_depth,
                self.depth,
                self.depth,
            )
        options: dict[str, Any] = {}
        if config.method == fusion_lib.ADAPTIVE:
            missing = [n for n in names if n not in self.evidence]
            if missing:
                logger.warning(
                    "hybrid: candidates carry no evidence for %s; adaptive fusion uses 1.0",
                    ", ".join(missing),
                )
            ones = np.ones(len(self))
            evidence = np.stack([self.evidence.get(n, ones) for n in names], axis=1)
            options = {"depth": min(int(config.depth), depth), "evidence": evidence}
        results = fusion_lib.fuse_padded(
            [(self.ids[n][:, :depth], self.scores[n][:, :depth]) for n in names],
            method=config.method,
            weights=[weights[n] for n in names],
            norm=config.norm,
            k=config.rrf_k,
            top=k,
            **options,
        )
        out_ids = np.full((len(self), k), -1, dtype=np.int64)
        out_scores = np.full((len(self), k), -np.inf, dtype=np.float64)
        for q, r in enumerate(results):
            n = min(k, len(r.ids))
            out_ids[q, :n] = r.ids[:n]
            out_scores[q, :n] = r.scores[:n]
        return out_ids, out_scores

    def run(self, config: FusionConfig | str, k: int = 100) -> Run:
        """A ranx/TREC-style run: query id -> {doc id: score} of the top ``k``."""
        rows, scores = self.fused_arrays(config, k)
        return arrays_to_run(self.query_ids, self.doc_ids, rows, scores)

    # -- persistence -----------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """``<path>.npz`` (arrays) + ``<path>.json`` (ids and the producing configuration)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {}
        for n in self.names:
            arrays[f"ids__{n}"] = self.ids[n]
            arrays[f"scores__{n}"] = self.scores[n]
            if n in self.evidence:
                arrays[f"evidence__{n}"] = np.asarray(self.evidence[n], dtype=np.float64)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path.with_suffix(".npz"))
        record = {
            "type": _CANDS_KIND,
            "format_version": CACHE_FORMAT_VERSION,
            "meta": self.meta,
            "names": self.names,
            "query_ids": self.query_ids,
            "doc_ids": self.doc_ids,
        }
        tmp_json = path.with_name(path.name + ".tmp.json")
        tmp_json.write_text(json.dumps(record, ensure_ascii=False))
        tmp_json.replace(path.with_suffix(".json"))  # written last: marks the entry complete
        return path.with_suffix(".json")

    @classmethod
    def load(cls, path: str | Path) -> CandidateSet:
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
        return cls(record["query_ids"], record["doc_ids"], ids, scores, record["meta"], evidence)


def arrays_to_run(
    query_ids: Sequence[str], doc_ids: Sequence[str], rows: np.ndarray, scores: np.ndarray
) -> Run:
    run: Run = {}
    for q, qid in enumerate(query_ids):
        valid = rows[q] >= 0
        run[qid] = {
            doc_ids[int(r)]: float(s)
            for r, s in zip(rows[q][valid].tolist(), scores[q][valid].tolist(), strict=True)
        }
    return run


def candidates_meta(
    data: Dataset, specs: Mapping[str, Any], depth: int, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The record that identifies a candidate set (hashed into its cache file name)."""
    qh = _hash([[q, t] for q, t in data.queries.items()])
    return {
        "dataset": data.name,
        "source": data.source,
        "split": data.split,
        "documents": {"count": len(data.doc_ids), "fingerprint": data.fingerprint()},
        "queries": {"count": len(data.queries), "fingerprint": qh},
        "retrievers": dict(specs),
        "depth": int(depth),
        **dict(extra or {}),
    }


def retrieve_candidates(
    retrievers: Mapping[str, Any] | Callable[[], Mapping[str, Any]],
    data: Dataset,
    depth: int = 1000,
    *,
    cache_dir: str | Path | None = None,
    doc_encodings: Mapping[str, Any] | None = None,
    query_encodings: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    progress: bool = True,
    retrievers_spec: Mapping[str, Any] | None = None,
) -> CandidateSet:
    """Encode, index and search each retriever once to ``depth``; cached on disk.

    ``retrievers``: name -> fresh (empty) :class:`~hybrid.retrievers.Retriever`, or a function
    building them. The cache key needs their settings, so a function is called once to read
    them (models load, but on a cache hit nothing is encoded or searched); pass
    ``retrievers_spec`` (name -> :func:`retriever_spec`) to skip even that. ``doc_encodings`` /
    ``query_encodings`` give precomputed encodings by retriever name (e.g. the shared SciFact
    encodings); name them in ``extra`` so the cache key says so. With ``cache_dir`` the
    candidates are stored under ``<cache_dir>/<dataset>/candidates-<split>-<hash>`` with the
    JSON record of what produced them, and document/query encodings under
    ``<cache_dir>/<dataset>/encoded/``.
    """
    built: dict[str, Any] | None = None
    if callable(retrievers) and not isinstance(retrievers, Mapping):
        factory = retrievers
        if retrievers_spec is None:
            built = dict(factory())
            retrievers_spec = {n: retriever_spec(r) for n, r in built.items()}
    else:
        built = dict(retrievers)
        retrievers_spec = {n: retriever_spec(r) for n, r in built.items()}
        factory = None
    if not data.queries:
        raise ValueError(f"{data.name}: no judged queries to retrieve for")
    meta = candidates_meta(data, retrievers_spec, depth, extra)
    path = None
    if cache_dir is not None:
        key = _hash(meta)
        path = Path(cache_dir) / data.name / f"candidates-{data.split or 'all'}-{key}"
        if path.with_suffix(".json").is_file():
            cands = CandidateSet.load(path)
            if cands.meta == meta:
                logger.info("hybrid: using cached candidates %s", path)
                if set(cands.evidence) >= set(cands.names):
                    return cands
                # written before candidate sets kept evidence: measure it once, keep it
                if built is None:
                    built = dict(factory())  # type: ignore[misc]
                encoded = _index(built, data, cache_dir, doc_encodings, query_encodings, progress)
                if cands.query_ids != list(data.queries):
                    raise RuntimeError(f"{path}: cached query order differs from the dataset")
                cands.evidence = _evidence(built, data, encoded)
                cands.save(path)
                return cands
            logger.warning("hybrid: cached candidates %s do not match; recomputing", path)
    if built is None:
        built = dict(factory())  # type: ignore[misc]
    cands = _retrieve(built, data, depth, cache_dir, doc_encodings, query_encodings, progress)
    cands.meta = meta
    if path is not None:
        cands.save(path)
    return cands


def _index(
    retrievers: Mapping[str, Any],
    data: Dataset,
    cache_dir: str | Path | None,
    doc_encodings: Mapping[str, Any] | None,
    query_encodings: Mapping[str, Any] | None,
    progress: bool,
) -> dict[str, Any]:
    """Index ``data``'s documents in each (fresh) retriever; returns each one's query encoding."""
    enc_dir = None if cache_dir is None else Path(cache_dir) / data.name
    doc_key = data.fingerprint()
    q_texts = list(data.queries.values())
    q_key = _hash(q_texts)
    out = {}
    for name, retriever in retrievers.items():
        if len(retriever):
            raise ValueError(f"retriever {name!r} already holds documents: pass fresh retrievers")
        if doc_encodings and name in doc_encodings:
            enc = doc_encodings[name]
        else:
            enc = cached_encode(
                retriever, data.doc_texts, "documents", enc_dir, doc_key, progress, name
            )
        retriever.add_encoded(enc)
        if query_encodings and name in query_encodings:
            out[name] = query_encodings[name]
        else:
            out[name] = cached_encode(retriever, q_texts, "queries", enc_dir, q_key, progress, name)
    return out


def _evidence(
    retrievers: Mapping[str, Any], data: Dataset, encoded: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """Each indexed retriever's :meth:`~hybrid.retrievers.Retriever.evidence` for ``data``'s
    queries."""
    q_texts = list(data.queries.values())
    return {
        name: np.asarray(r.evidence(q_texts, encoded[name]), dtype=np.float64)
        for name, r in retrievers.items()
    }


def _retrieve(
    retrievers: Mapping[str, Any],
    data: Dataset,
    depth: int,
    cache_dir: str | Path | None,
    doc_encodings: Mapping[str, Any] | None,
    query_encodings: Mapping[str, Any] | None,
    progress: bool,
) -> CandidateSet:
    encoded = _index(retrievers, data, cache_dir, doc_encodings, query_encodings, progress)
    depth = min(int(depth), len(data.doc_ids))
    ids, scores = {}, {}
    for name, retriever in retrievers.items():
        result = retriever.search_encoded(encoded[name], depth)
        ids[name] = np.asarray(result.ids, dtype=np.int64)
        scores[name] = np.asarray(result.scores, dtype=np.float32)
    evidence = _evidence(retrievers, data, encoded)
    return CandidateSet(list(data.queries), list(data.doc_ids), ids, scores, evidence=evidence)


# ------------------------------------------------------------------------------------------------
# metrics


def _ranx():
    try:
        import ranx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("evaluation needs ranx: pip install 'splade-hybrid[eval]'") from exc
    return ranx


METRIC_BACKENDS = ("ranx", "numpy")


def per_query_metrics(
    qrels: Qrels, run: Run, metrics: Sequence[str] = DEFAULT_METRICS, backend: str = "ranx"
) -> dict[str, np.ndarray]:
    """Per-query values, in the order of ``qrels`` (queries absent from the run get 0).

    ``backend="ranx"`` (default) computes them with ranx; ``"numpy"`` with
    :func:`numpy_metrics`, the same definitions (tested equal to ranx) without ranx's numba
    start-up cost. Queries without any positive judgement are left out.
    """
    qids = [q for q, rels in qrels.items() if any(v > 0 for v in rels.values())]
    if backend == "numpy":
        ranked = {
            q: [d for d, _ in sorted(run.get(q, {}).items(), key=lambda kv: (-kv[1], kv[0]))]
            for q in qids
        }
        return numpy_metrics(ranked, qrels, metrics, qids)
    if backend != "ranx":
        raise ValueError(f"unknown metrics backend {backend!r}; valid: {METRIC_BACKENDS}")
    ranx = _ranx()
    q = ranx.Qrels({qid: {d: int(v) for d, v in qrels[qid].items()} for qid in qids})
    r = ranx.Run({qid: dict(run.get(qid, {})) or {"__none__": 0.0} for qid in qids})
    scores = ranx.evaluate(q, r, list(metrics), return_mean=False, make_comparable=True)
    if len(metrics) == 1:
        scores = {metrics[0]: scores}
    # ranx sorts queries by id internally; map back to our order
    order = sorted(qids)
    index = {qid: i for i, qid in enumerate(order)}
    pos = np.array([index[qid] for qid in qids], dtype=np.int64)
    return {m: np.asarray(scores[m], dtype=np.float64)[pos] for m in metrics}


def numpy_metrics(
    ranked: Mapping[str, Sequence[str]],
    qrels: Qrels,
    metrics: Sequence[str] = DEFAULT_METRICS,
    query_ids: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """ranx's definitions on ranked doc-id lists: ``ndcg@k`` (linear gain), ``recall@k``,
    ``mrr@k``, ``map@k`` (AP over the relevant count), ``precision@k``; relevant: rel >= 1."""
    qids = list(ranked if query_ids is None else query_ids)
    out = {m: np.zeros(len(qids)) for m in metrics}
    parsed = []
    for m in metrics:
        name, _, cut = m.partition("@")
        if name not in ("ndcg", "recall", "mrr", "map", "precision"):
            raise ValueError(f"numpy backend has no metric {m!r}")
        parsed.append((m, name, int(cut) if cut else None))
    for i, q in enumerate(qids):
        rels = {d: v for d, v in qrels.get(q, {}).items() if v > 0}
        docs = list(ranked.get(q, []))
        n_rel = len(rels)
        if not n_rel:
            continue
        for m, name, cut in parsed:
            top = docs if cut is None else docs[:cut]
            gains = np.array([rels.get(d, 0) for d in top], dtype=np.float64)
            hit = gains > 0
            if name == "ndcg":
                disc = 1.0 / np.log2(np.arange(2, len(top) + 2))
                ideal = np.sort(np.fromiter(rels.values(), float))[::-1][: cut or n_rel]
                idcg = float(np.dot(ideal, 1.0 / np.log2(np.arange(2, len(ideal) + 2))))
                out[m][i] = float(np.dot(gains, disc)) / idcg
            elif name == "recall":
                out[m][i] = hit.sum() / n_rel
            elif name == "precision":
                out[m][i] = hit.sum() / cut if cut else hit.mean() if len(hit) else 0.0
            elif name == "mrr":
                first = np.flatnonzero(hit)
                out[m][i] = 1.0 / (first[0] + 1) if first.size else 0.0
            else:  # map
                prec = np.cumsum(hit) / np.arange(1, len(hit) + 1)
                out[m][i] = float(prec[hit].sum()) / n_rel
    return out


def ndcg_at_k(
    rows: np.ndarray, query_ids: Sequence[str], doc_ids: Sequence[str], qrels: Qrels, k: int = 10
) -> np.ndarray:
    """Per-query nDCG@k (linear gain, as ranx's ``ndcg``) of fused rows, vectorised.

    Queries absent from ``qrels`` or without positive judgements get NaN.
    """
    gains = _gain_matrix(rows[:, :k], query_ids, doc_ids, qrels)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (gains * discounts[: gains.shape[1]]).sum(axis=1)
    ideal = np.zeros(len(query_ids))
    for i, q in enumerate(query_ids):
        rels = sorted((v for v in qrels.get(q, {}).values() if v > 0), reverse=True)[:k]
        ideal[i] = float(np.dot(rels, discounts[: len(rels)])) if rels else np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        return dcg / ideal


def _gain_matrix(rows, query_ids, doc_ids, qrels) -> np.ndarray:
    gains = np.zeros(rows.shape, dtype=np.float64)
    doc_index = {d: i for i, d in enumerate(doc_ids)}
    for i, q in enumerate(query_ids):
        rels = qrels.get(q)
        if not rels:
            continue
        rel_rows = {doc_index[d]: v for d, v in rels.items() if v > 0 and d in doc_index}
        if rel_rows:
            gains[i] = [rel_rows.get(r, 0) for r in rows[i].tolist()]
    return gains


class FastNDCG:
    """nDCG@k of many candidate fusions of one query set (the tuning objective).

    Precomputes the relevance lookup once; ``__call__(rows)`` returns per-query values.
    """

    def __init__(self, query_ids: Sequence[str], doc_ids: Sequence[str], qrels: Qrels, k: int = 10):
        self.k = k
        self.query_ids = list(query_ids)
        doc_index = {d: i for i, d in enumerate(doc_ids)}
        self._rel = [
            {doc_index[d]: v for d, v in qrels.get(q, {}).items() if v > 0 and d in doc_index}
            for q in self.query_ids
        ]
        self.discounts = 1.0 / np.log2(np.arange(2, k + 2))
        ideal = np.full(len(self.query_ids), np.nan)
        for i, q in enumerate(self.query_ids):
            rels = sorted((v for v in qrels.get(q, {}).values() if v > 0), reverse=True)[:k]
            if rels:
                ideal[i] = float(np.dot(rels, self.discounts[: len(rels)]))
        self.ideal = ideal
        self.valid = ~np.isnan(ideal)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = rows[:, : self.k]
        gains = np.zeros(rows.shape)
        for i, rel in enumerate(self._rel):
            if rel:
                gains[i] = [rel.get(r, 0) for r in rows[i].tolist()]
        dcg = (gains * self.discounts[: rows.shape[1]]).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return dcg / self.ideal


# ------------------------------------------------------------------------------------------------
# significance


def bootstrap_ci(
    values: np.ndarray, alpha: float = 0.05, n_resamples: int = 10_000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of per-query values."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 1000):
        stop = min(n_resamples, start + 1000)
        idx = rng.integers(0, values.size, size=(stop - start, values.size))
        means[start:stop] = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class PairedTest:
    """Result of comparing per-query scores ``a`` and ``b`` (same queries, same order)."""

    method: str
    mean_a: float
    mean_b: float
    diff: float
    """mean(b - a)."""
    p_value: float
    ci: tuple[float, float]
    """Confidence interval of the mean difference (bootstrap for every method)."""
    n: int

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha


def paired_test(
    a: np.ndarray,
    b: np.ndarray,
    method: str = "t-test",
    n_resamples: int = 10_000,
    alpha: float = 0.05,
    seed: int = 0,
) -> PairedTest:
    """Two-sided paired test of ``b`` against ``a``: ``"t-test"``, ``"bootstrap"`` or
    ``"randomization"`` (Fisher's sign flipping; Smucker et al. 2007 recommend it for IR)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"a and b must be 1-d per-query values of one shape, got {a.shape}, {b.shape}"
        )
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    d = b - a
    n = d.size
    if n < 2:
        raise ValueError("a paired test needs at least 2 queries")
    rng = np.random.default_rng(seed)
    if method == "t-test":
        from scipy import stats

        if np.allclose(d, d[0]):
            p = 1.0 if np.isclose(d[0], 0) else 0.0
        else:
            p = float(stats.ttest_rel(b, a).pvalue)
    elif method == "bootstrap":
        # shift to the null (mean 0) and count resampled means at least as extreme
        centred = d - d.mean()
        idx = rng.integers(0, n, size=(n_resamples, n))
        means = centred[idx].mean(axis=1)
        p = float((np.sum(np.abs(means) >= abs(d.mean()) - 1e-12) + 1) / (n_resamples + 1))
    elif method == "randomization":
        signs = rng.choice([-1.0, 1.0], size=(n_resamples, n))
        means = (signs * d).mean(axis=1)
        p = float((np.sum(np.abs(means) >= abs(d.mean()) - 1e-12) + 1) / (n_resamples + 1))
    else:
        raise ValueError(f"unknown test {method!r}; valid: t-test, bootstrap, randomization")
    ci = bootstrap_ci(d, alpha, n_resamples, seed)
    return PairedTest(method, float(a.mean()), float(b.mean()), float(d.mean()), p, ci, n)


# ------------------------------------------------------------------------------------------------
# reports


@dataclass
class SystemScores:
    name: str
    config: dict[str, Any] | None
    per_query: dict[str, np.ndarray]

    def mean(self, metric: str) -> float:
        return float(np.nanmean(self.per_query[metric]))


@dataclass
class EvalReport:
    """Scores of several systems over the same queries."""

    dataset: str
    split: str | None
    query_ids: list[str]
    metrics: list[str]
    systems: list[SystemScores]
    baseline: str | None = None
    tests: dict[str, PairedTest] = field(default_factory=dict)
    """System name -> paired test of its first metric against ``baseline``."""
    notes: list[str] = field(default_factory=list)

    def system(self, name: str) -> SystemScores:
        for s in self.systems:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "split": self.split,
            "queries": len(self.query_ids),
            "metrics": self.metrics,
            "baseline": self.baseline,
            "notes": self.notes,
            "systems": [],
        }
        for s in self.systems:
            row: dict[str, Any] = {
                "name": s.name,
                "config": s.config,
                "scores": {m: s.mean(m) for m in self.metrics},
            }
            t = self.tests.get(s.name)
            if t is not None:
                row["vs_baseline"] = {
                    "metric": self.metrics[0],
                    "test": t.method,
                    "diff": t.diff,
                    "p_value": t.p_value,
                    "ci": list(t.ci),
                }
            out["systems"].append(row)
        return out


def evaluate(
    candidates: CandidateSet,
    qrels: Qrels,
    systems: Mapping[str, FusionConfig | str],
    metrics: Sequence[str] = DEFAULT_METRICS,
    k: int = 100,
    baseline: str | None = None,
    test: str = "t-test",
    run_dir: str | Path | None = None,
    notes: Sequence[str] = (),
    backend: str = "ranx",
) -> EvalReport:
    """Score each system (a :class:`FusionConfig` or a retriever name) on ``candidates``.

    ``baseline`` (a system name) gets a paired ``test`` of every other system on the first
    metric. ``run_dir`` writes one TREC run file per system (``<name>.trec``). ``backend``:
    ``"ranx"`` or ``"numpy"`` (see :func:`per_query_metrics`).
    """
    judged = {q: qrels[q] for q in candidates.query_ids if q in qrels}
    scored = []
    for name, config in systems.items():
        run = candidates.run(config, k=k)
        if run_dir is not None:
            write_trec_run(run, Path(run_dir) / f"{_safe(name)}.trec", tag=_safe(name))
        cfg = config.to_dict() if isinstance(config, FusionConfig) else None
        scored.append(SystemScores(name, cfg, per_query_metrics(judged, run, metrics, backend)))
    qids = [q for q, rels in judged.items() if any(v > 0 for v in rels.values())]
    report = EvalReport(
        candidates.meta.get("dataset", ""),
        candidates.meta.get("split"),
        qids,
        list(metrics),
        scored,
        baseline,
        notes=list(notes),
    )
    if baseline is not None:
        base = report.system(baseline).per_query[metrics[0]]
        for s in scored:
            if s.name != baseline:
                report.tests[s.name] = paired_test(base, s.per_query[metrics[0]], test)
    return report


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_trec_run(run: Run, path: str | Path, tag: str = "hybrid") -> Path:
    """TREC run format: ``qid Q0 docid rank score tag``, ranks from 1 by descending score."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for qid, docs in run.items():
            ranked = sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))
            for rank, (doc, score) in enumerate(ranked, 1):
                f.write(f"{qid} Q0 {doc} {rank} {score:.6f} {tag}\n")
    return path


def read_trec_run(path: str | Path) -> Run:
    run: Run = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5:
                run.setdefault(parts[0], {})[parts[2]] = float(parts[4])
    return run


def format_table(report: EvalReport, digits: int = 4) -> str:
    """A markdown table: one row per system, one column per metric (+ test vs baseline)."""
    head = ["system", *report.metrics]
    if report.tests:
        head += [f"Δ{report.metrics[0]} vs {report.baseline}", "p"]
    lines = [
        f"{report.dataset} ({report.split or 'all'}), {len(report.query_ids)} queries",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for s in report.systems:
        cells = [s.name] + [f"{s.mean(m):.{digits}f}" for m in report.metrics]
        if report.tests:
            t = report.tests.get(s.name)
            cells += [f"{t.diff:+.{digits}f}", f"{t.p_value:.3g}"] if t else ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    for note in report.notes:
        lines.append(f"\n{note}")
    return "\n".join(lines)


def standard_systems(
    names: Sequence[str], extra: Mapping[str, FusionConfig] | None = None, depth: int = 100
) -> dict[str, FusionConfig | str]:
    """Each retriever alone, RRF (k=60), weighted min-max (equal weights), the engine's default
    (``"adaptive"``, :data:`~hybrid.config.DEFAULT_CONFIG`), then ``extra``."""
    from hybrid.config import DEFAULT_CONFIG

    systems: dict[str, FusionConfig | str] = {n: n for n in names}
    if len(names) > 1:
        systems["rrf"] = FusionConfig(method="rrf", rrf_k=60, depth=depth)
        systems["minmax-sum"] = FusionConfig(method="wsum", norm="minmax", depth=depth)
        systems[DEFAULT_CONFIG.method] = DEFAULT_CONFIG.replace(depth=depth)
    systems.update(extra or {})
    return systems


def precomputed_encodings(
    folder: str | Path, data: Dataset, splade: str = "splade", dense: str = "dense"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Document and query encodings from a folder laid out like ``scifact-encoded``
    (``doc_ids.json``, ``splade_docs.npz``, ``minilm_docs.npy``, ``query_ids.json``,
    ``splade_queries.npz``, ``minilm_queries.npy``), aligned to ``data``'s documents and
    queries. Queries are returned only when the folder holds every one of ``data``'s queries.
    Returns ``(doc_encodings, query_encodings)`` keyed by the retriever names given."""
    import scipy.sparse as sp

    folder = Path(folder)
    doc_pos = {d: i for i, d in enumerate(json.loads((folder / "doc_ids.json").read_text()))}
    missing = [d for d in data.doc_ids if d not in doc_pos]
    if missing:
        raise ValueError(f"{folder} has no encodings of documents {missing[:3]}...")
    rows = np.array([doc_pos[d] for d in data.doc_ids])
    docs = {
        splade: sp.load_npz(folder / "splade_docs.npz").tocsr()[rows],
        dense: np.load(folder / "minilm_docs.npy")[rows],
    }
    queries: dict[str, Any] = {}
    q_pos = {q: i for i, q in enumerate(json.loads((folder / "query_ids.json").read_text()))}
    if all(q in q_pos for q in data.queries):
        q_rows = np.array([q_pos[q] for q in data.queries])
        queries = {
            splade: sp.load_npz(folder / "splade_queries.npz").tocsr()[q_rows],
            dense: np.load(folder / "minilm_queries.npy")[q_rows],
        }
    return docs, queries
