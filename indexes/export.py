"""Export encoded collections for Anserini/Lucene and Elasticsearch/OpenSearch, and read them back.

Token naming (one scheme for both engines, reversible): a vocabulary token is written as is,
except that its UTF-8 bytes for ``%``, ``.``, whitespace, control/unassigned characters and a
leading ``_`` are percent-encoded (``%2E`` for ``.``), and the empty token is written as a lone
``%``. So ``"##ing"`` stays ``"##ing"``, ``"a.b"`` becomes ``"a%2Eb"`` (Elasticsearch's
``rank_features`` rejects dots, which it reads as object paths), ``" "`` becomes ``"%20"`` (Anserini
splits pre-tokenized text on whitespace) and Hangul stays Hangul. ``decode_token`` inverts it.

- Anserini ``JsonVectorCollection``: one JSON object per line, ``{"id", "contents": "",
  "vector": {token: impact}}`` with integer impacts ``round(weight * scale)``; impacts that round
  to 0 are dropped. Index with ``-collection JsonVectorCollection -impact -pretokenized``.
- Elasticsearch/OpenSearch ``_bulk`` NDJSON: an ``index`` action line then ``{field: {token:
  weight * scale}}`` per document, for a ``rank_features`` field (see ``elasticsearch_mapping``).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import scipy.sparse as sp

_EMPTY = "%"


def _needs_escape(ch: str, first: bool) -> bool:
    return (
        ch in "%." or ch.isspace() or unicodedata.category(ch)[0] == "C" or (first and ch == "_")
    )


def encode_token(token: str) -> str:
    """Engine-safe, reversible name of a vocabulary token (see module docstring)."""
    if token == "":
        return _EMPTY
    out = []
    for i, ch in enumerate(token):
        if _needs_escape(ch, i == 0):
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8")))
        else:
            out.append(ch)
    return "".join(out)


def decode_token(name: str) -> str:
    """Inverse of :func:`encode_token`."""
    return "" if name == _EMPTY else unquote(name, errors="strict")


def _names(vocab: Sequence[str], dim: int) -> list[str]:
    if len(vocab) < dim:
        raise ValueError(f"vocab has {len(vocab)} tokens, the matrix has {dim} columns")
    names = [encode_token(t) for t in vocab]
    if len(set(names)) != len(names):
        raise ValueError("vocab has duplicate tokens; names would not round-trip")
    return names


def _rows(csr: sp.spmatrix, doc_ids: Sequence, vocab: Sequence[str], scale: float,
          as_int: bool) -> Iterator[tuple[str, dict]]:
    m = sp.csr_matrix(csr)
    m.sum_duplicates()
    if len(doc_ids) != m.shape[0]:
        raise ValueError(f"{len(doc_ids)} doc_ids for {m.shape[0]} rows")
    if m.data.size and (not np.all(np.isfinite(m.data)) or m.data.min() < 0):
        raise ValueError("weights must be finite and >= 0")
    names = _names(vocab, m.shape[1])
    for i in range(m.shape[0]):
        a, b = m.indptr[i], m.indptr[i + 1]
        vals = m.data[a:b].astype(np.float64) * scale
        if as_int:
            vals = np.rint(vals)
        vec = {}
        for t, v in zip(m.indices[a:b].tolist(), vals.tolist(), strict=True):
            if v > 0:
                vec[names[t]] = int(v) if as_int else float(np.float32(v))
        yield str(doc_ids[i]), vec


def to_anserini_jsonl(csr: sp.spmatrix, doc_ids: Sequence, vocab: Sequence[str],
                      path: str | Path, scale: float = 100) -> Path:
    """Write an Anserini ``JsonVectorCollection`` file with integer impacts."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        for doc_id, vec in _rows(csr, doc_ids, vocab, scale, as_int=True):
            f.write(json.dumps({"id": doc_id, "contents": "", "vector": vec},
                               ensure_ascii=False) + "\n")
    return path


def to_elasticsearch_bulk(csr: sp.spmatrix, doc_ids: Sequence, vocab: Sequence[str],
                          path: str | Path, index_name: str, field: str = "splade",
                          scale: float = 1.0) -> Path:
    """Write an Elasticsearch/OpenSearch ``_bulk`` NDJSON file for a ``rank_features`` field."""
    path = Path(path)
    with path.open("w", encoding="utf-8") as f:
        for doc_id, vec in _rows(csr, doc_ids, vocab, scale, as_int=False):
            f.write(json.dumps({"index": {"_index": index_name, "_id": doc_id}}) + "\n")
            f.write(json.dumps({field: vec}, ensure_ascii=False) + "\n")
    return path


def elasticsearch_mapping(field: str = "splade") -> dict:
    """Index mapping with ``field`` as ``rank_features`` (query it with ``rank_feature``)."""
    return {"mappings": {"properties": {field: {"type": "rank_features"}}}}


def _to_csr(rows: list[dict], vocab: Sequence[str], scale: float) -> sp.csr_matrix:
    col = {encode_token(t): i for i, t in enumerate(vocab)}
    indptr, indices, data = [0], [], []
    for vec in rows:
        for name, v in vec.items():
            if name not in col:
                raise KeyError(f"token {decode_token(name)!r} (written {name!r}) is not in vocab")
            indices.append(col[name])
            data.append(v / scale)
        indptr.append(len(indices))
    m = sp.csr_matrix((np.asarray(data, np.float32), np.asarray(indices, np.int32),
                       np.asarray(indptr, np.int64)), shape=(len(rows), len(vocab)))
    m.sort_indices()
    return m


def read_anserini_jsonl(path: str | Path, vocab: Sequence[str],
                        scale: float = 100) -> tuple[list[str], sp.csr_matrix]:
    """Read a file written by :func:`to_anserini_jsonl`: (doc ids, CSR of impact / scale)."""
    ids, rows = [], []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                obj = json.loads(line)
                ids.append(obj["id"])
                rows.append(obj["vector"])
    return ids, _to_csr(rows, vocab, scale)


def read_elasticsearch_bulk(path: str | Path, vocab: Sequence[str], field: str = "splade",
                            scale: float = 1.0) -> tuple[list[str], sp.csr_matrix]:
    """Read a file written by :func:`to_elasticsearch_bulk`: (doc ids, CSR of value / scale)."""
    ids, rows = [], []
    with Path(path).open(encoding="utf-8") as f:
        lines = [ln for ln in f if ln.strip()]
    for action, source in zip(lines[::2], lines[1::2], strict=False):
        ids.append(json.loads(action)["index"]["_id"])
        rows.append(json.loads(source)[field])
    return ids, _to_csr(rows, vocab, scale)
