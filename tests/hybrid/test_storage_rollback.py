"""A write whose SQLite commit fails after the in-memory apply is undone completely, FAISS
deletes and HNSW adds included (Flat, HNSW and IVF dense indexes)."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from hybrid import HybridRetriever
from hybrid.storage.folder import EngineFolder
from tests import _standins as S

pytest.importorskip("faiss")

FACTORIES = ["Flat", "HNSW32", "IVF4,Flat"]


def _engine(path, factory):
    return HybridRetriever(S.retrievers(factory), path=path, parallel=False)


def _state(engine):
    """:func:`S.state` plus the dense retriever's own ranking (unfused, unfiltered and
    filtered) and the dense index's counts."""
    out = S.state(engine)
    dense = engine.search(S.QUERIES, k=8, weights={"dense": 1.0, "splade": 0.0, "bm25": 0.0})
    out["dense"] = [[(h.id, round(h.score, 4)) for h in q] for q in dense]
    some = engine.search(S.QUERIES, k=8, filter={"seed": 1})
    out["filtered"] = [[h.id for h in q] for q in some]
    index = engine.retrievers["dense"].index
    out["dense_live"] = (len(index), index.next_id)
    return out


def _failing_commit(monkeypatch):
    real = EngineFolder.finish_commit

    def finish_commit(self, manifest):
        self.abort()
        raise sqlite3.OperationalError("disk I/O error (injected)")

    monkeypatch.setattr(EngineFolder, "finish_commit", finish_commit)
    return lambda: monkeypatch.setattr(EngineFolder, "finish_commit", real)


@pytest.mark.parametrize("factory", FACTORIES)
@pytest.mark.parametrize("write", ["add", "delete", "upsert", "add_after_delete"])
def test_a_failed_sqlite_commit_leaves_the_engine_as_before(tmp_path, monkeypatch, factory, write):
    e = _engine(tmp_path / "e", factory)
    t, i, m = S.docs(40, 1)
    e.add(t, ids=i, metadata=m)
    e.delete(i[:3])
    if write == "add_after_delete":  # the failed write follows a committed delete
        e.delete(i[3:5])
    dense = e.retrievers["dense"].index
    removable = factory != "HNSW32"  # a committed delete leaves FAISS (HNSW: a tombstone)
    assert dense._tombstones.size == (0 if removable else 5 if write == "add_after_delete" else 3)
    before = _state(e)
    t2, i2, m2 = S.docs(6, 2)

    def do(engine):
        if write in ("add", "add_after_delete"):
            engine.add(t2, ids=i2, metadata=m2)
        elif write == "delete":
            engine.delete(i[5:12])
        else:  # replaces 3 documents and adds 3
            engine.upsert(t2, ids=i[10:13] + i2[:3], metadata=m2)

    restore = _failing_commit(monkeypatch)
    with pytest.raises(sqlite3.OperationalError, match="injected"):
        do(e)
    restore()
    assert e._broken is None
    assert _state(e) == before
    do(e)  # the next write works, and gives what a clean engine gives
    ref = _engine(tmp_path / "ref", factory)  # the same calls, no failure
    ref.add(t, ids=i, metadata=m)
    ref.delete(i[:3])
    if write == "add_after_delete":
        ref.delete(i[3:5])
    do(ref)
    assert _state(e) == _state(ref)
    e.add(*S.docs(4, 3)[:2])
    ref.add(*S.docs(4, 3)[:2])
    assert _state(e) == _state(ref)
    e.close()
    ref.close()
    # reopened, both replay their commits (an IVF trained by a replayed add may differ from
    # one trained in memory, so the reopened engines are compared with each other)
    ref = HybridRetriever.open(tmp_path / "ref", encoders=S.encoders(), parallel=False)
    again = HybridRetriever.open(tmp_path / "e", encoders=S.encoders(), parallel=False)
    assert _state(again) == _state(ref)
    again.optimize()  # a snapshot of an index holding orphans opens again
    again.close()
    again = HybridRetriever.open(tmp_path / "e", encoders=S.encoders(), parallel=False)
    assert _state(again) == _state(ref)
    again.close()
    ref.close()


