"""Searcher threads against writer threads on one engine; shared by
tests/hybrid/test_stress.py (short) and benchmarks/stress.py (long).

Writers own disjoint ids and do random add / upsert / delete / update_metadata; each text
starts with its id and version (``"w0-17 v3 ..."``). Searchers check every hit: no duplicate
ids in a ranking, no document whose delete returned before the search began, no version older
than one whose upsert returned before the search began, text and id agree. An optional saver
thread saves the engine now and then and loads it back. Afterwards the caller compares the
engine with one rebuilt from the surviving documents.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from hybrid import HybridRetriever
from tests._standins import encoders as standin_encoders
from tests._standins import engine as standin_engine

WORDS = [f"w{i}" for i in range(80)]
HANGUL = [chr(0xAC00 + 97 * i) + chr(0xAC00 + 89 * i + 5) for i in range(80)]
"""Two-syllable Hangul words: with ``bilingual``, half the documents and queries use them, so
fusion places two scripts against each other (the dense retriever's vector sample, its
per-script baselines)."""
FUSIONS = ["adaptive", "rrf", "wsum"]


@dataclass
class StressReport:
    seconds: float
    searches: int = 0
    hits_checked: int = 0
    writes: dict[str, int] = field(default_factory=dict)
    saves: int = 0
    errors: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


class _Writer:
    def __init__(self, w: int, rng: random.Random, vocabularies: list[list[str]]) -> None:
        self.w = w
        self.rng = rng
        self.vocabularies = vocabularies
        self.next = 0
        self.live: dict[str, tuple[str, dict]] = {}

    def text(self, doc_id: str, version: int) -> str:
        vocabulary = self.rng.choice(self.vocabularies)
        words = self.rng.choices(vocabulary, k=self.rng.randint(3, 12))
        return f"{doc_id} v{version} " + " ".join(words)

    def new_id(self) -> str:
        self.next += 1
        return f"w{self.w}-{self.next}"


def run_stress(
    seconds: float,
    searchers: int = 8,
    writers: int = 2,
    initial: int = 300,
    factory: str = "Flat",
    save_every: float | None = None,
    seed: int = 0,
    parallel: bool = True,
    bilingual: bool = False,
) -> tuple[HybridRetriever, StressReport, dict[str, tuple[str, dict]]]:
    """Run the threads for ``seconds``; returns the engine, the report and the documents the
    writers believe are live (id -> (text, metadata)). ``bilingual``: half the documents and
    queries in Hangul words (:data:`HANGUL`)."""
    vocabularies = [WORDS, HANGUL] if bilingual else [WORDS]
    engine = standin_engine(dense_factory=factory, parallel=parallel)
    report = StressReport(seconds)
    ws = [_Writer(w, random.Random(seed * 100 + w), vocabularies) for w in range(writers)]
    versions: dict[str, int] = {}
    deleted_at: dict[str, float] = {}
    upserted_at: dict[str, tuple[int, float]] = {}
    for i in range(initial):
        wr = ws[i % writers]
        doc_id = wr.new_id()
        wr.live[doc_id] = (wr.text(doc_id, 0), {"w": wr.w})
        versions[doc_id] = 0
    init = [(i, t, m) for wr in ws for i, (t, m) in wr.live.items()]
    engine.add([t for _, t, _ in init], ids=[i for i, _, _ in init], metadata=[m for *_, m in init])
    stop = threading.Event()
    lock = threading.Lock()  # the report's counters

    def fail(where: str) -> None:
        with lock:
            report.errors.append(f"{where}: {traceback.format_exc()}")
        stop.set()

    def writer(wr: _Writer) -> None:
        rng = wr.rng
        try:
            while not stop.is_set():
                op = rng.choice(["add", "upsert", "delete", "update_metadata"])
                live = list(wr.live)
                if op in ("delete", "update_metadata") and len(live) < 20:
                    op = "add"
                if op == "add":
                    ids = [wr.new_id() for _ in range(rng.randint(1, 20))]
                    texts = [wr.text(i, 0) for i in ids]
                    metas = [{"w": wr.w, "n": rng.randint(0, 9)} for _ in ids]
                    engine.add(texts, ids=ids, metadata=metas)
                    for i, t, m in zip(ids, texts, metas, strict=True):
                        versions[i] = 0
                        wr.live[i] = (t, m)
                elif op == "upsert":
                    old = rng.sample(live, min(len(live), rng.randint(1, 8)))
                    ids = old + [wr.new_id() for _ in range(rng.randint(0, 3))]
                    texts = [wr.text(i, versions.get(i, -1) + 1) for i in ids]
                    metas = [{"w": wr.w, "u": True} for _ in ids]
                    engine.upsert(texts, ids=ids, metadata=metas)
                    now = time.monotonic()
                    for i, t, m in zip(ids, texts, metas, strict=True):
                        versions[i] = versions.get(i, -1) + 1
                        wr.live[i] = (t, m)
                        upserted_at[i] = (versions[i], now)
                elif op == "delete":
                    ids = rng.sample(live, rng.randint(1, 10))
                    engine.delete(ids)
                    now = time.monotonic()
                    for i in ids:
                        deleted_at[i] = now
                        del wr.live[i]
                else:
                    ids = rng.sample(live, rng.randint(1, 10))
                    metas = [{"w": wr.w, "m": rng.randint(0, 99)} for _ in ids]
                    engine.update_metadata(ids, metas)
                    for i, m in zip(ids, metas, strict=True):
                        wr.live[i] = (wr.live[i][0], m)
                with lock:
                    report.writes[op] = report.writes.get(op, 0) + 1
        except Exception:
            fail(f"writer {wr.w}")

    def check(hits, t0: float, where: str) -> int:
        seen = set()
        for h in hits:
            if h.id in seen:
                report.violations.append(f"{where}: duplicate hit {h.id}")
            seen.add(h.id)
            if deleted_at.get(h.id, float("inf")) < t0:
                report.violations.append(f"{where}: {h.id} deleted before the search began")
            head, ver = h.text.split()[:2]
            if head != str(h.id):
                report.violations.append(f"{where}: hit {h.id} carries the text of {head}")
            last = upserted_at.get(h.id)
            if last is not None and last[1] < t0 and int(ver[1:]) < last[0]:
                report.violations.append(f"{where}: {h.id} {ver} after v{last[0]} was committed")
        return len(hits)

    def searcher(s: int) -> None:
        rng = random.Random(seed * 1000 + 500 + s)
        try:
            while not stop.is_set():
                kind = rng.random()
                queries = [
                    " ".join(rng.choices(rng.choice(vocabularies), k=rng.randint(1, 5)))
                    for _ in range(3)
                ]
                k = rng.randint(5, 30)
                fusion = rng.choice(FUSIONS)
                t0 = time.monotonic()
                if kind < 0.85:
                    hits = [engine.search(queries[0], k=k, fusion=fusion)]
                else:
                    hits = engine.search(queries, k=k, fusion=fusion)
                elapsed = time.monotonic() - t0
                n = sum(check(h, t0, f"searcher {s}") for h in hits)
                if hits[0] and rng.random() < 0.05:
                    try:
                        hits[0][0].explain()
                    except KeyError:  # deleted or replaced since the search: allowed
                        if hits[0][0].id not in deleted_at and hits[0][0].id not in upserted_at:
                            raise
                with lock:
                    report.searches += len(hits)
                    report.hits_checked += n
                    report.latencies_ms.append(1e3 * elapsed)
        except Exception:
            fail(f"searcher {s}")

    def saver() -> None:
        folder = Path(tempfile.mkdtemp(prefix="stress-save-"))
        try:
            while not stop.wait(save_every):
                engine.save(folder / "engine")
                loaded = HybridRetriever.load(folder / "engine", encoders=standin_encoders())
                ids = loaded.ids()
                if len(set(ids)) != len(ids) or len(loaded) != len(ids):
                    report.violations.append("saver: a saved engine's ids are inconsistent")
                for name, retriever in loaded.retrievers.items():
                    if len(retriever) != len(ids):
                        report.violations.append(f"saver: {name} holds {len(retriever)} docs")
                with lock:
                    report.saves += 1
        except Exception:
            fail("saver")
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    threads = [threading.Thread(target=writer, args=(wr,)) for wr in ws]
    threads += [threading.Thread(target=searcher, args=(s,)) for s in range(searchers)]
    if save_every:
        threads.append(threading.Thread(target=saver))
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(120)
    live = {i: doc for wr in ws for i, doc in wr.live.items()}
    return engine, report, live


def rebuilt(engine: HybridRetriever) -> HybridRetriever:
    """A fresh stand-in engine holding ``engine``'s live documents, in its order."""
    ids = engine.ids()
    docs = engine.get(ids)
    fresh = standin_engine(dense_factory="Flat")
    fresh.add([d.text for d in docs], ids=ids, metadata=[d.metadata for d in docs])
    return fresh
