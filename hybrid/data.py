"""Reading document collections: BEIR folders and JSONL files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ID_KEYS = ("_id", "id", "docid", "doc_id")
_TEXT_KEYS = ("text", "contents", "body")


@dataclass
class Documents:
    """Parallel lists of ids, texts and metadata."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    """Lines whose title and text were both empty."""

    def __len__(self) -> int:
        return len(self.ids)


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """The lines of a UTF-8 text file, numbered from 1 (a leading byte-order mark is dropped).

    A line that is not UTF-8 raises ``ValueError`` naming the file, the line and the byte.
    """
    with open(path, "rb") as f:
        for line_no, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{path}:{line_no}: not UTF-8 text (byte {raw[exc.start]:#04x} at column "
                    f"{exc.start + 1}); save the file as UTF-8"
                ) from None
            yield line_no, line.lstrip("\ufeff") if line_no == 1 else line


def json_object(path: str | Path, line_no: int, line: str) -> dict[str, Any]:
    """One JSONL line as a dict; ``ValueError`` naming the file and line otherwise."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc
    if not isinstance(row, dict):
        kind = type(row).__name__
        raise ValueError(f"{path}:{line_no}: expected a JSON object per line, got a {kind}")
    return row


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for line_no, line in text_lines(path):
        if not line.strip():
            continue
        yield line_no, json_object(path, line_no, line)


def read_documents(source: str | Path, limit: int | None = None) -> Documents:
    """Documents from a BEIR folder (its ``corpus.jsonl``) or a JSONL file.

    Each line needs an id (``_id``, ``id``, ``docid`` or ``doc_id``) and a text (``text``,
    ``contents`` or ``body``); a non-empty ``title`` is prepended as ``title + " " + text`` (the
    BEIR convention). Every other field is kept as metadata.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer (>= 1) or None, got {limit!r}")
    path = Path(source)
    if path.is_dir():
        path = path / "corpus.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{source} is a folder without corpus.jsonl (not BEIR format)")
    elif not path.is_file():
        raise FileNotFoundError(f"no such file or folder: {source}")
    docs = Documents()
    for line_no, row in _jsonl(path):
        doc_id = next((row[k] for k in _ID_KEYS if k in row), None)
        text = next((row[k] for k in _TEXT_KEYS if k in row), None)
        if doc_id is None or not isinstance(text, str):
            raise ValueError(f"{path}:{line_no}: each document needs an id field and a text field")
        if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
            raise ValueError(
                f"{path}:{line_no}: the document id must be a string or an integer, got "
                f"{json.dumps(doc_id)[:40]}"
            )
        if not isinstance(row.get("title") or "", str):
            raise ValueError(f"{path}:{line_no}: the title must be a string")
        title = row.get("title") or ""
        full = f"{title} {text}".strip() if title else text
        if not full.strip():
            docs.skipped += 1  # an empty document cannot be retrieved; count it, go on
            continue
        used = {k for k in (*_ID_KEYS, *_TEXT_KEYS) if k in row}
        docs.ids.append(str(doc_id))
        docs.texts.append(full)
        docs.metadata.append({k: v for k, v in row.items() if k not in used})
        if limit is not None and len(docs) >= limit:
            break
    return docs


def read_queries(path: str | Path) -> dict[str, str]:
    """Queries: query id -> text, from JSONL (BEIR ``queries.jsonl``: ``_id``/``id`` + ``text``/
    ``query``) or TSV (``id<TAB>text``, an optional header row)."""
    path = Path(path)
    out: dict[str, str] = {}
    if path.suffix in (".jsonl", ".json"):
        for line_no, row in _jsonl(path):
            qid = next((row[k] for k in ("_id", "id", "qid", "query_id") if k in row), None)
            text = next((row[k] for k in ("text", "query", "title") if k in row), None)
            if qid is None or not isinstance(text, str):
                raise ValueError(f"{path}:{line_no}: a query needs an id and a text field")
            out[str(qid)] = text
        return out
    for line_no, line in text_lines(path):
        if not line.strip():
            continue
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) < 2:
            raise ValueError(f"{path}:{line_no}: expected 'id<TAB>text'")
        if line_no == 1 and parts[0] in ("id", "_id", "qid", "query-id", "query_id"):
            continue  # header row
        out[parts[0]] = parts[1]
    return out


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Judgements: query id -> {doc id: relevance}, from BEIR TSV (``query-id corpus-id score``
    after a header row) or TREC qrels (``qid 0 doc score``, whitespace-separated). Ids may hold
    spaces in tab-separated files."""
    qrels: dict[str, dict[str, int]] = {}
    for line_no, line in text_lines(path):
        line = line.rstrip("\r\n")
        parts = [x.strip() for x in (line.split("\t") if "\t" in line else line.split())]
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
