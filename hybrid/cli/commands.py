"""The ``hybrid`` commands that work on indexes: demo, index, search, serve."""

from __future__ import annotations

import argparse
import json
import sys
import time

from hybrid.cli.errors import check_output_folder

DEMO_DOCUMENTS = [
    "텔레픽스는 위성 데이터를 분석하여 해양, 농업 등 다양한 분야에 솔루션을 제공합니다.",
    "고해상도 광학 위성 영상은 국방 및 정찰 목적으로 중요하게 활용됩니다.",
    "TelePIX provides advanced solutions by analyzing satellite data for ocean and agriculture.",
    "High-resolution optical satellite imagery is critical for defense and reconnaissance.",
    "Space economy creates new value through the utilization of space-based data.",
]
DEMO_QUERIES = [
    "텔레픽스는 어떤 산업 분야에서 위성 데이터를 활용하나요?",
    "Utilization of satellite imagery for defense",
]


def _print_hits(query: str, hits, explain: bool, top_tokens: int = 5) -> None:
    print(f"\nQuery: {query}")
    if not hits:
        print("  (no hits)")
    elif explain:  # the fusion and the weights are per query: print them once
        first = hits[0].explain(top=top_tokens)
        print(f"  fusion: {first.fusion}")
        if first.weighting:
            print(f"  {first.weighting}")
    for hit in hits:
        ranks = "  ".join(
            f"{name}#{s.rank}" if s.rank else f"{name}:-" for name, s in hit.sources.items()
        )
        print(f"{hit.rank:>3}. [{hit.id}] {hit.score:.4f}  ({ranks})  {_shorten(hit.text)}")
        if explain:
            e = hit.explain(top=top_tokens)
            if e.splade_tokens:
                tokens = ", ".join(
                    f"{t.token} {t.query_weight:.2f}x{t.doc_weight:.2f}={t.product:.2f}"
                    for t in e.splade_tokens
                )
                print(f"       SPLADE: {tokens}")
            if e.bm25_terms:
                terms = ", ".join(f"{t.term} {t.contribution:.2f}" for t in e.bm25_terms)
                print(f"       BM25:   {terms}")
            for note in e.notes:
                print(f"       {note}")