def test_hnsw_undone_add_leaves_orphans_that_no_search_returns(tmp_path):
    from indexes.dense import DenseIndex

    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 8)).astype(np.float32)
    index = DenseIndex(8, metric="cosine", factory="HNSW32")
    index.add(x[:30])
    index.delete([2, 3])
    want = index.search(x[:5], k=10)
    token = index.checkpoint()
    index.add(x[30:40])
    index.delete([4])
    index.rollback(token)
    assert (len(index), index.next_id, index._orphans) == (28, 30, 10)
    got = index.search(x[:5], k=10)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_allclose(got.scores, want.scores)
    # the ids 30.. are reused; their vectors sit after the orphans
    assert index.add(x[40:50]).tolist() == list(range(30, 40))
    assert index._positions(np.array([0, 29, 30, 39])).tolist() == [0, 29, 40, 49]
    hits = index.search(x[40:50], k=1).ids[:, 0]
    assert hits.tolist() == list(range(30, 40))
    allowed = np.zeros(40, dtype=bool)
    allowed[[1, 31, 35]] = True
    sub = index.search(x[41:42], k=3, allowed=allowed)  # exact subset: positions mapped
    assert sub.ids[0, 0] == 31
    np.testing.assert_allclose(sub.scores[0, 0], 1.0, rtol=1e-5)
    with pytest.raises(RuntimeError, match="no open write"):
        index.rollback(token)
    path = index.save(tmp_path / "h")
    loaded = DenseIndex.load(path)
    assert loaded._orphans == 10 and loaded._positions(np.array([30])).tolist() == [40]
    np.testing.assert_array_equal(loaded.search(x[:50], k=5).ids, index.search(x[:50], k=5).ids)


@pytest.mark.parametrize("factory", ["Flat", "IVF4,Flat"])
def test_deletes_inside_a_write_are_tombstones_until_it_settles(factory):
    from indexes.dense import DenseIndex

    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 8)).astype(np.float32)
    index = DenseIndex(8, factory=factory)
    index.add(x)
    if index.nprobe is not None:
        index.nprobe = 4  # every list: exact
    index.checkpoint()
    index.delete([0, 5, 7])
    assert index._tombstones.tolist() == [0, 5, 7] and index._index.ntotal == 40
    hits = index.search(x[[0, 5, 7]], k=39).ids
    assert not np.isin(hits, [0, 5, 7]).any() and (hits >= 0).sum() == 3 * 37
    index.settle()
    assert index._tombstones.size == 0 and index._index.ntotal == 37
    np.testing.assert_array_equal(index.search(x[[0, 5, 7]], k=39).ids, hits)


def test_an_ivf_trained_after_reopening_equals_one_trained_in_memory(tmp_path):
    # FAISS reads an untrained IVF back with another quantizer class that trains to other
    # centroids; the loaded index starts from the factory instead
    e = _engine(tmp_path / "e", "IVF4,Flat")
    mem = _engine(None, "IVF4,Flat")
    t, i, m = S.docs(40, 1)
    for engine in (e, mem):
        engine.add(t, ids=i, metadata=m)
        engine.delete(i[:3])
    e.close()
    again = HybridRetriever.open(tmp_path / "e", encoders=S.encoders(), parallel=False)
    assert _state(again) == _state(mem)
    again.close()


@pytest.mark.parametrize(("factory", "setting", "value"), [("IVF2,Flat", "nprobe", 2)])
def test_undoing_the_training_add_keeps_the_search_settings(factory, setting, value):
    """The first add trains an IVF index; undoing it starts the index again, untrained, with
    the search settings it had (not the defaults)."""
    from indexes import DenseIndex

    index = DenseIndex(8, factory=factory)
    setattr(index, setting, value)
    token = index.checkpoint()
    index.add(np.random.default_rng(0).standard_normal((64, 8)).astype(np.float32))
    index.rollback(token)
    assert len(index) == 0 and not index._index.is_trained
    assert getattr(index, setting) == value
