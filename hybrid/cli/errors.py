"""The command line's one error path: a user mistake is one ``error: ...`` line and exit code 2.

:func:`run` calls a command and turns the exceptions a user's mistake raises (bad arguments,
bad or missing input files, a folder that is not an index) into that line; ``--debug`` or
``HYBRID_DEBUG=1`` shows the Python traceback instead. Anything else is a bug and keeps its
traceback. Counts (``--k``, ``--limit``, ...) use :func:`hybrid.cli.args.positive_int`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A mistake in the command line or its input: printed as ``error: <message>``."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError,
    ValueError,  # includes IndexFormatError, UnicodeDecodeError, json.JSONDecodeError
    TypeError,
    KeyError,
    OSError,  # missing files, permissions, a path under a regular file
    ImportError,  # an optional extra that is not installed
)


def message(exc: BaseException) -> str:
    """One line saying what went wrong, without Python's repr quoting."""
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    elif isinstance(exc, OSError) and exc.strerror and exc.filename:
        text = f"{exc.filename}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def debug_wanted(args: argparse.Namespace | None = None) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("HYBRID_DEBUG", "") not in (
        "",
        "0",
    )


def run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """``func(args)``, with user mistakes reported as one line on stderr and exit code 2."""
    try:
        return func(args)
    except USER_ERRORS as exc:
        if debug_wanted(args):
            raise
        print(f"error: {message(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR


def check_output_folder(path: str | Path, option: str = "--out") -> None:
    """Refuse an output folder that cannot be created: it or a parent is a regular file."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                where = "is a file" if p == path else f"is under {p}, which is a file"
                raise UserError(f"{option} {path} {where}, not a folder; choose another path")
            return
