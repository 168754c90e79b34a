"""The compiled fusion path (fusion/_fast.py) gives the numpy path's results bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import fusion
from fusion import _fast


@pytest.fixture(autouse=True)
def compiled_calls(monkeypatch):
    """How many calls the compiled path answered (not None)."""
    calls = []
    real = _fast.fuse_lists

    def counted(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(_fast, "fuse_lists", counted)
    return calls


def _numpy_path(*args, **kwargs):
    _fast.enabled = False
    try:
        return fusion.fuse_padded(*args, **kwargs)
    finally:
        _fast.enabled = True


def _lists(rng, n_q, n_lists, width, n_docs, ties=False, pads=True, dtype=np.float32):
    """Canonical padded lists, as the indexes return them."""
    out = []
    for _ in range(n_lists):
        ids = np.full((n_q, width), -1, dtype=np.int64)
        scores = np.full((n_q, width), -np.inf, dtype=dtype)
        for q in range(n_q):
            n = int(rng.integers(0, width + 1)) if pads else width
            docs = rng.choice(n_docs, size=n, replace=False)
            s = rng.normal(size=n).astype(dtype)
            if ties:
                s = np.round(s, 1).astype(dtype)
            order = np.lexsort((docs, -s))
            ids[q, :n], scores[q, :n] = docs[order], s[order]
        out.append((ids, scores))
    return out


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for f in x._fields:
            u, v = getattr(x, f), getattr(y, f)
            assert u.shape == v.shape, f
            assert u.dtype == v.dtype, f
            # bit for bit (NaN where NaN): compare the raw bytes of contiguous copies
            assert np.ascontiguousarray(u).tobytes() == np.ascontiguousarray(v).tobytes(), f


CASES = [
    dict(method="adaptive", norm="zscore"),
    dict(method="wsum", norm="zscore"),
    dict(method="wsum"),  # minmax
    dict(method="combsum", norm="none"),
    dict(method="combmnz", norm="minmax"),
    dict(method="combanz", norm="zscore"),
    dict(method="rrf", k=60),
    dict(method="rrf", k=0.5),
    dict(method="isr"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c.values())))
@pytest.mark.parametrize("ties", [False, True])
def test_compiled_path_matches_numpy_bit_for_bit(case, ties, compiled_calls):
    rng = np.random.default_rng(7)
    for n_q, width, n_docs, depth, top in [
        (1, 50, 80, 20, 10),
        (5, 30, 40, None, None),
        (7, 40, 1000, 10, 3),
        (3, 1, 5, 1, 1),
        (2, 300, 5000, 100, 5),  # a few of many: the kernel's insertion path
    ]:
        lists = _lists(rng, n_q, 3, width, n_docs, ties=ties)
        kw = dict(case, depth=depth, top=top)
        if case["method"] == "adaptive":
            ev = rng.uniform(size=(n_q, 3))
            ev[0, 1] = 0.0  # a list left out of one query
            kw["evidence"] = ev
        else:
            kw["weights"] = [1.0, 0.5, 2.0]
        fast = fusion.fuse_padded(lists, **kw)
        _same(fast, _numpy_path(lists, **kw))
    assert compiled_calls == [True] * 5  # the compiled path answered every call


def test_per_query_weights_and_a_zero_weight_list():
    rng = np.random.default_rng(3)
    lists = _lists(rng, 6, 3, 25, 60)
    w = rng.uniform(size=(6, 3))
    w[:, 2] = 0.0  # left out everywhere
    w[2, 0] = 0.0  # left out of one query
    for method in ("wsum", "rrf", "combmnz"):
        _same(
            fusion.fuse_padded(lists, method, w, top=7),
            _numpy_path(lists, method, w, top=7),
        )
    _same(
        fusion.fuse_padded(lists, "wsum", [1.0, 0.0, 2.0]),
        _numpy_path(lists, "wsum", [1.0, 0.0, 2.0]),
    )


def test_lists_of_different_widths_and_empty_rows():
    rng = np.random.default_rng(5)
    a = _lists(rng, 4, 1, 30, 100)[0]
    b = _lists(rng, 4, 1, 12, 100)[0]
    b[0][1] = -1  # an empty row
    kw = dict(method="adaptive", evidence=np.full((4, 2), 0.5), depth=8, top=5)
    _same(fusion.fuse_padded([a, b], **kw), _numpy_path([a, b], **kw))


def test_non_canonical_and_duplicate_lists_fall_back_to_numpy(compiled_calls):
    ids = np.array([[3, 1, 2, -1]])
    scores = np.array([[0.5, 0.9, 0.1, -np.inf]])  # not sorted
    dup_ids = np.array([[4, 5, 4]])
    dup_scores = np.array([[0.9, 0.5, 0.1]])  # id 4 twice: its best score counts
    for lists in ([(ids, scores), (dup_ids, dup_scores)], [(dup_ids, dup_scores)]):
        got = fusion.fuse_padded(lists, "wsum", top=10)
        _same(got, _numpy_path(lists, "wsum", top=10))
    got = fusion.fuse_padded([(dup_ids, dup_scores)], "rrf")
    assert compiled_calls == [False, False, False]
    assert got[0].ids.tolist() == [4, 5]
    assert got[0].ranks[:, 0].tolist() == [1, 2]


def test_bad_values_raise_the_numpy_paths_errors():
    ids = np.array([[1, -2]])
    with pytest.raises(ValueError, match="list 0: ids must be >= 0"):
        fusion.fuse_padded([(ids, np.array([[1.0, 0.5]]))], "wsum")
    with pytest.raises(ValueError, match="scores must be finite"):
        fusion.fuse_padded([(np.array([[1, 2]]), np.array([[np.nan, 0.5]]))], "wsum")
    with pytest.raises(ValueError, match="unknown fusion method"):
        fusion.fuse_padded([(np.array([[1, 2]]), np.array([[1.0, 0.5]]))], "nope")


def test_hand_worked_adaptive_single_query():
    # list a: z-scores of [3, 1] are [1, -1]; list b: [2, 2] has std 0, so 0 each
    a = (np.array([[10, 20]]), np.array([[3.0, 1.0]]))
    b = (np.array([[20, 30]]), np.array([[2.0, 2.0]]))
    (r,) = fusion.fuse_padded([a, b], "adaptive", evidence=[[1.0, 0.5]], top=3)
    assert r.ids.tolist() == [10, 30, 20]
    assert r.scores.tolist() == [1.0, 0.0, -1.0]
    assert r.ranks.tolist() == [[1, 0], [0, 2], [2, 1]]
    assert r.weights.tolist() == [1.0, 0.5]


def test_equal_scores_in_any_id_order_are_sorted_in_the_kernel(compiled_calls):
    # FAISS may return equal scores with the larger id first: such rows are sorted, and the
    # z-score statistics are summed in canonical order as the numpy path sums them
    rng = np.random.default_rng(11)
    lists = _lists(rng, 4, 3, 40, 200, ties=True)
    ids, scores = lists[1]
    for q in range(4):
        for c in range(1, 40):
            if ids[q, c] >= 0 and scores[q, c] == scores[q, c - 1]:
                ids[q, c - 1], ids[q, c] = ids[q, c], ids[q, c - 1]
    kw = dict(method="adaptive", evidence=np.full((4, 3), 0.7), depth=15, top=10)
    _same(fusion.fuse_padded(lists, **kw), _numpy_path(lists, **kw))
    assert compiled_calls == [True]


def test_bad_weights_and_evidence_raise_the_numpy_paths_errors():
    lists = [(np.array([[1, 2], [3, 4]]), np.array([[1.0, 0.5], [2.0, 1.0]]))] * 2
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        fusion.fuse_padded(lists, "wsum", [1.0, -1.0])
    with pytest.raises(ValueError, match="at least one weight must be positive"):
        fusion.fuse_padded(lists, "wsum", [0.0, 0.0])
    with pytest.raises(ValueError, match="query 1 has all-zero weights"):
        fusion.fuse_padded(lists, "wsum", [[1.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="weights must have one value per list"):
        fusion.fuse_padded(lists, "wsum", [[1.0, 1.0]])  # one row for two queries
    with pytest.raises(ValueError, match="evidence values must be finite numbers in"):
        fusion.fuse_padded(lists, "adaptive", evidence=[[0.5, 1.5], [0.5, 0.5]])
    with pytest.raises(ValueError, match="evidence only applies"):
        fusion.fuse_padded(lists, "wsum", evidence=[[0.5, 0.5], [0.5, 0.5]])
    # no list with evidence for query 0: it keeps the given weights
    (r, _) = fusion.fuse_padded(lists, "adaptive", [2.0, 1.0], evidence=[[0, 0], [1, 1]])
    assert r.weights.tolist() == [2.0, 1.0]
