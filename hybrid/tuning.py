"""Old import path of :mod:`hybrid.eval.tuning` (kept so existing imports work)."""

from hybrid.eval.tuning import *  # noqa: F403
from hybrid.eval.tuning import (  # noqa: F401
    SMALL_SPACE,
    FusionTable,
    Objective,
    SearchSpace,
    Trial,
    TuneResult,
    describe,
    grid_configs,
    grid_search,
    optuna_search,
    search,
    sweep,
    tune,
)
