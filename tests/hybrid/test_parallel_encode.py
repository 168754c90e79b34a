"""``parallel=True``: query encoders run side by side only when they take long enough."""

from __future__ import annotations

import time

import hybrid.engine.base as base
from tests._standins import docs
from tests._standins import engine as standin_engine


def _encode_modes(monkeypatch) -> list[bool]:
    """The ``parallel`` flag of every query-encoding ``run_each`` call from now on."""
    modes: list[bool] = []
    real = base.run_each

    def spy(fn, names, parallel):
        if fn.__name__ == "encode":  # not the retrievers' searches
            modes.append(parallel)
        return real(fn, names, parallel)

    monkeypatch.setattr(base, "run_each", spy)
    return modes


def test_cheap_encoders_stay_in_the_calling_thread_slow_ones_go_side_by_side(monkeypatch):
    engine = standin_engine()
    texts, ids, _ = docs(40, seed=1)
    engine.add(texts, ids=ids)
    before = engine.search("alpha beta", k=5)
    modes = _encode_modes(monkeypatch)
    engine.search("alpha beta", k=5)  # costs known now: microseconds each
    assert modes == [False]
    costs = engine._encode_costs
    assert set(costs) == {"splade", "dense", "bm25"}
    assert max(costs.values()) < base.ENCODE_PARALLEL_MIN_SECONDS

    splade = engine.retrievers["splade"].encoder
    plain = splade.encode_queries

    def slow(texts):  # a model-like encoder: milliseconds, the GIL released while it waits
        time.sleep(0.004)
        return plain(texts)

    monkeypatch.setattr(splade, "encode_queries", slow)
    dense = engine.retrievers["dense"]
    plain_dense = dense.encode_queries

    def slow_dense(texts):
        time.sleep(0.004)
        return plain_dense(texts)

    monkeypatch.setattr(dense, "encode_queries", slow_dense)
    for _ in range(6):  # the running averages move towards ~4 ms each
        engine.search("alpha beta", k=5)
    assert modes[-1] is True
    assert [(h.id, h.score) for h in engine.search("alpha beta", k=5)] == [
        (h.id, h.score) for h in before
    ]
    seen = len(modes)
    engine.parallel = False
    engine.search("alpha beta", k=5)
    assert True not in modes[seen:]  # never side by side when parallel is off
