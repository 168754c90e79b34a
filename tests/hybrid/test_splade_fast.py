"""The fused exact SPLADE forward equals SparseEncoder.encode_document / encode_query."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybrid.encoders._splade_fast import FastSplade, _row_groups, unsupported_reason

torch = pytest.importorskip("torch")

ATOL = 1e-5


@pytest.fixture(scope="module")
def st_model(splade_tiny):
    return splade_tiny.model


@pytest.fixture(scope="module")
def scifact_texts(scifact_dir):
    texts = []
    with open(scifact_dir / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(f"{row['title']} {row['text']}".strip())
            if len(texts) == 12:
                break
    return texts


def _plain(model, texts, task):
    fn = model.encode_query if task == "query" else model.encode_document
    return fn(texts, convert_to_sparse_tensor=False, show_progress_bar=False).float().numpy()


def test_documents_match_sparse_encoder_on_scifact(st_model, scifact_texts):
    fast = FastSplade.from_model(st_model)
    assert fast is not None
    got = fast.encode(scifact_texts, "document", batch_size=8)
    ref = _plain(st_model, scifact_texts, "document")
    assert got.shape == ref.shape and got.dtype == np.float32 and got.has_sorted_indices
    assert np.abs(got.toarray() - ref).max() <= ATOL
    # the same non-zeros (nothing within rounding of zero is gained or lost)
    assert got.nnz == int((ref > 0).sum())


def test_queries_match_and_short_texts_share_tiles(st_model):
    queries = ["0-dimensional biomaterials show inductive properties.", "ALDH1 expression", "x"] * 5
    fast = FastSplade.from_model(st_model, tile_rows=64)
    got = fast.encode(queries, "query")
    assert np.abs(got.toarray() - _plain(st_model, queries, "query")).max() <= ATOL
    bounds = [0, 5, 9, 40, 41, 200, 203]
    groups = _row_groups(bounds, 32)
    assert groups == [(0, 2), (2, 4), (4, 5), (5, 6)]  # a long text is alone


def test_long_text_split_into_row_tiles_and_small_vocab_chunks(st_model, scifact_texts):
    fast = FastSplade.from_model(st_model, tile_rows=16, vocab_chunk=1000, max_tokens=600)
    texts = scifact_texts[:6]
    got = fast.encode(texts, "document", batch_size=3)
    assert np.abs(got.toarray() - _plain(st_model, texts, "document")).max() <= ATOL


def test_prompts_and_truncation_follow_the_model(scifact_texts):
    from sentence_transformers import SparseEncoder

    from hybrid.encoders.models import resolve_model

    model = SparseEncoder(resolve_model("offline:splade-tiny"), device="cpu")
    model.prompts = {"query": "query: ", "document": "passage: "}
    model.max_seq_length = 40
    fast = FastSplade.from_model(model)
    for task in ("query", "document"):
        got = fast.encode(scifact_texts[:5], task)
        assert np.abs(got.toarray() - _plain(model, scifact_texts[:5], task)).max() <= ATOL


def test_threads_are_restored(st_model):
    before = torch.get_num_threads()
    fast = FastSplade.from_model(st_model, num_threads=1)
    fast.encode(["satellite"], "query")
    assert torch.get_num_threads() == before


def test_pixie_modernbert_path(tiny_pixie_path):
    from sentence_transformers import SparseEncoder

    model = SparseEncoder(str(tiny_pixie_path), device="cpu")
    fast = FastSplade.from_model(model)
    assert fast is not None
    texts = ["위성 데이터를 분석합니다", "satellite data analysis for ocean and agriculture " * 8]
    for task in ("query", "document"):
        got = fast.encode(texts, task)
        assert np.abs(got.toarray() - _plain(model, texts, task)).max() <= ATOL


def test_unsupported_models_fall_back(st_model, monkeypatch):
    from sentence_transformers.sparse_encoder.modules import SpladePooling

    pooling = st_model[1]
    monkeypatch.setattr(pooling, "pooling_strategy", "sum")
    assert "pooling" in unsupported_reason(st_model)
    assert FastSplade.from_model(st_model) is None
    monkeypatch.undo()
    assert unsupported_reason(st_model) is None
    assert isinstance(st_model[1], SpladePooling)


def test_a_head_that_disagrees_is_rejected(st_model, monkeypatch):
    import hybrid.encoders._splade_fast as fast_mod

    real = fast_mod._split_mlm

    def wrong_head(lm):
        head = real(lm)
        head.transform = lambda x: x  # skip the MLM transform: vectors would differ
        return head

    monkeypatch.setattr(fast_mod, "_split_mlm", wrong_head)
    assert FastSplade.from_model(st_model) is None


def test_splade_encoder_backend_option(offline_extra):
    from hybrid.encoders.splade import SpladeEncoder

    plain = SpladeEncoder("offline:splade-tiny", backend="sentence-transformers")
    assert plain._fast is None and plain.spec["backend"] == "sentence-transformers"
    fast = SpladeEncoder("offline:splade-tiny")  # backend="auto" on CPU: the fast path
    assert fast._fast is not None and fast.backend == "auto"
    assert SpladeEncoder("offline:splade-tiny", backend="fast")._fast is not None
    docs = ["satellite imagery for defense", "ocean data", "space economy value " * 30]
    np.testing.assert_allclose(
        fast.encode_documents(docs).toarray(), plain.encode_documents(docs).toarray(), atol=ATOL
    )
    np.testing.assert_allclose(
        fast.encode_queries(docs).toarray(), plain.encode_queries(docs).toarray(), atol=ATOL
    )
    with pytest.raises(ValueError, match="backend"):
        SpladeEncoder("offline:splade-tiny", backend="onnx")
