"""Old import path of :mod:`hybrid.eval` (kept so existing imports work)."""

from hybrid.eval import *  # noqa: F403
from hybrid.eval import __all__  # noqa: F401
from hybrid.eval.candidates import content_hash

_hash = content_hash  # the name benchmarks/default_fusion.py imports
