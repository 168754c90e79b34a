"""The ``hybrid`` command: demo, index, search."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from hybrid.cli_errors import UserError, check_output_folder, positive_int, run
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


def _shorten(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_demo(args: argparse.Namespace) -> int:
    from hybrid import HybridRetriever

    engine = HybridRetriever.from_preset(args.preset)
    engine.add(DEMO_DOCUMENTS, ids=[str(i) for i in range(len(DEMO_DOCUMENTS))])
    print(f"Preset {engine.preset!r}: {engine!r}")
    for query, hits in zip(DEMO_QUERIES, engine.search(DEMO_QUERIES, k=args.k), strict=True):
        _print_hits(query, hits, explain=True)
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from hybrid import HybridRetriever
    from hybrid.data import read_documents

    check_output_folder(args.out)
    if args.ray is not None:
        from hybrid.distributed import index_with_ray

        engine = index_with_ray(
            args.source,
            args.out,
            preset=args.preset,
            limit=args.limit,
            address=None if args.ray == "local" else args.ray,
            num_actors=args.ray_actors,
        )
        print(f"Indexed {len(engine)} documents with preset {engine.preset!r} into {args.out}")
        return 0
    docs = read_documents(args.source, limit=args.limit)
    if not len(docs):
        raise UserError(f"no documents in {args.source}")
    note = f" ({docs.skipped} empty skipped)" if docs.skipped else ""
    print(f"Read {len(docs)} documents from {args.source}{note}", file=sys.stderr)
    engine = HybridRetriever.from_preset(args.preset)
    engine.add(docs.texts, ids=docs.ids, metadata=docs.metadata)
    out = engine.save(args.out)
    print(f"Indexed {len(engine)} documents with preset {engine.preset!r} into {out}")
    return 0


def _parse_weights(pairs: Sequence[str] | None) -> dict[str, float] | None:
    if not pairs:
        return None
    weights = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise UserError(f"--weight takes NAME=VALUE, got {pair!r}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise UserError(f"--weight {pair!r}: {value!r} is not a number") from None
    return weights


def cmd_search(args: argparse.Namespace) -> int:
    from hybrid import HybridRetriever
    from hybrid.config import FusionConfig

    engine = HybridRetriever.load(args.index)
    hits = engine.search(
        args.query,
        k=args.k,
        config=FusionConfig.load(args.config) if args.config else None,
        fusion=args.fusion,
        weights=_parse_weights(args.weight),
        depth=args.depth,
        reranker=args.rerank,
        rerank_top=args.rerank_top,
    )
    if args.json:
        payload = {
            "query": args.query,
            "hits": [h.to_dict(explain=args.explain) for h in hits],
        }
        print(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        _print_hits(args.query, hits, explain=args.explain)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hybrid", description="Hybrid retrieval: SPLADE + dense + BM25, fused and explained."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument(
        "--debug", action="store_true", help="show Python tracebacks (also: HYBRID_DEBUG=1)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    presets = list(PRESETS)

    demo = sub.add_parser("demo", help="index five bilingual documents and run two queries")
    demo.add_argument("--preset", default="auto", choices=presets)
    demo.add_argument("--k", type=positive_int, default=3)
    demo.set_defaults(func=cmd_demo)

    index = sub.add_parser("index", help="index a BEIR folder or a JSONL file of documents")
    index.add_argument("source", help="BEIR folder (with corpus.jsonl) or JSONL file")
    index.add_argument("--out", required=True, help="folder to write the index to")
    index.add_argument("--preset", default="auto", choices=presets)
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
    index.set_defaults(func=cmd_index)

    search = sub.add_parser("search", help="search a saved index")
    search.add_argument("index", help="folder written by 'hybrid index'")
    search.add_argument("query")
    search.add_argument("--k", type=positive_int, default=10)
    search.add_argument("--fusion", default=None, help="fusion method (default: the index's)")
    search.add_argument(
        "--weight", action="append", metavar="NAME=VALUE", help="retriever weight (repeatable)"
    )
    search.add_argument("--depth", type=positive_int, default=None, help="candidates per retriever")
    search.add_argument("--config", default=None, help="fusion configuration file (JSON)")
    search.add_argument(
        "--rerank", default=None, help="reranker: dense, splade or cross-encoder:<model>"
    )
    search.add_argument(
        "--rerank-top", type=positive_int, default=None, help="candidates to rerank"
    )
    search.add_argument("--explain", action="store_true", help="show SPLADE tokens, BM25 terms")
    search.add_argument("--json", action="store_true", help="machine-readable output")
    search.set_defaults(func=cmd_search)

    from hybrid.cli_eval import add_commands

    add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    return run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
