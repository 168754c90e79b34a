"""The Qdrant backend's server mode (``QdrantStore(url=...)``).

No Qdrant server can run in this project's CI sandbox (no binary in its package registries, no
Docker daemon), so the server-only code is covered in three layers:

- offline: ``url=`` builds a REST client (``QdrantRemote``) with the API key from the
  environment and without the embedded client's I/O lock, and the settings saved never hold
  the key;
- offline, on the wire: the payload-index request (the one call only a server gets) is sent
  to a stub HTTP server that records it: method, path and JSON body as Qdrant's REST API
  defines them;
- offline, through the engine: a client that is not embedded (an in-memory client behind a
  recording wrapper) takes the server branch of the engine's writes: a payload index per
  metadata field with the inferred type, and the same filtered results as embedded mode;
- against a real server, when ``QDRANT_URL`` is set (``docker run -p 6333:6333
  qdrant/qdrant``, then ``QDRANT_URL=http://localhost:6333 pytest -m qdrant_server``): the
  whole filtered engine, payload indexes read back from the server, deletes, server fusion.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import numpy as np
import pytest

from hybrid.engine.filters import matches, parse
from tests.hybrid.test_filtered_search import FILTERS, QUERIES, WORDS, HashDense, HashSparse

qdrant_client = pytest.importorskip("qdrant_client")

from indexes.qdrant import QdrantStore  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection"),
    pytest.mark.filterwarnings("ignore:Payload indexes have no effect in the local Qdrant"),
]

SCHEMAS = {"metadata.lang": "keyword", "metadata.year": "integer", "metadata.tags": "keyword"}


def _docs(n: int = 200):
    rng = np.random.default_rng(5)
    texts = [" ".join(rng.choice(WORDS, size=rng.integers(2, 9))) for _ in range(n)]
    meta = [
        {"lang": ["ko", "en", "ja"][i % 3], "year": 2000 + i % 25, "tags": ["t", str(i % 7)]}
        for i in range(n)
    ]
    return texts, [f"d{i}" for i in range(n)], meta


def _engine(store):
    from hybrid.backends.qdrant import QdrantHybridRetriever, qdrant_retrievers

    engine = QdrantHybridRetriever(
        qdrant_retrievers(store, HashSparse(), HashDense(), "whitespace")
    )
    texts, ids, meta = _docs()
    engine.add(texts, ids=ids, metadata=meta)
    return engine


def _check_filtered(engine, server_fusion=None):
    """Every filtered candidate list is the unfiltered ranking without the other documents
    (as sets: equal scores may swap), and every search returns min(k, matching) hits."""
    full = engine.retrieve(QUERIES, depth=engine.store.n_rows)
    for spec in FILTERS:
        node = parse(spec)
        live = np.array(engine.store.live, dtype=bool)
        allowed = live & np.array([matches(node, m) for m in engine.store.metadata])
        got = engine.retrieve(QUERIES, depth=15, filter=spec)
        for name in engine.names:
            for q in range(len(QUERIES)):
                ids = full.results[name].ids[q]
                keep = ids[(ids >= 0) & allowed[np.maximum(ids, 0)]][:15]
                found = got.results[name].ids[q]
                assert set(found[found >= 0]) == set(keep), (spec, name, q)
        hits = engine.search(QUERIES, k=10, filter=spec, server_fusion=server_fusion)
        for per_query in hits:
            assert all(matches(node, h.metadata) for h in per_query)
            assert len(per_query) == min(10, int(allowed.sum()))


# ------------------------------------------------------------------------------ offline


def test_url_builds_a_rest_client_with_the_key_from_the_environment(monkeypatch, tmp_path):
    from qdrant_client.qdrant_remote import QdrantRemote

    from indexes.qdrant import QdrantDenseIndex, load_qdrant_index

    monkeypatch.setenv("QDRANT_API_KEY", "k-123")
    # nothing listens on port 9: the client connects lazily, on the first request
    store = QdrantStore("c", url="http://127.0.0.1:9", check_compatibility=False, timeout=3)
    remote = store.client._client
    assert isinstance(remote, QdrantRemote)
    assert remote.rest_uri == "http://127.0.0.1:9" and remote._api_key == "k-123"
    assert remote._timeout == 3
    assert not hasattr(store._io, "acquire")  # a server takes concurrent calls: no I/O lock
    explicit = QdrantStore("c", url="http://127.0.0.1:9", api_key="k-9", check_compatibility=False)
    assert explicit.client._client._api_key == "k-9"
    view = QdrantDenseIndex(store, dim=4)
    saved = view.save(tmp_path / "v")
    text = (saved / "meta.json").read_text()
    assert "k-123" not in text
    assert json.loads(text)["store"]["url"] == "http://127.0.0.1:9"
    again = load_qdrant_index(saved)  # reconnects with the saved url and options, key from env
    assert again.store.client._client.rest_uri == "http://127.0.0.1:9"
    assert again.store.client._client._api_key == "k-123"
    moved = load_qdrant_index(saved, url="http://127.0.0.1:10")
    assert moved.store.client._client.rest_uri == "http://127.0.0.1:10"


class _Recorder(BaseHTTPRequestHandler):
    calls: ClassVar[list] = []

    def do_PUT(self):  # http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.calls.append((self.command, self.path, json.loads(body), self.headers.get("api-key")))
        reply = json.dumps(
            {"result": {"operation_id": 1, "status": "completed"}, "status": "ok", "time": 0.0}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def test_payload_index_request_on_the_wire():
    """What a server receives for ``ensure_payload_index``: Qdrant's REST call
    ``PUT /collections/{name}/index?wait=true`` with ``{"field_name", "field_schema"}``,
    once per field, with the API key header."""
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        store = QdrantStore("docs", url=url, api_key="k-1", check_compatibility=False, timeout=5)
        _Recorder.calls.clear()
        for key, schema in SCHEMAS.items():
            store.ensure_payload_index(key, schema)
        store.ensure_payload_index("metadata.lang", "keyword")  # once per field
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Recorder.calls) == 3
    for (method, path, body, key), (field, schema) in zip(
        _Recorder.calls, SCHEMAS.items(), strict=True
    ):
        assert (method, path.split("?")[0], key) == ("PUT", "/collections/docs/index", "k-1")
        assert "wait=true" in path
        assert body == {"field_name": field, "field_schema": schema}


class _NotEmbedded:
    """An in-memory client that does not look embedded, so the store takes the server
    branches; it records the payload-index calls and forwards everything."""

    _client = None  # what the store inspects to tell an embedded client

    def __init__(self):
        self._inner = qdrant_client.QdrantClient(":memory:")
        self.payload_indexes: list[tuple] = []

    def create_payload_index(self, collection, field, field_schema=None, wait=True):
        self.payload_indexes.append((collection, field, field_schema, wait))
        return self._inner.create_payload_index(collection, field, field_schema=field_schema)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.fixture(scope="module")
def server_like():
    client = _NotEmbedded()
    return client, _engine(QdrantStore("filters", client=client))


def test_server_branch_indexes_every_metadata_field(server_like):
    client, engine = server_like
    store = engine.qdrant_stores[0]
    assert not hasattr(store._io, "acquire")
    assert sorted(client.payload_indexes) == sorted(
        ("filters", field, schema, True) for field, schema in SCHEMAS.items()
    )
    for schema in SCHEMAS.values():  # each is a type Qdrant's API accepts
        assert qdrant_client.models.PayloadSchemaType(schema).value == schema
    texts, _, meta = _docs(3)
    engine.add(texts, ids=["x0", "x1", "x2"], metadata=meta)  # known fields: no new index
    assert len(client.payload_indexes) == 3


@pytest.mark.parametrize("server_fusion", [None, "rrf"])
def test_server_branch_filters_like_embedded(server_like, server_fusion):
    _check_filtered(server_like[1], server_fusion)


# ------------------------------------------------------------------------------ real server


def _round_trip(store, schemas_readable: bool) -> None:
    """The real-server check: payload indexes as the server reports them, filtered search,
    deletes; the collection is dropped afterwards."""
    try:
        engine = _engine(store)
        if schemas_readable:
            info = store.client.get_collection(store.collection)
            got = {k: str(v.data_type.value) for k, v in (info.payload_schema or {}).items()}
            assert got == SCHEMAS
        _check_filtered(engine)
        _check_filtered(engine, "rrf")
        engine.delete([f"d{i}" for i in range(0, 200, 3)])  # every "ko" document
        hits = engine.search(QUERIES, k=10, filter={"lang": "ko"})
        assert all(len(h) == 0 for h in hits)
        _check_filtered(engine)
    finally:
        store.drop()
    assert store.count() == 0


def test_round_trip_runs_offline():
    """The real-server test's body on the not-embedded in-memory client (whose payload
    indexes are not readable back): the test itself is known to pass where the API agrees."""
    _round_trip(QdrantStore("round", client=_NotEmbedded()), schemas_readable=False)


@pytest.mark.qdrant_server
@pytest.mark.skipif(
    not os.environ.get("QDRANT_URL"),
    reason="needs a Qdrant server: docker run -p 6333:6333 qdrant/qdrant, then "
    "QDRANT_URL=http://localhost:6333 pytest -m qdrant_server",
)
def test_real_server_filters_payload_indexes_deletes():
    store = QdrantStore(f"hybrid-test-{uuid.uuid4().hex[:12]}", url=os.environ["QDRANT_URL"])
    _round_trip(store, schemas_readable=True)
