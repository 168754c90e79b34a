"""Storage benchmark: folder-backed engines against today's full save, plus fault loops.

For a BM25-only engine of ``--bm25-docs`` synthetic documents (SciFact's unigram and length
distributions, as in ``benchmarks/bm25.py``) and a dense-only engine of ``--dense-docs``
synthetic 384-d unit vectors (Flat, as in ``benchmarks/dense.py``), each phase in its own
process (peak RSS per phase):

- ``build``: build in memory, then today's full save (format 1: ``documents.jsonl`` +
  ``retrievers/`` + ``meta.json``, rewritten whole) and ``save()`` (format 2, a full
  crash-safe copy); times and folder sizes.
- ``update``: ``open`` (verify off / on), an ordinary search, ``add`` of 100 documents
  (durable when it returns), the first search after it, a second one, ``delete`` of 10,
  ``optimize``; times, folder size.

- ``merge`` (``--merge-docs`` documents, a fresh engine per kind): 1,000 small commits (5
  documents each, 2 deleted every 10th) with the background merge off and with the default
  :class:`~hybrid.storage.MergePolicy`; then the time per commit, the merges made, the records
  left in the log, folder and database size, ``open`` time (verify off / on); and search
  latency (p50 / p95 over single queries) idle and while a merge runs, with the merge's time.

Then the SIGKILL loop (the writer merging every few commits, so kills land in merges too) and
the corruption loop of ``tests/hybrid/test_storage.py`` with more rounds.

    nice -n 10 python3 benchmarks/storage.py                    # 1M BM25, 200k dense, 300 kills
    python3 benchmarks/storage.py --bm25-docs 20000 --dense-docs 20000 --kills 20   # quick
    python3 benchmarks/storage.py --bm25-docs 0 --dense-docs 0 --merge-docs 100000 --kills 200
"""

from __future__ import annotations

import os

for _var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
DIM = 384
QUERIES = 20
ROUNDS = 9  # writes, each followed by a timed first search


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Memory:
    """Peak resident memory of one section of a phase: VmHWM after resetting it (``clear_refs``
    5; file pages of memory-mapped index files count), and the peak of anonymous memory
    (RssAnon: what the process itself allocated), sampled every 10 ms by a thread."""

    def __enter__(self) -> Memory:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        self.anon = self.anon_start = _status_mb("RssAnon")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.anon = max(self.anon, _status_mb("RssAnon"))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.anon = max(self.anon, _status_mb("RssAnon"))
        self.rss = _status_mb("VmHWM")


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


_SCIFACT: list[list[str]] = []


