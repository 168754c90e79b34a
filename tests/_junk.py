"""Hypothesis strategies for the bad-input tests: what careless callers pass.

``junk`` mixes None, booleans, huge and non-finite numbers, odd Unicode, bytes, containers and
numpy arrays of every kind; tests pair it with a few valid values so both outcomes occur.
"""

from __future__ import annotations

import contextlib

import numpy as np
from hypothesis import event
from hypothesis import strategies as st

ALLOWED = (TypeError, ValueError, KeyError)
"""What a public entry point may raise for a bad input (IndexFormatError is a ValueError)."""

odd_text = st.one_of(
    st.sampled_from(["", " ", "\x00", "\u200b", "\ud7ff", "é", "e\u0301", "😀", "3", "1.5", "nan"]),
    st.text(max_size=6),
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 12),
    st.sampled_from([0, -1, 10**9, 10**30, -(10**30), 2**63, 2**63 + 5, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1.5, 2.0, -0.0, 1e39, 1e308, -1e308, float("nan"), float("inf")]),
    odd_text,
    st.binary(max_size=3),
    st.sampled_from([np.int64(2), np.uint64(2**63 + 5), np.float32(2.0), np.bool_(True)]),
)


def _arrays() -> st.SearchStrategy:
    return st.one_of(
        st.lists(st.integers(-2, 12), max_size=5).map(lambda v: np.array(v, dtype=np.int64)),
        st.lists(st.integers(0, 2**64 - 1), max_size=3).map(lambda v: np.array(v, np.uint64)),
        st.lists(st.floats(), max_size=4).map(lambda v: np.array(v, dtype=np.float64)),
        st.lists(st.booleans(), max_size=4).map(lambda v: np.array(v, dtype=bool)),
        st.lists(st.text(max_size=2), max_size=3).map(lambda v: np.array(v, dtype=str)),
        st.lists(st.one_of(st.none(), st.integers(0, 5)), max_size=3).map(
            lambda v: np.array([*v, None], dtype=object)
        ),
        st.just(np.zeros((2, 2, 2))),
        st.just(np.array(3)),
    )


junk = st.recursive(
    st.one_of(scalars, _arrays()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=2), inner, max_size=2),
    ),
    max_leaves=6,
)
"""Anything at all (mostly wrong)."""


def names_argument(exc: BaseException, *names: str) -> bool:
    """Whether the error message names one of ``names``. Inside a hypothesis test it also
    counts the refusal (``--hypothesis-show-statistics`` shows the share of refused inputs)."""
    with contextlib.suppress(Exception):  # event() only works inside @given
        event(f"refused: {type(exc).__name__}")
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return any(n in text for n in names)