def _shorten(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _progress(args: argparse.Namespace) -> bool | None:
    """-q hides every bar; otherwise commands that index show them (see hybrid.progress)."""
    return False if args.quiet else None


def _build_name(asked: str, resolved: str) -> str:
    """The preset name to build after :func:`~hybrid.engine.presets.resolve_preset` checked it:
    ``auto`` stays ``auto`` when it chose pixie (so a failed load still falls back to offline)
    and becomes ``offline`` when it already fell back (said once, not twice)."""
    return asked if resolved == "pixie" else resolved


def cmd_demo(args: argparse.Namespace) -> int:
    from hybrid import HybridRetriever
    from hybrid.engine.presets import resolve_preset

    models = dict(args.model or [])
    preset = resolve_preset(args.preset, models)  # fails fast, loads nothing
    engine = HybridRetriever.from_preset(_build_name(args.preset, preset), models=models)
    engine.add(
        DEMO_DOCUMENTS, ids=[str(i) for i in range(len(DEMO_DOCUMENTS))], progress=_progress(args)
    )
    print(f"Preset {engine.preset!r}: {engine!r}")
    for query, hits in zip(DEMO_QUERIES, engine.search(DEMO_QUERIES, k=args.k), strict=True):
        _print_hits(query, hits, explain=True)
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from hybrid.cli.args import check_out_dir
    from hybrid.engine.presets import resolve_preset

    started = time.perf_counter()
    check_output_folder(args.out)  # a path under a regular file: one clear line (issue #18)
    replaced = check_out_dir(args.out, args.overwrite)  # before any model loads
    models = dict(args.model or [])
    preset = resolve_preset(args.preset, models)  # checks packages and model availability
    if args.ray is not None:
        from hybrid.backends.distributed import index_with_ray

        engine = index_with_ray(
            args.source,
            args.out,
            preset=preset,
            limit=args.limit,
            address=None if args.ray == "local" else args.ray,
            num_actors=args.ray_actors,
        )
        _index_summary(args, engine, args.out, replaced, started, None)
        return 0
    from hybrid import HybridRetriever
    from hybrid.data import read_documents
    from hybrid.progress import progress_scope

    docs = read_documents(args.source, limit=args.limit)
    if not len(docs):
        raise ValueError(f"no documents in {args.source}")
    if not args.quiet:
        note = f" ({docs.skipped} empty skipped)" if docs.skipped else ""
        print(f"Read {len(docs)} documents from {args.source}{note}", file=sys.stderr)
    # indexing is the long command: its bars show even off a terminal, unless -q
    with progress_scope(not args.quiet):
        loading = time.perf_counter()
        engine = HybridRetriever.from_preset(_build_name(args.preset, preset), models=models)
        adding = time.perf_counter()
        engine.add(docs.texts, ids=docs.ids, metadata=docs.metadata)
        timing = (adding - loading, time.perf_counter() - adding)
    out = engine.save(args.out)
    _index_summary(args, engine, out, replaced, started, timing)
    return 0


def _index_summary(args, engine, out, replaced, started: float, timing) -> None:
    """One line (or one JSON object) on stdout: documents, time, rate, size on disk."""
    from hybrid.cli.args import folder_bytes, human_bytes, human_seconds

    total = time.perf_counter() - started
    n = len(engine)
    size = folder_bytes(out)
    encode = timing[1] if timing else total
    if args.json:
        payload = {
            "documents": n,
            "out": str(out),
            "preset": engine.preset,
            "retrievers": engine.names,
            "seconds": round(total, 3),
            "model_load_seconds": None if timing is None else round(timing[0], 3),
            "index_seconds": round(encode, 3),
            "documents_per_second": round(n / encode, 3) if encode > 0 else None,
            "bytes": size,
            "replaced": None if replaced is None else replaced.describe(),
        }
        print(json.dumps(payload, ensure_ascii=False))
        return
    per_s = n / encode if encode > 0 else float("inf")
    rate = f"{per_s:,.0f} documents/s" if per_s >= 100 else f"{per_s:.3g} documents/s"
    load = f", models loaded in {human_seconds(timing[0])}" if timing else ""
    line = (
        f"Indexed {n:,} documents in {human_seconds(total)} ({rate}{load}) into {out}:"
        f" {human_bytes(size)} on disk, preset {engine.preset!r} ({', '.join(engine.names)})"
    )
    if replaced is not None:
        line += f"; replaced the previous index ({replaced.describe()})"
    print(line)


def _parse_filter(text: str | None) -> dict | None:
    """The ``--filter`` JSON object (validated by the engine), or None."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--filter is not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f'--filter must be a JSON object such as {{"lang": "ko"}}, got {text!r}')
    return value


def cmd_search(args: argparse.Namespace) -> int:
    from hybrid.cli.args import saved_index, search_weights

    # every argument is checked before any index or model is loaded
    if not args.query.strip():
        raise ValueError("the query is empty")
    if args.rerank is not None:
        _check_reranker(args.rerank)
    saved = saved_index(args.index)
    weights = search_weights(args.weight, args.retrievers, saved.retrievers)
    from hybrid.engine.config import FusionConfig

    config = FusionConfig.load(args.config) if args.config else None
    flt = _parse_filter(args.filter)

    from hybrid import HybridRetriever

    engine = HybridRetriever.load(args.index)  # models load on first use, only those searched
    hits = engine.search(
        args.query,
        k=args.k,
        config=config,
        fusion=args.fusion,
        weights=weights,
        depth=args.depth,
        reranker=args.rerank,
        rerank_top=args.rerank_top,
        filter=flt,
    )
    note = None
    if len(hits) < args.k:
        note = f"{len(hits)} hits for --k {args.k}: the index holds {len(engine):,} documents"
        if len(hits) < len(engine):
            what = "the filter and the retrievers searched" if flt else "the retrievers searched"
            note += f" and only {len(hits)} matched {what}"
    if args.json:
        payload = {
            "query": args.query,
            "k": args.k,
            "hits": [h.to_dict(explain=args.explain) for h in hits],
        }
        if note:
            payload["note"] = note
        print(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        _print_hits(args.query, hits, explain=args.explain)
        if note:
            print(f"({note})")
    return 0


def _check_reranker(name: str) -> None:
    from hybrid.engine.rerankers import RERANKERS

    if name in RERANKERS or (name.startswith("cross-encoder:") and name.split(":", 1)[1]):
        return
    choices = ", ".join([*RERANKERS, "cross-encoder:<model>"])
    raise ValueError(f"unknown reranker {name!r}; choose one of: {choices}")


def cmd_serve(args: argparse.Namespace) -> int:
    from hybrid.server import serve

    print(f"Serving {args.index} on http://{args.host}:{args.port} (Ctrl-C stops)", file=sys.stderr)
    serve(args.index, host=args.host, port=args.port)
    return 0
