"""Load test of ``hybrid serve`` on the loopback interface, against calling the library.

A child process serves the SciFact engine of ``benchmarks/concurrency.py`` (5,183 documents,
SPLADE + FAISS Flat + BM25, precomputed encodings looked up by text: query "q17", document
"d17") with ``hybrid.server.create_app`` under uvicorn on 127.0.0.1 (a free port). First every
SciFact test query is searched over HTTP and compared with the same engine built in this
process (ids and scores). Then, for N concurrent clients (threads with keep-alive HTTP
connections, one ``POST /search`` ``{"query", "k": 10}`` at a time each), each level runs
``--seconds`` (and at most ``--max-requests``), without and with a writer upserting 1-5
documents (20 writes/s; ids cycle over 500 so the collection stays near its size). The library
rows run the same number of threads calling ``engine.search`` in this process. Everything stops
by itself; the server is terminated at the end.

    python3 benchmarks/serve_load.py --clients 1,4,16,64 --seconds 30
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def serve_child(port: int) -> None:
    import uvicorn
    from concurrency import build

    from hybrid.server import create_app

    engine, _ = build(5183)
    engine.search("q0", k=10)
    print("ready", flush=True)
    uvicorn.run(create_app(engine), host="127.0.0.1", port=port, log_level="error")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_level(call, clients: int, seconds: float, max_requests: int, writer=None) -> dict:
    """``clients`` threads calling ``call(query)`` back to back; latencies and errors."""
    stop = threading.Event()
    lat: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    done = [0]

    def client(c: int) -> None:
        i = c * 41
        session = call.session() if hasattr(call, "session") else None
        while not stop.is_set() and done[0] < max_requests:
            t = time.perf_counter()
            try:
                ok = call(f"q{i % 300}", session)
            except Exception:
                ok = False
            lat[c].append(time.perf_counter() - t)
            errors[c] += not ok
            done[0] += 1
            i += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    writes = [0, 0]  # done, failed
    if writer is not None:
        threads.append(threading.Thread(target=writer, args=(stop, writes)))
    load = os.getloadavg()[0]
    start = time.perf_counter()
    for t in threads:
        t.start()
    deadline = start + seconds
    while time.perf_counter() < deadline and done[0] < max_requests:
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join(60)
    wall = time.perf_counter() - start
    all_lat = 1e3 * np.array([x for row in lat for x in row] or [0.0])
    return {
        "clients": clients,
        "requests": int(all_lat.size),
        "req/s": all_lat.size / wall,
        "p50 ms": float(np.percentile(all_lat, 50)),
        "p99 ms": float(np.percentile(all_lat, 99)),
        "errors": int(sum(errors)),
        "writes (failed)": f"{writes[0]} ({writes[1]})" if writer else "-",
        "load avg": load,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="1,4,16,64")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--max-requests", type=int, default=200_000)
    ap.add_argument("--serve-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_child:
        serve_child(args.serve_child)
        return
    import httpx
    from concurrency import build, md

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve-child", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "ready"
        engine, queries = build(5183)
        for _ in range(100):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        mismatches = 0
        with httpx.Client(base_url=url, timeout=60) as http:
            for q in queries:
                served = http.post("/search", json={"query": q, "k": 10}).json()["hits"]
                local = engine.search(q, k=10)
                same = [h["id"] for h in served] == [h.id for h in local] and np.allclose(
                    [h["score"] for h in served], [h.score for h in local], rtol=1e-9
                )
                mismatches += not same
        print(
            f"  served hits == library hits for {len(queries) - mismatches} of "
            f"{len(queries)} queries",
            file=sys.stderr,
        )

        def http_call(query, session):
            r = session.post("/search", json={"query": query, "k": 10})
            return r.status_code == 200 and len(r.json()["hits"]) == 10

        http_call.session = lambda: httpx.Client(base_url=url, timeout=120)

        def lib_call(query, _session):
            return len(engine.search(query, k=10)) == 10

        def writer(stop, writes):
            rng = np.random.default_rng(0)
            j = 0
            with httpx.Client(base_url=url, timeout=120) as http:
                while not stop.wait(0.05):
                    n = int(rng.integers(1, 6))
                    body = {
                        "texts": [f"d{int(rng.integers(5183))}" for _ in range(n)],
                        "ids": [f"x{(j + i) % 500}" for i in range(n)],
                    }
                    j += n
                    ok = http.post("/documents", json=body).status_code == 200
                    writes[0 if ok else 1] += 1

        rows = []
        for clients in (int(c) for c in args.clients.split(",")):
            for name, call, w in (
                ("library (in process)", lib_call, None),
                ("HTTP", http_call, None),
                ("HTTP + writer", http_call, writer),
            ):
                row = {"mode": name, **run_level(call, clients, args.seconds, args.max_requests, w)}
                rows.append(row)
                print(f"  {row}", file=sys.stderr)
        with httpx.Client(base_url=url, timeout=60) as http:
            alive = http.get("/health").json()
        print(
            f"\n### hybrid serve on 127.0.0.1 vs the library, SciFact 5,183 docs, k=10, "
            f"{args.seconds:.0f} s per row ({os.cpu_count()} CPUs)\n"
        )
        print(
            f"Served hits equal the library's for {len(queries) - mismatches} of "
            f"{len(queries)} queries; server alive at the end: {alive}.\n"
        )
        print(md(rows))
    finally:
        child.terminate()
        child.wait(30)


if __name__ == "__main__":
    main()
