"""An HTTP service over one engine (``hybrid serve DIR``), for applications not in Python.

``create_app(engine)`` returns a FastAPI app; the OpenAPI schema is at ``/docs`` and
``/openapi.json``. Endpoints:

- ``POST /search`` ``{"query": str | [str], "k": 10, "fusion", "weights", "norm", "rrf_k",
  "depth", "filter", "explain": false, "explain_top": 5}`` -> ``{"hits": [...]}`` (a list of
  lists for a list of queries); each hit is :meth:`hybrid.engine.results.Hit.to_dict`.
- ``POST /documents`` ``{"texts": [...], "ids": [...], "metadata": [...]}``: upsert -> ``{"ids"}``.
- ``DELETE /documents`` ``{"ids": [...]}`` -> ``{"deleted": n}``.
- ``GET /documents/{id}`` -> ``{"id", "text", "metadata"}`` (an id of digits also finds an int id).
- ``GET /health`` -> ``{"status": "ok", "documents": n}``; ``GET /stats`` -> sizes and settings.

Endpoints are plain functions, which FastAPI runs in its worker threads: searches run
concurrently with each other and with writes, with the engine's guarantees (see
:class:`hybrid.HybridRetriever`). A bad request gets a 4xx with the library's one-line message
(``{"detail": "..."}``): 400 for invalid values, 404 for unknown ids, 422 for a body of the wrong
shape; any other error is a 500 with its message, and the server carries on.
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations, which
# name request models defined inside create_app.
import inspect
import time
from typing import Any

from hybrid.engine import HybridRetriever

_NO_FILTERS = "filters are not supported by this engine yet"


def _fastapi() -> Any:
    try:
        import fastapi
        import pydantic
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the HTTP service needs FastAPI and uvicorn: pip install 'splade-hybrid[server]'"
        ) from exc
    return fastapi, pydantic


def create_app(engine: HybridRetriever) -> Any:
    """A FastAPI application serving ``engine`` (see the module docstring)."""
    fastapi, pydantic = _fastapi()
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    class _Body(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")

    class SearchRequest(_Body):
        query: Any
        k: Any = 10
        fusion: Any = None
        weights: Any = None
        norm: Any = None
        rrf_k: Any = None
        depth: Any = None
        filter: Any = None
        explain: bool = False
        explain_top: Any = 5

    class UpsertRequest(_Body):
        texts: Any
        ids: Any
        metadata: Any = None

    class DeleteRequest(_Body):
        ids: Any

    app = fastapi.FastAPI(
        title="splade-hybrid",
        description="Hybrid retrieval (SPLADE + dense + BM25), fused and explained.",
    )
    started = time.time()
    takes_filter = "filter" in inspect.signature(engine.search).parameters

    def message(exc: BaseException) -> str:
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return " ".join(str(text).split()) or type(exc).__name__

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc):  # one line instead of pydantic's list
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()
        ]
        return JSONResponse({"detail": "; ".join(parts)}, status_code=422)

    @app.exception_handler(ValueError)
    @app.exception_handler(TypeError)
    async def _bad(request, exc):
        return JSONResponse({"detail": message(exc)}, status_code=400)

    @app.exception_handler(KeyError)
    async def _missing(request, exc):
        return JSONResponse({"detail": message(exc)}, status_code=404)

    @app.exception_handler(Exception)
    async def _failed(request, exc):
        return JSONResponse({"detail": f"{type(exc).__name__}: {message(exc)}"}, status_code=500)

    @app.post("/search")
    def search(body: SearchRequest) -> dict[str, Any]:
        options: dict[str, Any] = {
            key: value
            for key in ("fusion", "weights", "norm", "rrf_k", "depth")
            if (value := getattr(body, key)) is not None
        }
        if body.filter is not None:
            if not takes_filter:
                raise ValueError(_NO_FILTERS)
            options["filter"] = body.filter
        if isinstance(body.k, bool) or not isinstance(body.k, int):
            raise TypeError(f"k must be an integer, got {body.k!r}")
        hits = engine.search(body.query, k=body.k, **options)

        def view(h):
            try:
                return h.to_dict(explain=body.explain, top=body.explain_top)
            except KeyError as exc:  # deleted between the search and its explanation
                raise ValueError(f"{message(exc)} (deleted while explaining; retry)") from exc

        if isinstance(body.query, str):
            return {"hits": [view(h) for h in hits]}
        return {"hits": [[view(h) for h in row] for row in hits]}

    @app.post("/documents")
    def upsert(body: UpsertRequest) -> dict[str, Any]:
        return {"ids": engine.upsert(body.texts, ids=body.ids, metadata=body.metadata)}

    @app.delete("/documents")
    def delete(body: DeleteRequest) -> dict[str, Any]:
        ids = [body.ids] if isinstance(body.ids, (str, int)) else body.ids
        engine.delete(ids)
        return {"deleted": len(ids)}

    @app.get("/documents/{doc_id}")
    def get(doc_id: str) -> dict[str, Any]:
        try:
            return engine.get(doc_id).to_dict()
        except KeyError:
            if doc_id.isdigit():  # the engine may hold int ids
                return engine.get(int(doc_id)).to_dict()
            raise

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "documents": len(engine)}

    @app.get("/stats")
    def stats() -> dict[str, Any]:
        return {
            "documents": len(engine),
            "retrievers": {
                name: {"kind": r.kind, "documents": len(r)} for name, r in engine.retrievers.items()
            },
            "fusion": engine.config.to_dict(),
            "preset": engine.preset,
            "parallel": engine.parallel,
            "filters": takes_filter,
            "uptime_s": round(time.time() - started, 3),
        }

    return app


def serve(path: str, host: str = "127.0.0.1", port: int = 8000, **engine_options: Any) -> None:
    """Open the engine saved at ``path`` and serve it until interrupted."""
    _fastapi()
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the HTTP service needs FastAPI and uvicorn: pip install 'splade-hybrid[server]'"
        ) from exc
    opener = getattr(HybridRetriever, "open", None) or HybridRetriever.load
    engine = opener(path, **engine_options)
    uvicorn.run(create_app(engine), host=host, port=port, log_level="warning")