def scifact_tokens() -> list[list[str]]:
    if _SCIFACT:
        return _SCIFACT
    docs = _SCIFACT
    with open(DATA / "scifact" / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            docs.append(f"{d.get('title') or ''} {d['text']}".lower().split())
    return docs


DOC_LEN = 0  # tokens kept per synthetic document (0: SciFact's lengths)


def bm25_collection(n: int, seed: int = 0):
    from benchmarks.bm25 import synthetic

    docs = synthetic(scifact_tokens(), n, seed)
    return [" ".join(t[:DOC_LEN] if DOC_LEN else t) for t in docs]


def dense_vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def make_engine(kind: str):
    from hybrid import BM25Retriever, DenseRetriever, HybridRetriever
    from hybrid.encoders.dense import CallableEncoder

    if kind == "bm25":
        return HybridRetriever({"bm25": BM25Retriever(str.split)}, parallel=False)
    enc = CallableEncoder(lambda t: dense_vectors(len(t), 99), name="synthetic", dim=DIM)
    return HybridRetriever({"dense": DenseRetriever(enc)}, parallel=False)


def encoders(kind: str):
    from hybrid.encoders.dense import CallableEncoder

    if kind == "bm25":
        return {"bm25": str.split}
    return {
        "dense": CallableEncoder(lambda t: dense_vectors(len(t), 99), name="synthetic", dim=DIM)
    }


def phase_build(kind: str, n: int, work: Path) -> dict:
    engine = make_engine(kind)
    t0 = time.perf_counter()
    step = 50_000
    for s in range(0, n, step):
        m = min(step, n - s)
        ids = [f"d{i}" for i in range(s, s + m)]
        if kind == "bm25":
            texts = bm25_collection(m, seed=s)
            engine.add(texts, ids=ids)
        else:
            texts = [f"document {i}" for i in range(s, s + m)]
            engine.add(texts, ids=ids, encoded={"dense": dense_vectors(m, s)})
    out = {"build s": time.perf_counter() - t0}
    t = time.perf_counter()
    from tests._standins import write_v1

    write_v1(engine, work / "v1")  # today's save (format 1): every file rewritten
    out["today's full save s"] = time.perf_counter() - t
    out["today's folder MB"] = folder_mb(work / "v1")
    shutil.rmtree(work / "v1")
    t = time.perf_counter()
    engine.save(work / "v2")
    out["save() (format 2) s"] = time.perf_counter() - t
    out["format 2 folder MB"] = folder_mb(work / "v2")
    out["build+save peak MB"] = peak_mb()
    return out


def _search_s(engine, queries, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for q in queries:
            engine.search(q, k=10)
        best = min(best, (time.perf_counter() - t) / len(queries))
    return best


def phase_update(kind: str, work: Path) -> dict:
    from hybrid import HybridRetriever

    path = work / "v2"
    out = {}
    for verify in (False, True):
        t = time.perf_counter()
        engine = HybridRetriever.open(path, encoders=encoders(kind), verify=verify, parallel=False)
        out[f"open verify={verify} s"] = time.perf_counter() - t
        engine.close()
        del engine
        gc.collect()  # unmap its files before the measured open
    queries = [" ".join(t[:4]) for t in scifact_tokens()[:QUERIES]]
    with Memory() as mem:
        engine = HybridRetriever.open(path, encoders=encoders(kind), verify=False, parallel=False)
        engine.search(queries[0], k=10)
        time.sleep(2.0)  # BM25 precomputes its impacts 0.5 s after the open, in the background
        out["search ms"] = 1000 * _search_s(engine, queries)
    out["open + searches peak RSS MB"] = mem.rss
    out["open + searches peak anon MB"] = mem.anon
    out["anon before the open MB"] = mem.anon_start
    out["open peak MB (ru_maxrss, process)"] = peak_mb()
    texts = bm25_collection(100, seed=10**6) if kind == "bm25" else [f"new {i}" for i in range(100)]
    ids = [f"new{i}" for i in range(100)]
    with Memory() as mem:
        first, second = [], []
        for r in range(ROUNDS):  # add, then the first search after it and a second one
            batch = [f"new{r}-{i}" for i in range(100)]
            t = time.perf_counter()
            engine.add(texts, ids=batch)
            if r == 0:
                out["add 100 + persist s"] = time.perf_counter() - t
            q = queries[(r + 1) % len(queries)]
            t = time.perf_counter()
            engine.search(q, k=10)
            first.append(1000 * (time.perf_counter() - t))
            t = time.perf_counter()
            engine.search(q, k=10)
            second.append(1000 * (time.perf_counter() - t))
        out["first search after add ms (median)"] = float(np.median(first))
        out["second search after add ms (median)"] = float(np.median(second))
        out["first / ordinary"] = out["first search after add ms (median)"] / out["search ms"]
        firsts = []
        for r in range(ROUNDS):
            t = time.perf_counter()
            engine.delete([f"new{r}-{i}" for i in range(10)])
            if r == 0:
                out["delete 10 + persist s"] = time.perf_counter() - t
            q = queries[(r + 3) % len(queries)]
            t = time.perf_counter()
            engine.search(q, k=10)
            firsts.append(1000 * (time.perf_counter() - t))
        out["first search after delete ms (median)"] = float(np.median(firsts))
        out["first after delete / ordinary"] = float(np.median(firsts)) / out["search ms"]
        time.sleep(1.0)
        out["later search ms"] = 1000 * _search_s(engine, queries)
        engine.add(texts, ids=ids)
        out["folder MB after"] = folder_mb(path)
        t = time.perf_counter()
        engine.optimize()
        out["optimize s"] = time.perf_counter() - t
        engine.close()
        del engine
        gc.collect()
    out["update (writes + optimize) peak RSS MB"] = mem.rss
    out["update peak anon MB"] = mem.anon
    t = time.perf_counter()
    HybridRetriever.open(path, encoders=encoders(kind), verify=True, parallel=False).close()
    out["reopen verify=True s"] = time.perf_counter() - t
    gc.collect()
    mem_engine = HybridRetriever.load(path, encoders=encoders(kind), verify=False, parallel=False)
    mem_engine.search(queries[0], k=10)
    t = time.perf_counter()
    mem_engine.add(texts, ids=[f"mem{i}" for i in range(100)])
    out["in-memory add 100 s (no folder)"] = time.perf_counter() - t
    out["process peak MB (ru_maxrss, all of the above)"] = peak_mb()
    return out


COMMITS = 1000


def _small_commit(engine, kind: str, k: int, texts: list[str]) -> None:
    ids = [f"c{k}-{j}" for j in range(5)]
    if kind == "bm25":
        engine.add(texts[5 * k : 5 * k + 5], ids=ids)
    else:
        engine.add(ids, ids=ids, encoded={"dense": dense_vectors(5, 10**7 + k)})
    if k % 10 == 9:
        engine.delete([f"c{k}-0", f"c{k - 1}-1"])


def _latencies_ms(engine, queries, until=None, rounds: int = 3) -> list[float]:
    out = []
    while True:
        for q in queries:
            t = time.perf_counter()
            engine.search(q, k=10)
            out.append(1000 * (time.perf_counter() - t))
            if until is not None and not until():
                return out
        rounds -= 1
        if until is None and rounds == 0:
            return out


def phase_merge(kind: str, n: int, work: Path) -> dict:
    """1,000 small commits with the background merge off and on; search latency in a merge."""
    from hybrid import HybridRetriever
    from hybrid.storage import MergePolicy

    engine = make_engine(kind)
    ids = [f"d{i}" for i in range(n)]
    if kind == "bm25":
        engine.add(bm25_collection(n, seed=0), ids=ids)
    else:
        engine.add(ids, ids=ids, encoded={"dense": dense_vectors(n, 0)})
    engine.save(work / "base")
    del engine
    out: dict = {}
    queries = [" ".join(t[:4]) for t in scifact_tokens()[:QUERIES]]
    texts = bm25_collection(5 * COMMITS, seed=10**7) if kind == "bm25" else []
    for label, policy in (("merge off", None), ("merge on", MergePolicy())):
        path = work / label.replace(" ", "-")
        shutil.copytree(work / "base", path)
        engine = HybridRetriever.open(
            path, encoders=encoders(kind), verify=False, parallel=False, merge=policy
        )
        t = time.perf_counter()
        for k in range(COMMITS):
            _small_commit(engine, kind, k, texts)
        out[f"{label}: ms per small commit"] = 1000 * (time.perf_counter() - t) / COMMITS
        merger = engine._folder.merger
        if merger is not None:
            merger.wait()
            out[f"{label}: merges"] = merger.merges
        out[f"{label}: log records left"] = engine._folder.log_size[0]
        engine.close()
        out[f"{label}: folder MB"] = folder_mb(path)
        out[f"{label}: engine.sqlite(+wal) MB"] = (
            sum(p.stat().st_size for p in path.glob("engine.sqlite*")) / 2**20
        )
        for verify in (False, True):
            t = time.perf_counter()
            HybridRetriever.open(
                path, encoders=encoders(kind), verify=verify, parallel=False, merge=None
            ).close()
            out[f"{label}: open verify={verify} s"] = time.perf_counter() - t
    # search latency idle and during a merge (of the 1,000-commit log of "merge off")
    never = MergePolicy(max_commits=10**9, min_commits=10**9)
    engine = HybridRetriever.open(
        work / "merge-off", encoders=encoders(kind), verify=False, parallel=False, merge=never
    )
    engine.search(queries[0], k=10)
    idle = _latencies_ms(engine, queries)
    merger = engine._folder.merger
    merger.policy = MergePolicy(max_commits=1, min_commits=1)
    t = time.perf_counter()
    merger.notify()
    during = _latencies_ms(engine, queries, until=lambda: merger._busy or merger._pending)
    merger.wait()
    out["merge of the 1,000-record log s"] = time.perf_counter() - t
    merger.policy = never
    p_idle, p_merge = np.percentile(idle, [50, 95]), np.percentile(during, [50, 95])
    out["search p50 / p95 ms, idle"] = f"{p_idle[0]:.2f} / {p_idle[1]:.2f}"
    out["search p50 / p95 ms, during the merge"] = (
        f"{p_merge[0]:.2f} / {p_merge[1]:.2f} ({len(during)} searches)"
    )
    engine.close()
    out["merge peak MB"] = peak_mb()
    return out


def run_phase(phase: str, kind: str, n: int, work: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--doc-len",
        str(DOC_LEN),
        "--phase",
        phase,
        "--kind",
        kind,
        "--n",
        str(n),
        "--work",
        str(work),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode:
        raise RuntimeError(f"phase {phase} {kind} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def loops(kills: int) -> dict:
    from tests.hybrid.test_storage import corruption_loop, kill_loop

    out = {}
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        out["kill loop"] = kill_loop(Path(d), kills=kills, seed=1)
        out["kill loop s"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as d:
        out["corruption loop"] = corruption_loop(Path(d), seed=1, flips=5, unverified=("*",))
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bm25-docs", type=int, default=1_000_000)
    ap.add_argument("--dense-docs", type=int, default=200_000)
    ap.add_argument("--kills", type=int, default=300)
    ap.add_argument(
        "--merge-docs",
        type=int,
        default=0,
        help="documents of the engines of the merge phase (0: skip it)",
    )
    ap.add_argument(
        "--doc-len",
        type=int,
        default=0,
        help="cap the tokens of each synthetic BM25 document (0: no cap)",
    )
    ap.add_argument("--json", type=Path)
    ap.add_argument("--phase")
    ap.add_argument("--kind")
    ap.add_argument("--n", type=int)
    ap.add_argument("--work", type=Path)
    args = ap.parse_args(argv)
    global DOC_LEN
    DOC_LEN = args.doc_len
    if args.phase:
        if args.phase == "update":
            res = phase_update(args.kind, args.work)
        else:
            fn = phase_build if args.phase == "build" else phase_merge
            res = fn(args.kind, args.n, args.work)
        print(json.dumps(res))
        return
    report: dict = {}
    for kind, n in (("bm25", args.bm25_docs), ("dense", args.dense_docs)):
        if n <= 0:
            continue
        work = Path(tempfile.mkdtemp(prefix=f"storage-{kind}-"))
        try:
            row = {"engine": kind, "docs": n, **run_phase("build", kind, n, work)}
            row.update(run_phase("update", kind, n, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        report[kind] = row
        print(json.dumps(row), file=sys.stderr)
    merges = {}
    for kind in ("bm25", "dense") if args.merge_docs > 0 else ():
        work = Path(tempfile.mkdtemp(prefix=f"storage-merge-{kind}-"))
        try:
            merges[kind] = run_phase("merge", kind, args.merge_docs, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(json.dumps(merges[kind]), file=sys.stderr)
    if args.kills:
        report["loops"] = loops(args.kills)
    rows = [r for k, r in report.items() if k != "loops"]
    if rows:
        names = " | ".join(f"{r['engine']} {r['docs']:,}" for r in rows)
        print(f"\n| measure | {names} |\n|---|" + "---|" * len(rows))
    for key in rows[0] if rows else []:
        if key in ("engine", "docs"):
            continue
        vals = [r.get(key) for r in rows]
        print(
            f"| {key} | "
            + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in vals)
            + " |"
        )
    if merges:
        print(
            f"\n| {COMMITS:,} small commits, {args.merge_docs:,} documents | "
            + " | ".join(merges)
            + " |"
        )
        print("|---|" + "---:|" * len(merges))
        for key in next(iter(merges.values())):
            vals = [m.get(key) for m in merges.values()]
            print(
                f"| {key} | "
                + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in vals)
                + " |"
            )
        report["merge"] = merges
    if "loops" in report:
        print(f"\n{json.dumps(report['loops'])}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
