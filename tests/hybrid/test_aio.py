"""The engine's async methods: same results as the blocking ones, and no blocked event loop."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from tests._adapter_engine import DELAY, DOCS, IDS, QUERIES, small_engine, ticking_while

pytest.importorskip("faiss", reason="needs faiss-cpu (extra models)")


def test_asearch_equals_search():
    engine = small_engine()

    async def main():
        return await asyncio.gather(*(engine.asearch(q, k=5) for q in QUERIES))

    for query, hits in zip(QUERIES, asyncio.run(main()), strict=True):
        expected = engine.search(query, k=5)
        assert [h.id for h in hits] == [h.id for h in expected]
        np.testing.assert_array_equal([h.score for h in hits], [h.score for h in expected])
    batch = asyncio.run(engine.asearch(QUERIES[:2], k=3, fusion="wsum"))
    assert [[h.id for h in hs] for hs in batch] == [
        [h.id for h in hs] for hs in engine.search(QUERIES[:2], k=3, fusion="wsum")
    ]


def test_aadd_and_adelete_change_the_engine():
    engine = small_engine()

    async def main():
        ids = await engine.aadd(["Orbital debris tracking radar"], ids=["new"])
        found = await engine.asearch("orbital debris", k=1)
        await engine.adelete("new")
        gone = await engine.asearch("orbital debris", k=len(IDS) + 1)
        return ids, found, gone

    ids, found, gone = asyncio.run(main())
    assert ids == ["new"] and found[0].id == "new"
    assert "new" not in {h.id for h in gone} and len(engine) == len(DOCS)
    with pytest.raises((KeyError, ValueError)):  # errors reach the awaiting coroutine unchanged
        asyncio.run(engine.adelete("never-added"))


def test_a_slow_encoder_does_not_block_the_event_loop():
    engine = small_engine(delay=DELAY)

    async def work():
        start = time.perf_counter()
        hits = await engine.asearch(QUERIES[0], k=3)
        await engine.aadd(["Orbital debris tracking radar"], ids=["new"])
        return hits, time.perf_counter() - start

    (hits, elapsed), gaps = ticking_while(work)
    assert elapsed >= 2 * DELAY  # one query encoding, one document encoding
    assert hits[0].id == "sat-1"
    assert len(gaps) > 50 and gaps.max() < DELAY * 0.8, (len(gaps), gaps.max())


def test_the_blocking_search_does_block_the_event_loop():
    """The counterpart of the test above, so that it can fail: ``search`` in a coroutine."""
    engine = small_engine(delay=DELAY)

    async def work():
        return engine.search(QUERIES[0], k=3)

    _, gaps = ticking_while(work)
    assert gaps.max() >= DELAY


def test_methods_the_engine_lacks_say_so():
    engine = small_engine()
    for name in ("upsert", "update_metadata", "get"):
        if hasattr(engine, name):
            continue  # the delegating method is tested with the method itself
        with pytest.raises(NotImplementedError, match=f"has no {name}\\(\\)"):
            asyncio.run(getattr(engine, f"a{name}")("sat-1"))


def test_async_twins_pass_their_arguments_through_in_a_worker_thread():
    """aupsert / aupdate_metadata / aget delegate to upsert / update_metadata / get (whatever
    their signatures), in a thread other than the event loop's."""
    import threading

    from hybrid.engine.aio import AsyncEngineMixin

    class Recorder(AsyncEngineMixin):
        def __init__(self):
            self.calls = []

        def _record(self, name, args, kwargs):
            self.calls.append((name, args, kwargs, threading.current_thread().name))
            return name

        def upsert(self, *args, **kwargs):
            return self._record("upsert", args, kwargs)

        def update_metadata(self, *args, **kwargs):
            return self._record("update_metadata", args, kwargs)

        def get(self, *args, **kwargs):
            return self._record("get", args, kwargs)

    rec = Recorder()

    async def main():
        return [
            await rec.aupsert(["t"], ids=["a"], metadata=[{"x": 1}]),
            await rec.aupdate_metadata("a", {"x": 2}),
            await rec.aget(["a", "b"]),
        ]

    assert asyncio.run(main()) == ["upsert", "update_metadata", "get"]
    main_thread = threading.main_thread().name
    assert [(n, a, k) for n, a, k, _ in rec.calls] == [
        ("upsert", (["t"],), {"ids": ["a"], "metadata": [{"x": 1}]}),
        ("update_metadata", ("a", {"x": 2}), {}),
        ("get", (["a", "b"],), {}),
    ]
    assert all(thread != main_thread for *_, thread in rec.calls)


def test_aupsert_aupdate_metadata_aget_round_trip():
    engine = small_engine()
    missing = [n for n in ("upsert", "update_metadata", "get") if not hasattr(engine, n)]
    if missing:
        pytest.skip(f"engine has no {', '.join(missing)} yet (issue #19)")

    async def main():
        new = {"lang": "en", "year": 2025}
        await engine.aupsert(["Orbital debris tracking radar"], ids=["sat-1"], metadata=[new])
        replaced = await engine.aget("sat-1")
        await engine.aupdate_metadata("sat-1", {"lang": "xx"})
        updated = await engine.aget(["sat-1", "ko-1"])
        hits = await engine.asearch("orbital debris", k=1)
        return replaced, updated, hits

    replaced, updated, hits = asyncio.run(main())
    assert (replaced.text, replaced.metadata) == (
        "Orbital debris tracking radar",
        {"lang": "en", "year": 2025},
    )
    assert [d.metadata for d in updated] == [
        {"lang": "xx"},
        {"lang": "ko", "year": 2023, "tags": ["space"]},
    ]
    assert hits[0].id == "sat-1" and len(engine) == len(DOCS)
