"""A small engine with fast stand-in encoders (BM25 + a hashed bag-of-words dense encoder), for
tests of the async methods and the framework adapters: no model is loaded."""

from __future__ import annotations

import asyncio
import inspect
import re
import time
import zlib

import numpy as np
import pytest

from hybrid import BM25Retriever, DenseRetriever, HybridRetriever
from hybrid.encoders.dense import CallableEncoder

DOCS = [
    (
        "sat-1",
        "Satellite imagery supports defense and disaster response.",
        {"lang": "en", "year": 2021, "tags": ["space", "defense"]},
    ),
    (
        "sat-2",
        "Earth observation satellites image farms for crop yield.",
        {"lang": "en", "year": 2019, "tags": ["space", "farming"]},
    ),
    (
        "ko-1",
        "위성 데이터 분석으로 국방과 재난 대응을 돕는다.",
        {"lang": "ko", "year": 2023, "tags": ["space"]},
    ),
    ("ko-2", "위성 영상 기반 농업 분석 서비스", {"lang": "ko", "year": 2020, "tags": ["farming"]}),
    (
        "med-1",
        "Vitamin D supplements and bone density in adults.",
        {"lang": "en", "year": 2018, "source": {"site": "pubmed"}},
    ),
    (
        "med-2",
        "Satellite cells repair muscle after injury.",
        {"lang": "en", "year": 2022, "source": {"site": "pubmed"}},
    ),
    ("news-1", "Launch of a new imaging satellite announced.", {"lang": "en", "year": 2024}),
    ("misc-1", "Crop rotation improves soil health.", {"lang": "en"}),
]
IDS = [d[0] for d in DOCS]
QUERIES = ["satellite imagery for defense", "crop farming", "위성 데이터", "muscle injury repair"]


def hashed_bow(dim: int = 64, delay: float = 0.0):
    """texts -> L2-normalised hashed bag of words (crc32 of each lowercase word); ``delay``
    seconds of sleep per call stands in for a slow model."""

    def encode(texts: list[str]) -> np.ndarray:
        if delay:
            time.sleep(delay)
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, zlib.crc32(word.encode()) % dim] += 1.0
        return out

    return encode


def small_engine(delay: float = 0.0) -> HybridRetriever:
    encoder = CallableEncoder(hashed_bow(delay=delay), name="hashed-bow", dim=64, normalize=True)
    engine = HybridRetriever(
        {"bm25": BM25Retriever("english"), "dense": DenseRetriever(encoder)}, fusion="rrf"
    )
    engine.add([d[1] for d in DOCS], ids=IDS, metadata=[d[2] for d in DOCS])
    return engine


def has_filter(engine: HybridRetriever) -> bool:
    return "filter" in inspect.signature(engine.search).parameters


def needs_filter(engine: HybridRetriever) -> None:
    """Skip a test that needs ``engine.search(filter=...)`` when this engine predates it."""
    if not has_filter(engine):
        pytest.skip("engine.search has no filter= yet (issue #20, metadata filters)")


def same_hits(ids, scores, hits) -> None:
    """An adapter's results (``ids``, ``scores``) equal the engine's ``hits``: same ids (as
    str), same order, same scores."""
    assert list(ids) == [str(h.id) for h in hits]
    np.testing.assert_array_equal(scores, [h.score for h in hits])


class SpyEngine:
    """Wraps an engine and records the keyword arguments of every search (the filter too),
    dropping ``filter`` before the real search when the engine does not take it yet."""

    def __init__(self, engine: HybridRetriever) -> None:
        self.engine = engine
        self.calls: list[dict] = []

    def search(self, query, **kwargs):
        self.calls.append(dict(kwargs))
        if not has_filter(self.engine):
            kwargs.pop("filter", None)
        return self.engine.search(query, **kwargs)


DELAY = 0.5  # seconds each call of the slow stand-in encoder sleeps


def ticking_while(work) -> tuple[object, np.ndarray]:
    """Run ``await work()`` beside a coroutine that ticks every 10 ms; the result and the gaps
    between ticks (a gap near DELAY means the event loop was blocked)."""
    ticks: list[float] = []

    async def ticker(stop: asyncio.Event):
        while not stop.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    async def main():
        stop = asyncio.Event()
        task = asyncio.create_task(ticker(stop))
        await asyncio.sleep(0.02)
        result = await work()
        await asyncio.sleep(0.02)
        stop.set()
        await task
        return result

    result = asyncio.run(main())
    return result, np.diff(ticks)
