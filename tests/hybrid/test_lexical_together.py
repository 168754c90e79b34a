"""The engine searches its SPLADE and BM25 indexes in one GIL-free call (indexes.joint) where it
searches the retrievers one after another without a filter, and measures the adaptive evidence
on the way: the hits are exactly those of searching each retriever on its own."""

from __future__ import annotations

import hybrid.engine.base as base
import hybrid.engine.search as search_module
from tests._standins import docs
from tests._standins import engine as standin_engine


def _engine(parallel=False, n=300):
    engine = standin_engine(parallel=parallel)
    texts, ids, meta = docs(n, seed=4)
    engine.add(texts, ids=ids, metadata=meta)
    for retriever in engine.retrievers.values():  # BM25's impacts, as between writes
        precompute = getattr(retriever.index, "precompute", None)
        if precompute is not None:
            precompute()
    return engine, texts


def _calls(monkeypatch) -> list[bool]:
    """Whether each call of search_lexical searched both indexes (from now on)."""
    calls: list[bool] = []
    real = search_module.search_lexical

    def spy(*args):
        found = real(*args)
        calls.append(found is not None)
        return found

    monkeypatch.setattr(search_module, "search_lexical", spy)
    return calls


def _view(hits):
    """Each hit's id, score, rank and sources (``repr`` of the numbers: NaN for absent equals)."""
    return [(h.id, h.score, h.rank, {n: repr(vars(s)) for n, s in h.sources.items()}) for h in hits]


def test_hits_and_explanations_equal_those_of_separate_searches(monkeypatch):
    engine, texts = _engine()
    queries = [t.split(".")[0][:40] for t in texts[:25]] + ["alpha 2024", "zzz unknownword"]
    calls = _calls(monkeypatch)
    together = {
        (q, method): _view(engine.search(q, k=10, fusion=method))
        for q in queries
        for method in ("adaptive", "rrf", "wsum")
    }
    explained = [str(h.explain()) for h in engine.search(queries[0], k=5)]
    assert sum(calls) >= 3 * 25  # the one-call path answered for the queries with known terms
    monkeypatch.setattr(search_module, "search_lexical", lambda *args: None)  # one by one
    separate = {
        (q, method): _view(engine.search(q, k=10, fusion=method))
        for q in queries
        for method in ("adaptive", "rrf", "wsum")
    }
    assert together == separate
    assert explained == [str(h.explain()) for h in engine.search(queries[0], k=5)]


def test_evidence_measured_on_the_way_equals_evidence_measured_at_fusion():
    engine, texts = _engine()
    query = texts[3][:50]
    names = list(engine.names)
    on_the_way = engine._retrieve_encoded(
        [query], engine._encode_queries([query], names), 1000, names, measure=True
    )
    assert set(on_the_way.evidence) == set(names)
    later = engine.retrieve([query], depth=1000)
    assert not later.evidence
    engine._measure(later, names)
    for name in names:
        assert on_the_way.evidence[name].tolist() == later.evidence[name].tolist()
        assert on_the_way.evidence_across[name].tolist() == later.evidence_across[name].tolist()
        assert on_the_way.results[name].ids.tolist() == later.results[name].ids.tolist()


def test_filters_parallel_searches_and_other_backends_search_one_by_one(monkeypatch):
    engine, texts = _engine()
    calls = _calls(monkeypatch)
    engine.search(texts[0][:30], k=5, filter={"group": 1})  # a filter: each index on its own
    assert calls == []
    parallel, _ = _engine(parallel=True)
    monkeypatch.setattr(base, "PARALLEL_MIN_WORK", 1)  # side by side in the pool
    parallel.search(texts[0][:30], k=5)
    assert calls == []

    class OwnSearch(type(engine)):  # a backend that searches its own way (as Qdrant's does)
        def _search_retriever(self, name, encoded, depth, allowed, filter):
            return super()._search_retriever(name, encoded, depth, allowed, filter)

    assert OwnSearch._lexical_pair(engine, list(engine.names)) is not None
    engine.__class__ = OwnSearch
    assert engine._lexical_pair(list(engine.names)) is None


def test_threads_search_together_while_a_writer_deletes(monkeypatch):
    """8 threads search through the one-call path while a writer deletes documents (BM25's
    impacts precomputed again soon after each): every search equals a one-thread search of the
    same state (pooled scratch buffers are never shared), and no hit is a document whose delete
    returned before the search began."""
    import threading
    import time

    engine, texts = _engine(n=3000)  # kernels long enough for threads to overlap in them
    engine.retrievers["bm25"].index.precompute_delay = 0.005
    calls = _calls(monkeypatch)
    queries = [t.split(".")[0][:40] for t in texts[:40]]
    ids = engine.ids()
    deleted_at: dict[str, float] = {}
    errors: list[str] = []
    done = threading.Event()

    def writer():
        try:
            for doc_id in ids[::7][:25]:
                engine.delete([doc_id])
                deleted_at[doc_id] = time.monotonic()
                time.sleep(0.01)
        except Exception as exc:  # reported below
            errors.append(repr(exc))
        finally:
            done.set()

    def searcher(seed):
        try:
            i = seed
            while not done.is_set() or i < seed + 40:
                q = queries[i % len(queries)]
                began = time.monotonic()
                hits = engine.search(q, k=20)
                gone = {d for d, t in list(deleted_at.items()) if t < began}
                if gone & {h.id for h in hits}:
                    errors.append(f"deleted document found by {q!r}")
                if len({h.id for h in hits}) != len(hits):
                    errors.append(f"duplicate hits for {q!r}")
                i += 1
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=searcher, args=(s,)) for s in range(8)]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(calls) > 50  # the one-call path served many of the concurrent searches
    engine.retrievers["bm25"].index.precompute()
    before = sum(calls)
    results: dict[str, list] = {}

    def final(q):
        results[q] = _view(engine.search(q, k=20))

    threads = [threading.Thread(target=final, args=(q,)) for q in queries]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(calls) - before == len(queries)  # all together, all through the one call
    monkeypatch.setattr(search_module, "search_lexical", lambda *args: None)
    assert results == {q: _view(engine.search(q, k=20)) for q in queries}
