"""Reading BEIR folders and JSONL document files."""

from __future__ import annotations

import json

import pytest

from hybrid.data import read_documents, read_qrels, read_queries


def test_jsonl_titles_metadata_and_empty_lines(tmp_path):
    path = tmp_path / "docs.jsonl"
    rows = [
        {"_id": "a", "title": "Title", "text": "body", "year": 2020},
        {"id": 7, "contents": "only contents"},
        {"docid": "c", "title": "", "text": "   "},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    docs = read_documents(path)
    assert docs.ids == ["a", "7"]
    assert docs.texts == ["Title body", "only contents"]
    assert docs.metadata == [{"title": "Title", "year": 2020}, {}]
    assert docs.skipped == 1
    assert len(read_documents(path, limit=1)) == 1


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_documents(tmp_path / "none.jsonl")
    with pytest.raises(FileNotFoundError, match="corpus.jsonl"):
        read_documents(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_documents(bad)


def test_scifact_beir_folder(scifact_dir):
    docs = read_documents(scifact_dir)
    assert len(docs) == 5183
    queries = read_queries(scifact_dir / "queries.jsonl")
    qrels = read_qrels(scifact_dir / "qrels" / "test.tsv")
    assert len(qrels) == 300 and set(qrels) <= set(queries)
    assert sum(len(v) for v in qrels.values()) == 339
