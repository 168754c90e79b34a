"""Anserini / Elasticsearch exports round-trip, with one reversible token naming."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from indexes.export import (
    decode_token,
    elasticsearch_mapping,
    encode_token,
    read_anserini_jsonl,
    read_elasticsearch_bulk,
    to_anserini_jsonl,
    to_elasticsearch_bulk,
)

VOCAB = ["[PAD]", "##ing", "a.b", " ", "", "%", "_x", "x_y", "한국어", "tab\there", "..", "%2E"]


def sample(seed=0):
    rng = np.random.default_rng(seed)
    m = sp.random(6, len(VOCAB), density=0.5, format="csr", random_state=rng, dtype=np.float64)
    m.data = (m.data * 3).astype(np.float32)
    return m.astype(np.float32)


@pytest.mark.parametrize(
    ("token", "name"),
    [("##ing", "##ing"), ("a.b", "a%2Eb"), (" ", "%20"), ("", "%"), ("%", "%25"),
     ("_x", "%5Fx"), ("x_y", "x_y"), ("한국어", "한국어"), ("tab\there", "tab%09here")],
)
def test_token_naming(token, name):
    assert encode_token(token) == name
    assert decode_token(name) == token


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",))))
def test_token_naming_round_trips_and_is_engine_safe(token):
    name = encode_token(token)
    assert decode_token(name) == token
    assert name and "." not in name and not any(c.isspace() for c in name)
    assert not name.startswith("_")


def test_anserini_round_trip(tmp_path):
    m, ids = sample(), [f"d{i}" for i in range(6)]
    path = to_anserini_jsonl(m, ids, VOCAB, tmp_path / "docs.jsonl", scale=100)
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["contents"] == ""
    assert all(isinstance(v, int) for v in lines[0]["vector"].values())
    got_ids, got = read_anserini_jsonl(path, VOCAB, scale=100)
    assert got_ids == ids
    expected = m.copy()
    expected.data = np.rint(expected.data * 100) / 100
    expected.eliminate_zeros()
    np.testing.assert_allclose(got.toarray(), expected.toarray(), atol=1e-6)


def test_elasticsearch_round_trip(tmp_path):
    m, ids = sample(1), list(range(6))
    path = to_elasticsearch_bulk(m, ids, VOCAB, tmp_path / "bulk.ndjson", "scifact")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {"index": {"_index": "scifact", "_id": "0"}}
    assert all("." not in key for key in json.loads(lines[1])["splade"])
    got_ids, got = read_elasticsearch_bulk(path, VOCAB)
    assert got_ids == [str(i) for i in ids]
    np.testing.assert_array_equal(got.toarray(), m.toarray())
    mapping = elasticsearch_mapping("splade")
    assert mapping["mappings"]["properties"]["splade"]["type"] == "rank_features"


def test_errors(tmp_path):
    m = sample()
    with pytest.raises(ValueError, match="doc_ids"):
        to_anserini_jsonl(m, ["a"], VOCAB, tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="vocab"):
        to_anserini_jsonl(m, list(range(6)), VOCAB[:3], tmp_path / "x.jsonl")
    path = to_anserini_jsonl(m, list(range(6)), VOCAB, tmp_path / "x.jsonl")
    with pytest.raises(KeyError, match="not in vocab"):
        read_anserini_jsonl(path, ["only"])
