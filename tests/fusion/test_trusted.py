"""fusion.trusted.fuse_trusted against fusion.fuse_padded: the same results bit for bit and the
same errors, on random lists shaped as indexes return them and on inputs it hands over."""

from __future__ import annotations

import numpy as np
import pytest

import fusion
import fusion.trusted as trusted
from fusion.trusted import fuse_trusted


def _lists(rng, n_q, widths, dtype=np.float32, ties=False):
    """Padded (ids, scores) per list: duplicates, ties and -1 / -inf padding at each row's end."""
    out = []
    for width in widths:
        ids = rng.integers(0, 3 * width, size=(n_q, width)).astype(np.int64)
        scores = rng.normal(size=(n_q, width)) * rng.uniform(0.5, 20)
        if ties:
            scores = np.round(scores)
        scores = np.sort(scores, axis=1)[:, ::-1].astype(dtype)
        for q in range(n_q):
            n = int(rng.integers(0, width + 1))
            ids[q, n:] = -1
            scores[q, n:] = -np.inf
        out.append((ids, np.ascontiguousarray(scores)))
    return out


def _same(a, b):
    assert len(a) == len(b)
    for ra, rb in zip(a, b, strict=True):
        for fa, fb in zip(ra, rb, strict=True):
            assert fa.dtype == fb.dtype
            np.testing.assert_array_equal(fa, fb)


SETTINGS = [
    {"method": "adaptive", "norm": "zscore", "depth": 7},
    {"method": "adaptive", "norm": "none"},
    {"method": "rrf", "k": 60},
    {"method": "rrf", "k": 3.5, "depth": 4},
    {"method": "isr"},
    {"method": "wsum", "norm": "zscore"},
    {"method": "wsum"},  # min-max: the general path
    {"method": "combmnz", "norm": "zscore"},
    {"method": "combsum", "norm": "none", "depth": 1},
    {"method": "borda"},  # needs whole rows: the general path
    {"method": "combmax", "norm": "zscore"},
]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: "-".join(map(str, s.values())))
def test_equals_fuse_padded(seed, setting):
    rng = np.random.default_rng(seed)
    n_q = [1, 1, 2, 5, 30, 1][seed]
    widths = [[12, 12, 12], [5, 9, 1], [20, 3], [8], [400, 300, 300], [0, 4, 6]][seed]
    dtype = np.float64 if seed % 2 else np.float32
    lists = _lists(rng, n_q, widths, dtype, ties=seed in (2, 3))
    n = len(lists)
    weights = [float(x) for x in rng.uniform(0.2, 3, n)]
    evidence = None
    if setting["method"] == "adaptive":
        evidence = rng.uniform(0, 1, (n_q, n))
        evidence[0, 0] = 0.0  # a list left out for one query
        if n_q > 2:
            evidence[1] = 0.0  # no evidence at all: the configured weights
    for top in (None, 1, 10):
        kwargs = {**setting, "weights": weights, "top": top, "evidence": evidence}
        _same(fuse_trusted(lists, **kwargs), fusion.fuse_padded(lists, **kwargs))


def test_engine_shaped_input_takes_the_fast_road(monkeypatch):
    """The lists an engine fuses do not go through fuse_padded (else this test is moot)."""
    rng = np.random.default_rng(7)
    lists = _lists(rng, 1, [100, 100, 100])
    kwargs = {"method": "adaptive", "norm": "zscore", "depth": 10, "top": 10}
    kwargs.update(weights=[1.0, 2.0, 0.5], evidence=rng.uniform(0, 1, (1, 3)))
    expected = fusion.fuse_padded(lists, **kwargs)

    def refuse(*args, **kw):
        raise AssertionError("went through fuse_padded")

    monkeypatch.setattr(trusted, "fuse_padded", refuse)
    _same(fuse_trusted(lists, **kwargs), expected)


def _error(fn, lists, **kwargs):
    with pytest.raises(Exception) as info:
        fn(lists, **kwargs)
    return type(info.value), str(info.value)


@pytest.mark.parametrize(
    "case",
    [
        "nan score",
        "negative id",
        "int32 ids",
        "bad method",
        "bad weights",
        "bad evidence",
        "zero weights",
        "bad depth",
        "bad top",
        "shape mismatch",
        "overflow",
        "nan score and bad norm",
    ],
)
def test_same_errors(case):
    rng = np.random.default_rng(3)
    lists = _lists(rng, 2, [6, 6])
    kwargs = {"method": "adaptive", "weights": [1.0, 1.0], "evidence": np.full((2, 2), 0.5)}
    ids, scores = lists[1]
    if case == "nan score":
        scores[0, 0], ids[0, 0] = np.nan, 3
    elif case == "negative id":
        ids[1, 0] = -4
    elif case == "int32 ids":
        lists[1] = (ids.astype(np.int32), scores)
        kwargs["evidence"] = np.full((2, 2), 2.0)
    elif case == "bad method":
        kwargs["method"] = "nope"
    elif case == "bad weights":
        kwargs["weights"] = [1.0, float("nan")]
    elif case == "bad evidence":
        kwargs["evidence"] = np.full((2, 2), np.nan)
    elif case == "zero weights":
        kwargs.update(weights=[0.0, 0.0], evidence=None)
    elif case == "bad depth":
        kwargs["depth"] = 0
    elif case == "bad top":
        kwargs["top"] = -1
    elif case == "nan score and bad norm":  # the lists are checked first, as fuse_padded does
        scores[0, 0], ids[0, 0] = np.nan, 3
        kwargs["norm"] = "nope"
    elif case == "overflow":  # fused scores beyond float64: the general path says so
        ids0 = lists[0][0]
        huge = np.where(ids0 >= 0, 1.5e308, -np.inf)
        lists[:] = [(ids0, huge), (ids0.copy(), huge.copy())]
        kwargs = {"method": "wsum", "norm": "none", "weights": [1.0, 1.0]}
    else:
        lists[1] = (ids[:1], scores[:1])
    assert _error(fuse_trusted, lists, **kwargs) == _error(fusion.fuse_padded, lists, **kwargs)


def test_scaled_weights_match_the_numpy_formula():
    """fusion.methods.scaled_weights (compiled) against the formula written with numpy:
    weight x evidence per query, a query with no positive product keeping its weights."""
    from fusion.methods import scaled_weights

    rng = np.random.default_rng(11)
    for shape in [(1, 3), (7, 2), (50, 4), (3,)]:
        e = rng.uniform(0, 1, shape)
        e[rng.uniform(size=shape) < 0.3] = 0.0
        if len(shape) == 2:
            e[0] = 0.0  # a dead row
        for w in (rng.uniform(0.1, 2, shape[-1]), rng.uniform(0.0, 2, shape)):
            base = np.broadcast_to(w, e.shape)
            want = base * e
            dead = ~(want > 0).any(axis=-1)
            if dead.any():
                want[dead] = base[dead]
            got = scaled_weights(w, e)
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
