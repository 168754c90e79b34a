"""The ``hybrid`` command line: ``demo``, ``index``, ``search``, ``serve``, ``eval``, ``tune``."""

from hybrid.cli.commands import (
    DEMO_DOCUMENTS,
    DEMO_QUERIES,
    cmd_demo,
    cmd_index,
    cmd_search,
    cmd_serve,
)
from hybrid.cli.main import build_parser, main

__all__ = [
    "DEMO_DOCUMENTS",
    "DEMO_QUERIES",
    "build_parser",
    "cmd_demo",
    "cmd_index",
    "cmd_search",
    "cmd_serve",
    "main",
]
