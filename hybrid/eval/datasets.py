"""Evaluation datasets: documents, judged queries and judgements of one split (BEIR or files)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hybrid.data import read_documents, read_qrels, read_queries

read_queries_any = read_queries
"""Old name of :func:`hybrid.data.read_queries` (JSONL or TSV)."""
read_qrels_any = read_qrels
"""Old name of :func:`hybrid.data.read_qrels` (BEIR TSV or TREC)."""


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
    all_queries = read_queries(q_path)
    judged: dict[str, dict[str, int]] = {}
    for p in qrel_paths:
        for qid, rels in read_qrels(p).items():
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
