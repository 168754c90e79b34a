"""SpladeEncoder: parity with SparseEncoder, sparsity knobs, long documents, the PIXIE path."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from hybrid.encoders.splade import SpladeEncoder, keep_top_terms, max_pool_rows

DOCS = [
    "TelePIX provides advanced solutions by analyzing satellite data for ocean and agriculture.",
    "High-resolution optical satellite imagery is critical for defense and reconnaissance.",
    "Space economy creates new value through the utilization of space-based data.",
]


def test_documents_equal_sparse_encoder_output(splade_tiny):
    got = splade_tiny.encode_documents(DOCS)
    ref = splade_tiny.model.encode_document(DOCS, convert_to_sparse_tensor=False).numpy()
    assert isinstance(got, sp.csr_matrix) and got.dtype == np.float32
    assert got.shape == (3, 30522) == ref.shape
    np.testing.assert_allclose(got.toarray(), ref, atol=1e-6)
    assert got.has_sorted_indices


def test_queries_equal_sparse_encoder_output(splade_tiny):
    got = splade_tiny.encode_queries(["satellite imagery for defense"])
    ref = splade_tiny.model.encode_query(
        ["satellite imagery for defense"], convert_to_sparse_tensor=False
    )
    np.testing.assert_allclose(got.toarray(), ref.numpy(), atol=1e-6)


def test_batches_are_stacked_in_order(splade_tiny):
    many = [f"{d} number {i}" for i in range(40) for d in DOCS[:1]]
    small = SpladeEncoder("offline:splade-tiny", batch_size=4, doc_min_weight=0.0)
    small.drop_special_tokens = False
    got = small.encode_documents(many)
    ref = splade_tiny.encode_documents(many)
    np.testing.assert_allclose(got.toarray(), ref.toarray(), atol=1e-5)


def test_min_weight_and_special_tokens_are_dropped(offline_extra):
    enc = SpladeEncoder("offline:splade-tiny", doc_min_weight=0.3)
    m = enc.encode_documents(DOCS)
    assert m.data.min() >= 0.3
    assert not np.isin(m.indices, enc.tokenizer.all_special_ids).any()
    assert m.nnz > 0


def test_max_terms_keeps_the_heaviest(splade_tiny):
    full = splade_tiny.encode_documents(DOCS)
    enc = SpladeEncoder("offline:splade-tiny", doc_min_weight=0.0, doc_max_terms=7)
    enc.drop_special_tokens = False
    top = enc.encode_documents(DOCS)
    for i in range(3):
        row, ref = top[i], full[i]
        assert row.nnz == 7
        expected = np.sort(ref.data)[-7:]
        np.testing.assert_allclose(np.sort(row.data), expected, atol=1e-6)


def test_query_and_document_settings_are_separate(offline_extra):
    enc = SpladeEncoder("offline:splade-tiny", doc_max_terms=5, query_max_terms=3)
    assert enc.encode_documents(DOCS[0]).nnz == 5
    assert enc.encode_queries(DOCS[0]).nnz == 3


def test_keep_top_terms_by_hand():
    m = sp.csr_matrix(np.array([[0.5, 0.0, 2.0, 1.0], [3.0, 3.0, 0.0, 0.1]], dtype=np.float32))
    got = keep_top_terms(m, 2).toarray()
    # row 1 ties at 3.0: both kept; row 0 keeps 2.0 and 1.0
    np.testing.assert_array_equal(got, [[0, 0, 2.0, 1.0], [3.0, 3.0, 0, 0]])


def test_max_pool_rows_by_hand():
    m = sp.csr_matrix(np.array([[1, 0, 2], [3, 0, 1], [0, 5, 0]], dtype=np.float32))
    got = max_pool_rows(m, np.array([0, 0, 1]), 2).toarray()
    np.testing.assert_array_equal(got, [[3, 0, 2], [0, 5, 0]])


def test_long_documents_truncate_vs_chunk(offline_extra):
    long_text = " ".join(DOCS * 6)
    trunc = SpladeEncoder("offline:splade-tiny", max_length=24, doc_min_weight=0.0)
    chunk = SpladeEncoder(
        "offline:splade-tiny", max_length=24, doc_min_weight=0.0, long_documents="chunk"
    )
    t = trunc.encode_documents([long_text])
    c = chunk.encode_documents([long_text])
    # truncation sees only the first window: the last sentence's words are missing
    econ = trunc.tokenizer.convert_tokens_to_ids("economy")
    assert t[0, econ] == 0 and c[0, econ] > 0
    # chunking equals the max over its windows, each encoded on its own
    windows, owner = chunk._windows([long_text])
    assert len(windows) > 1 and (owner == 0).all()
    per_window = chunk._sparsify(
        chunk._encode(windows, chunk.model.encode_document, "w"), 0.0, None
    ).toarray()
    np.testing.assert_allclose(c.toarray()[0], per_window.max(axis=0), atol=1e-6)
    # every window fits in the model: no window is truncated
    lengths = [len(chunk.tokenizer(w)["input_ids"]) for w in windows]
    assert max(lengths) <= 24


def test_short_documents_are_identical_in_chunk_mode(splade_tiny):
    chunk = SpladeEncoder("offline:splade-tiny", doc_min_weight=0.0, long_documents="chunk")
    chunk.drop_special_tokens = False
    np.testing.assert_allclose(
        chunk.encode_documents(DOCS).toarray(), splade_tiny.encode_documents(DOCS).toarray()
    )


def test_decode_strips_wordpiece_markers(splade_tiny):
    ids = splade_tiny.tokenizer("telepix satellites", add_special_tokens=False)["input_ids"]
    assert splade_tiny.decode(ids) == ["tel", "ep", "ix", "satellites"]
    assert splade_tiny.vocab[ids[1]] == "##ep"  # the raw, unique form kept for exports


@pytest.mark.parametrize("bad", [[], [""], ["ok", "  "], [1], None])
def test_bad_input_is_rejected(splade_tiny, bad):
    with pytest.raises((ValueError, TypeError)):
        splade_tiny.encode_documents(bad)


def test_bad_settings_are_rejected(offline_extra):
    with pytest.raises(ValueError, match="long_documents"):
        SpladeEncoder("offline:splade-tiny", long_documents="split")
    with pytest.raises(ValueError, match="unknown offline model"):
        SpladeEncoder("offline:nope")


def test_spec_round_trip(offline_extra):
    from hybrid.encoders.splade import splade_encoder_from_spec

    enc = SpladeEncoder("offline:splade-tiny", doc_max_terms=50, long_documents="chunk")
    again = splade_encoder_from_spec(enc.spec)
    assert again.spec == enc.spec
    np.testing.assert_array_equal(
        again.encode_documents(DOCS).toarray(), enc.encode_documents(DOCS).toarray()
    )


class TestPixiePath:
    """The code path of telepix/PIXIE-Splade-v1.5, on a tiny random model of the same shape."""

    def test_loads_as_modernbert_with_pixie_max_length(self, tiny_pixie_path):
        enc = SpladeEncoder(str(tiny_pixie_path))
        assert type(enc.model.transformers_model).__name__ == "ModernBertForMaskedLM"
        assert enc.max_length == 5632
        assert enc.dim == len(enc.tokenizer)

    def test_encodes_korean_and_english_to_vocab_columns(self, tiny_pixie_path):
        enc = SpladeEncoder(str(tiny_pixie_path), doc_min_weight=0.0)
        m = enc.encode_documents(["위성 데이터를 분석합니다", "satellite data analysis"])
        assert m.shape == (2, enc.dim) and m.nnz > 0
        assert not np.isin(m.indices, enc.tokenizer.all_special_ids).any()
        ref = enc.model.encode_document(
            ["위성 데이터를 분석합니다", "satellite data analysis"], convert_to_sparse_tensor=False
        ).numpy()
        ref[:, enc.tokenizer.all_special_ids] = 0
        np.testing.assert_allclose(m.toarray(), ref, atol=1e-6)

    def test_korean_subwords_decode_readably(self, tiny_pixie_path):
        enc = SpladeEncoder(str(tiny_pixie_path))
        ids = enc.tokenizer("위성 데이터를", add_special_tokens=False)["input_ids"]
        tokens = enc.decode(ids)
        assert "데이터를" in tokens  # a whole-syllable subword reads as Hangul
        # a subword holding part of a syllable shows its stray bytes, never U+FFFD
        everything = enc.decode(range(enc.dim))
        assert all("\ufffd" not in t for t in everything)
        assert any("\\x" in t for t in everything)

    def test_chunking_long_korean_document(self, tiny_pixie_path):
        enc = SpladeEncoder(
            str(tiny_pixie_path), max_length=16, long_documents="chunk", doc_min_weight=0.0
        )
        text = (
            "텔레픽스는 위성 데이터를 분석하여 해양, 농업 등 다양한 분야에 솔루션을 제공합니다. "
            * 4
        )
        windows, _ = enc._windows([text])
        assert len(windows) > 2
        assert enc.encode_documents([text]).nnz > 0
