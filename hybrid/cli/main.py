"""The ``hybrid`` command line: its parser and entry point (``hybrid = hybrid.cli:main``)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from hybrid.cli.commands import cmd_demo, cmd_index, cmd_search, cmd_serve
from hybrid.cli.errors import run
from hybrid.engine.presets import PRESETS


class _Parser(argparse.ArgumentParser):
    """Argument errors in one line, exit status 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    from hybrid.cli.args import FUSION_METHODS, model_pair, positive_int, weight_pair

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
        help='metadata filter, e.g. \'{"lang": "ko", "year": {"$gte": 2020}}\' (hybrid.engine.filters)',  # noqa: E501
    )
    search.add_argument("--json", action="store_true", help="machine-readable output")
    search.set_defaults(func=cmd_search)

    serve = sub.add_parser("serve", help="serve a saved index over HTTP (FastAPI)")
    serve.add_argument("index", help="folder written by 'hybrid index'")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    from hybrid.cli.eval_commands import add_commands

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
