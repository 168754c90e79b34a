"""The ``hybrid`` command: demo, index, search, serve."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import NoReturn

from hybrid.cli_errors import check_output_folder, run
from hybrid.presets import PRESETS

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
    """The preset name to build after :func:`~hybrid.presets.resolve_preset` checked it:
    ``auto`` stays ``auto`` when it chose pixie (so a failed load still falls back to offline)
    and becomes ``offline`` when it already fell back (said once, not twice)."""
    return asked if resolved == "pixie" else resolved


def cmd_demo(args: argparse.Namespace) -> int:
    from hybrid import HybridRetriever
    from hybrid.presets import resolve_preset

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
    from hybrid.cli_args import check_out_dir
    from hybrid.presets import resolve_preset

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
    from hybrid.cli_args import folder_bytes, human_bytes, human_seconds

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
    from hybrid.cli_args import saved_index, search_weights

    # every argument is checked before any index or model is loaded
    if not args.query.strip():
        raise ValueError("the query is empty")
    if args.rerank is not None:
        _check_reranker(args.rerank)
    saved = saved_index(args.index)
    weights = search_weights(args.weight, args.retrievers, saved.retrievers)
    from hybrid.config import FusionConfig

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
    from hybrid.rerankers import RERANKERS

    if name in RERANKERS or (name.startswith("cross-encoder:") and name.split(":", 1)[1]):
        return
    choices = ", ".join([*RERANKERS, "cross-encoder:<model>"])
    raise ValueError(f"unknown reranker {name!r}; choose one of: {choices}")


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line, exit status 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def cmd_serve(args: argparse.Namespace) -> int:
    from hybrid.server import serve

    print(f"Serving {args.index} on http://{args.host}:{args.port} (Ctrl-C stops)", file=sys.stderr)
    serve(args.index, host=args.host, port=args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from hybrid.cli_args import FUSION_METHODS, model_pair, positive_int, weight_pair

    parser = _Parser(
        prog="hybrid", description="Hybrid retrieval: SPLADE + dense + BM25, fused and explained."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument(
        "--debug", action="store_true", help="show Python tracebacks (also: HYBRID_DEBUG=1)"
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    presets = list(PRESETS)
    quiet = _Parser(add_help=False)
    quiet.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bars or notes on stderr"
    )
    model_help = "replace a preset's model: splade=PATH or dense=PATH (a local folder or hub name)"

    demo = sub.add_parser(
        "demo", parents=[quiet], help="index five bilingual documents and run two queries"
    )
    demo.add_argument("--preset", default="auto", choices=presets)
    demo.add_argument(
        "--model", action="append", type=model_pair, metavar="ROLE=PATH", help=model_help
    )
    demo.add_argument("--k", type=positive_int, default=3)
    demo.set_defaults(func=cmd_demo)

    index = sub.add_parser(
        "index", parents=[quiet], help="index a BEIR folder or a JSONL file of documents"
    )
    index.add_argument("source", help="BEIR folder (with corpus.jsonl) or JSONL file")
    index.add_argument("--out", required=True, help="folder to write the index to")
    index.add_argument(
        "--overwrite", action="store_true", help="replace the index already in --out"
    )
    index.add_argument("--preset", default="auto", choices=presets)
    index.add_argument(
        "--model", action="append", type=model_pair, metavar="ROLE=PATH", help=model_help
    )
    index.add_argument(
        "--limit", type=positive_int, default=None, help="index only the first N documents"
    )
    index.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="encode with Ray Data: a local Ray without ADDRESS, or 'auto' / ray://head:10001",
    )
    index.add_argument(
        "--ray-actors", type=positive_int, default=2, help="encoder actors (one model each)"
    )
    index.add_argument("--json", action="store_true", help="the summary as one JSON object")
    index.set_defaults(func=cmd_index)

    search = sub.add_parser("search", parents=[quiet], help="search a saved index")
    search.add_argument("index", help="folder written by 'hybrid index'")
    search.add_argument("query")
    search.add_argument(
        "--k", type=positive_int, default=10, help="hits to return (widens --depth if larger)"
    )
    search.add_argument(
        "--fusion",
        default=None,
        choices=FUSION_METHODS,
        help="fusion method (default: the index's)",
    )
    search.add_argument(
        "--weight",
        action="append",
        type=weight_pair,
        metavar="NAME=VALUE",
        help="retriever weight (repeatable); 0 leaves it out and loads no model for it",
    )
    search.add_argument(
        "--retrievers",
        default=None,
        metavar="NAMES",
        help="search only these retrievers (comma-separated, e.g. bm25): the others load nothing",
    )
    search.add_argument("--depth", type=positive_int, default=None, help="candidates per retriever")
    search.add_argument("--config", default=None, help="fusion configuration file (JSON)")
    search.add_argument(
        "--rerank", default=None, help="reranker: dense, splade or cross-encoder:<model>"
    )
    search.add_argument(
        "--rerank-top", type=positive_int, default=None, help="candidates to rerank"
    )
    search.add_argument(
        "--explain",
        action="store_true",
        help="show the per-query weights, SPLADE tokens and BM25 terms",
    )
    search.add_argument(
        "--filter",
        default=None,
        metavar="JSON",
        help='metadata filter, e.g. \'{"lang": "ko", "year": {"$gte": 2020}}\' (hybrid.filters)',
    )
    search.add_argument("--json", action="store_true", help="machine-readable output")
    search.set_defaults(func=cmd_search)

    serve = sub.add_parser("serve", help="serve a saved index over HTTP (FastAPI)")
    serve.add_argument("index", help="folder written by 'hybrid index'")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    from hybrid.cli_eval import add_commands

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    if getattr(args, "quiet", False):  # also the model hub's download / weight-loading bars
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return run(args.func, args)  # user mistakes: one "error: ..." line, exit code 2


if __name__ == "__main__":
    sys.exit(main())
