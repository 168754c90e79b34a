"""The HTTP service (hybrid/server.py) through FastAPI's TestClient, on stand-in encoders."""

from __future__ import annotations

import json
import threading

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from hybrid.server import create_app
from tests._standins import engine as standin_engine

DOCS = ["alpha beta gamma", "beta delta", "gamma gamma omega", "alpha omega", "zeta"]


@pytest.fixture()
def served():
    engine = standin_engine()
    engine.add(DOCS, ids=["a", "b", "c", "d", 5], metadata=[{"n": i} for i in range(5)])
    return engine, TestClient(create_app(engine), raise_server_exceptions=False)


def test_search_serves_the_library_hits(served):
    engine, client = served
    r = client.post("/search", json={"query": "alpha omega", "k": 3})
    assert r.status_code == 200
    want = [h.to_dict() for h in engine.search("alpha omega", k=3)]
    assert r.json() == {"hits": json.loads(json.dumps(want))}
    assert r.json()["hits"][0]["id"] == "d"
    body = {"query": ["alpha", "gamma omega"], "k": 2, "fusion": "rrf", "explain": True}
    r = client.post("/search", json=body)
    want = engine.search(["alpha", "gamma omega"], k=2, fusion="rrf")
    got = r.json()["hits"]
    assert [[h["id"] for h in row] for row in got] == [[h.id for h in row] for row in want]
    assert [[h["score"] for h in row] for row in got] == [[h.score for h in row] for row in want]
    assert got[0][0]["bm25_terms"] == [vars(t) for t in want[0][0].explain().bm25_terms]
    r = client.post("/search", json={"query": "beta", "weights": {"dense": 0}, "depth": 4})
    assert [h["id"] for h in r.json()["hits"]] == [
        h.id for h in engine.search("beta", weights={"dense": 0}, depth=4)
    ]


def test_documents_upsert_get_delete(served):
    engine, client = served
    r = client.post(
        "/documents",
        json={
            "texts": ["new text", "beta again"],
            "ids": ["n1", "b"],
            "metadata": [{"x": 1}, None],
        },
    )
    assert r.status_code == 200 and r.json() == {"ids": ["n1", "b"]}
    assert client.get("/documents/b").json() == {"id": "b", "text": "beta again", "metadata": {}}
    assert client.get("/documents/5").json() == {"id": 5, "text": "zeta", "metadata": {"n": 4}}
    assert engine.get("n1").metadata == {"x": 1}
    r = client.request("DELETE", "/documents", json={"ids": ["n1", "a"]})
    assert r.status_code == 200 and r.json() == {"deleted": 2}
    assert "a" not in engine.ids() and len(engine) == 4
    r = client.get("/documents/a")
    assert r.status_code == 404
    assert r.json()["detail"].startswith("unknown document ids: ['a']")
    assert client.get("/health").json() == {"status": "ok", "documents": 4}
    stats = client.get("/stats").json()
    assert stats["documents"] == 4
    assert stats["retrievers"]["bm25"] == {"kind": "bm25", "documents": 4}
    assert client.get("/openapi.json").status_code == 200


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "detail"),
    [
        ("post", "/search", {"query": "a", "k": 0}, 400, "k must be a positive integer"),
        ("post", "/search", {"query": "a", "k": "3"}, 400, "k must be an integer, got '3'"),
        ("post", "/search", {"query": "a", "fusion": "nope"}, 400, "nope"),
        ("post", "/search", {"query": "a", "weights": {"x": 1}}, 400, "unknown retriever 'x'"),
        ("post", "/search", {"query": 7}, 400, "queries"),
        ("post", "/search", {"query": "a", "filter": {"n": {"$bogus": 1}}}, 400, "$bogus"),
        ("post", "/search", {"k": 3}, 422, "query: Field required"),
        ("post", "/search", {"query": "a", "colour": 1}, 422, "colour: Extra inputs"),
        (
            "post",
            "/documents",
            {"texts": ["x", "y"], "ids": ["q", "q"]},
            400,
            "duplicate id 'q' in this batch",
        ),
        (
            "post",
            "/documents",
            {"texts": ["x"], "ids": ["q"], "metadata": [3]},
            400,
            "metadata[0] must be a dict or None",
        ),
        ("delete", "/documents", {"ids": ["a", "nope"]}, 404, "unknown document ids: ['nope']"),
        ("get", "/documents/nope", None, 404, "unknown document ids: ['nope']"),
    ],
)
def test_bad_requests_get_4xx_with_one_line_messages(served, method, url, body, status, detail):
    engine, client = served
    before = engine.ids()
    r = client.request(method.upper(), url, json=body)
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"] and "\n" not in r.json()["detail"]
    assert engine.ids() == before


def test_filtered_search_serves_the_library_hits(served):
    engine, client = served
    body = {"query": "alpha omega gamma", "k": 5, "filter": {"n": {"$lt": 3}}}
    got = client.post("/search", json=body).json()["hits"]
    want = engine.search("alpha omega gamma", k=5, filter={"n": {"$lt": 3}})
    assert [h["id"] for h in got] == [h.id for h in want] and all(h.metadata["n"] < 3 for h in want)


def test_filter_passes_through_when_the_engine_takes_it(served):
    engine, _ = served
    seen = {}

    class Filtering(type(engine)):
        def search(self, query, k=10, *, filter=None, **kwargs):
            seen["filter"] = filter
            return super().search(query, k, **kwargs)

    engine.__class__ = Filtering
    client = TestClient(create_app(engine))
    r = client.post("/search", json={"query": "alpha", "filter": {"n": {"$lt": 2}}})
    assert r.status_code == 200 and seen["filter"] == {"n": {"$lt": 2}}


def test_an_engine_error_is_a_500_and_the_server_carries_on(served):
    engine, client = served
    original = engine.retrievers["bm25"].search_encoded
    engine.retrievers["bm25"].search_encoded = lambda *a: 1 / 0
    r = client.post("/search", json={"query": "alpha"})
    assert r.status_code == 500 and r.json() == {"detail": "ZeroDivisionError: division by zero"}
    engine.retrievers["bm25"].search_encoded = original
    assert client.post("/search", json={"query": "alpha"}).status_code == 200


def test_concurrent_requests_with_a_writer(served):
    engine, client = served
    errors = []

    def searcher():
        for _ in range(20):
            r = client.post("/search", json={"query": "alpha gamma", "k": 5})
            if r.status_code != 200:
                errors.append(r.text)

    def writer():
        for i in range(20):
            r = client.post("/documents", json={"texts": [f"alpha w{i}"], "ids": [f"w{i}"]})
            if r.status_code != 200:
                errors.append(r.text)

    threads = [threading.Thread(target=searcher) for _ in range(4)] + [
        threading.Thread(target=writer)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(engine) == 25


def test_cli_serve_arguments():
    from hybrid.cli import build_parser, cmd_serve

    args = build_parser().parse_args(["serve", "my-index", "--port", "8123"])
    assert (args.func, args.index, args.host, args.port) == (
        cmd_serve,
        "my-index",
        "127.0.0.1",
        8123,
    )
