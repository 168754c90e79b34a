"""upsert / update_metadata / get / delete on the engine, the readers-writer lock, and the
shared thread pool: behaviour and validation (stand-in encoders, no models)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from hybrid import Document
from hybrid.engine.locks import RWLock, run_each
from tests._standins import engine as standin_engine

QUERIES = ["alpha beta", "gamma", "delta alpha omega", "beta beta zeta"]


def _docs():
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa omega".split()
    rng = np.random.default_rng(3)
    return [" ".join(rng.choice(words, size=rng.integers(2, 8))) for _ in range(40)]


def _fused(engine, fusion="rrf"):
    return [[(h.id, h.score) for h in hits] for hits in engine.search(QUERIES, k=15, fusion=fusion)]


def _assert_same_engine(a, b):
    """Same live ids in the same order, same hits (ids and scores) for every retriever."""
    assert a.ids() == b.ids() and len(a) == len(b)
    for fusion in ("rrf", "wsum"):
        got, want = _fused(a, fusion), _fused(b, fusion)
        for g, w in zip(got, want, strict=True):
            assert [i for i, _ in g] == [i for i, _ in w]
            np.testing.assert_allclose([s for _, s in g], [s for _, s in w], rtol=1e-6)
    ca, cb = a.retrieve(QUERIES, depth=40), b.retrieve(QUERIES, depth=40)
    for name in a.names:
        ids_a = [[a.store.ids[i] if i >= 0 else None for i in row] for row in ca.results[name].ids]
        ids_b = [[b.store.ids[i] if i >= 0 else None for i in row] for row in cb.results[name].ids]
        assert ids_a == ids_b, name
        np.testing.assert_array_equal(ca.results[name].scores, cb.results[name].scores)


def test_upsert_inserts_and_replaces_and_equals_a_rebuild():
    docs = _docs()
    engine = standin_engine()
    engine.add(docs[:30], ids=[f"d{i}" for i in range(30)], metadata=[{"n": i} for i in range(30)])
    new_ids = engine.upsert(
        ["alpha omega omega", "zeta zeta", *docs[30:]],
        ids=["d3", "d10", *[f"d{i}" for i in range(30, 40)]],
        metadata=[{"v": 2}, None, *[{"n": i} for i in range(30, 40)]],
    )
    assert new_ids == ["d3", "d10", *[f"d{i}" for i in range(30, 40)]]
    assert len(engine) == 40
    order = [f"d{i}" for i in range(30) if i not in (3, 10)] + new_ids  # replaced move to the end
    assert engine.ids() == order
    assert engine.get("d3") == Document("d3", "alpha omega omega", {"v": 2})
    assert engine.get(["d10", "d0"]) == [
        Document("d10", "zeta zeta", {}),
        Document("d0", docs[0], {"n": 0}),
    ]
    fresh = standin_engine()
    got = engine.get(order)
    fresh.add([d.text for d in got], ids=order, metadata=[d.metadata for d in got])
    _assert_same_engine(engine, fresh)
    top = engine.search("alpha omega", k=1)[0]
    assert top.id == "d3" and top.metadata == {"v": 2} and top.text == "alpha omega omega"


def test_upsert_validates_before_changing_anything():
    engine = standin_engine()
    engine.add(["alpha beta", "gamma"], ids=["a", "b"])
    before = _fused(engine)
    with pytest.raises(ValueError, match="duplicate id 'a' in this batch"):
        engine.upsert(["x", "y"], ids=["a", "a"])
    with pytest.raises(ValueError, match="got 2 documents but 1 ids"):
        engine.upsert(["x", "y"], ids=["a"])
    with pytest.raises(TypeError, match=r"metadata\[1\] must be a dict or None"):
        engine.upsert(["x", "y"], ids=["a", "c"], metadata=[{}, 5])
    with pytest.raises(TypeError, match="upsert needs ids"):
        engine.upsert(["x"], ids=None)
    with pytest.raises(TypeError, match=r"ids\[0\] is float"):
        engine.upsert(["x"], ids=[1.5])
    boom = standin_engine()
    boom.add(["alpha beta", "gamma"], ids=["a", "b"])

    def fail(texts):
        raise RuntimeError("encoder down")

    boom.retrievers["bm25"].encode_documents = fail
    with pytest.raises(RuntimeError, match="encoder down"):
        boom.upsert(["new text"], ids=["a"])
    assert boom.get("a").text == "alpha beta" and boom.ids() == ["a", "b"]
    assert _fused(engine) == before and engine.ids() == ["a", "b"]
    assert engine.upsert("one text", ids="z") == ["z"]  # a single document
    assert engine.get("z").text == "one text"


def test_update_metadata_replaces_without_encoding():
    engine = standin_engine()
    engine.add(["alpha beta", "gamma", "beta"], ids=["a", "b", 7], metadata=[{"x": 1}, None, {}])
    calls = []
    for retriever in engine.retrievers.values():
        original = retriever.encode_documents
        retriever.encode_documents = lambda texts, f=original: calls.append(texts) or f(texts)
    before = _fused(engine)
    engine.update_metadata("a", {"lang": "en"})
    engine.update_metadata(["b", 7], [{"lang": "ko"}, None])
    assert calls == []
    assert [d.metadata for d in engine.get(["a", "b", 7])] == [{"lang": "en"}, {"lang": "ko"}, {}]
    assert _fused(engine) == before  # scores and order untouched
    hit = next(h for h in engine.search("alpha", k=3) if h.id == "a")
    assert hit.metadata == {"lang": "en"}
    with pytest.raises(KeyError, match="unknown document ids: \\['nope'\\]"):
        engine.update_metadata(["a", "nope"], [{"y": 1}, {"y": 2}])
    assert engine.get("a").metadata == {"lang": "en"}  # nothing changed
    with pytest.raises(ValueError, match="got 2 ids but 1 metadata entries"):
        engine.update_metadata(["a", "b"], [{}])
    with pytest.raises(ValueError, match="duplicate id in ids: 'a'"):
        engine.update_metadata(["a", "a"], [{}, {}])
    with pytest.raises(TypeError, match="metadata for one id must be a dict"):
        engine.update_metadata("a", [{}])
    with pytest.raises(TypeError, match="metadata must be a list of dicts"):
        engine.update_metadata(["a"], {"k": 1})
    with pytest.raises(TypeError, match=r"metadata\[0\] must be a dict or None"):
        engine.update_metadata(["a"], ["no"])
    doc = engine.get("a")
    doc.metadata["lang"] = "changed"  # a copy
    assert engine.get("a").metadata == {"lang": "en"}


def test_get_and_delete_errors():
    engine = standin_engine()
    engine.add(["alpha", "beta"], ids=["a", 2])
    assert engine.get(2) == Document(2, "beta", {})
    assert engine.get([]) == []
    with pytest.raises(KeyError, match="unknown document ids: \\['x', 3\\]"):
        engine.get(["a", "x", 3])
    with pytest.raises(TypeError, match="ids must be an id"):
        engine.get(None)
    with pytest.raises(KeyError, match="unknown document ids"):
        engine.delete(["a", "zz"])
    assert engine.ids() == ["a", 2]
    with pytest.raises(ValueError, match="more than once"):
        engine.delete(["a", "a"])  # an id given twice: refused, nothing deleted
    assert engine.ids() == ["a", 2]
    engine.delete(["a"])
    assert engine.ids() == [2] and len(engine) == 1
    with pytest.raises(KeyError):
        engine.get("a")
    assert [h.id for h in engine.search("alpha beta", k=5)] == [2]


def test_rwlock_readers_share_writers_exclude_and_go_first():
    lock = RWLock()
    inside, peak, order = [0], [0], []
    gate = threading.Barrier(3)

    def reader(name):
        with lock.read():
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
            gate.wait(timeout=5)  # three readers inside at once, or this times out
            inside[0] -= 1
        order.append(name)

    threads = [threading.Thread(target=reader, args=(f"r{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert peak[0] == 3
    # A waiting writer goes before readers that arrive after it; it waits for the reader inside.
    events = []
    held = threading.Event()

    def first_reader():
        with lock.read():
            held.set()
            time.sleep(0.3)
            events.append("reader 1 done")

    def writer():
        with lock.write():
            events.append("writer")

    def late_reader():
        with lock.read():
            events.append("reader 2")

    t1 = threading.Thread(target=first_reader)
    t1.start()
    held.wait(5)
    tw = threading.Thread(target=writer)
    tw.start()
    time.sleep(0.1)  # the writer is waiting now
    t2 = threading.Thread(target=late_reader)
    t2.start()
    for t in (t1, tw, t2):
        t.join(5)
    assert events == ["reader 1 done", "writer", "reader 2"]


def test_run_each_waits_for_every_call_then_raises_the_first_error():
    finished = []

    def fn(name):
        if name == "a":
            raise ValueError("a failed")
        time.sleep(0.2)
        finished.append(name)
        return name.upper()

    with pytest.raises(ValueError, match="a failed"):
        run_each(fn, ["a", "b", "c"], parallel=True)
    assert sorted(finished) == ["b", "c"]  # nothing still running after the raise
    assert run_each(lambda n: n * 2, ["x", "y"], parallel=True) == {"x": "xx", "y": "yy"}
    assert run_each(lambda n: n * 2, ["x", "y"], parallel=False) == {"x": "xx", "y": "yy"}


@pytest.mark.parametrize("parallel", [True, False])
def test_concurrent_searches_agree_with_one_thread(parallel):
    # 8 threads share one engine (and its BM25 / SPLADE scratch pools, FAISS index).
    engine = standin_engine(parallel=parallel)
    engine.add(_docs() * 3)
    queries = [" ".join(q.split()[::-1]) for q in _docs()[:20]] + QUERIES
    want = [[(h.id, h.score) for h in engine.search(q, k=10)] for q in queries]
    errors, got = [], {}

    def worker(t):
        try:
            for _ in range(5):
                for i, q in enumerate(queries):
                    got[t, i] = [(h.id, h.score) for h in engine.search(q, k=10)]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(got[t, i] == want[i] for t in range(8) for i in range(len(queries)))


def test_explain_after_the_document_is_replaced_names_it():
    engine = standin_engine()
    engine.add(["alpha beta", "gamma"], ids=["a", "b"])
    hit = engine.search("alpha", k=1)[0]
    assert hit.explain().bm25_terms[0].term == "alpha"
    engine.upsert(["alpha again"], ids=["a"])
    with pytest.raises(KeyError, match="document 'a' was deleted or replaced after this search"):
        hit.explain()


def test_the_index_build_bar_advances_once_per_retriever(monkeypatch):
    """``add(progress=True)`` draws a "build indexes" bar that moves as each retriever has
    indexed the batch (so it has a rate and an ETA), not in one jump at the end."""
    import hybrid.engine.writes as engine_mod

    seen: list[tuple[int, str]] = []

    class Bar:
        n = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def set_postfix_str(self, text, refresh=True):
            self.postfix = text

        def update(self, n):
            self.n += n
            seen.append((self.n, self.postfix))

    monkeypatch.setattr(engine_mod, "progress_bar", lambda *a, **k: Bar())
    engine = standin_engine()
    engine.add(_docs()[:5], progress=True)
    assert [n for n, _ in seen] == list(range(1, len(engine.names) + 1))
    assert sorted(name for _, name in seen) == sorted(engine.names)
