"""FusionTable: the same top-k as fuse_padded, bit for bit, for every method and option."""

from __future__ import annotations

import numpy as np
import pytest

import fusion
from fusion import FusionTable, fuse_padded


def _lists(seed: int, n_q: int = 7, depths=(12, 9, 15), n_docs: int = 30, ties: bool = True):
    rng = np.random.default_rng(seed)
    out = []
    for d in depths:
        ids = np.stack([rng.choice(n_docs, size=d, replace=False) for _ in range(n_q)])
        scores = rng.normal(size=(n_q, d))
        if ties:
            scores = np.round(scores, 1)  # equal scores within and across lists
        ids[0, d // 2 :] = -1  # a padded query row
        scores[0, d // 2 :] = -np.inf
        ids[1, 1] = ids[1, 0]  # a duplicate within a list
        out.append((ids, scores))
    return out


def _expected(lists, top, **kw):
    results = fuse_padded(lists, top=top, **kw)
    ids = np.full((len(results), top), -1)
    scores = np.full((len(results), top), -np.inf)
    for q, r in enumerate(results):
        ids[q, : len(r.ids)] = r.ids
        scores[q, : len(r.ids)] = r.scores
    return ids, scores


CASES = [
    {"method": "rrf"},
    {"method": "rrf", "k": 5, "weights": [1.0, 0.0, 0.5]},
    {"method": "isr", "weights": [0.3, 1.0, 0.0]},
    {"method": "borda"},
    {"method": "borda", "weights": [1.0, 0.0, 2.0]},
    {"method": "wsum", "norm": "minmax", "weights": [0.2, 0.5, 1.0]},
    {"method": "wsum", "norm": "zscore"},
    {"method": "combsum", "norm": "none"},
    {"method": "combmnz", "norm": "minmax", "weights": [1.0, 0.0, 1.0]},
    {"method": "combanz", "norm": "rank"},
    {"method": "combmax", "norm": "dbsf"},
    {"method": "combmin", "norm": "minmax", "weights": [1.0, 2.0, 0.0]},
    {"method": "wsum", "norm": "bounded", "bounds": [(-9.0, 9.0), None, (-5.0, 5.0)]},
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
@pytest.mark.parametrize("depth", [None, 6])
def test_table_top_equals_fuse_padded(case, depth):
    lists = _lists(0)
    table = FusionTable(lists, depth=depth)
    got = table.top(top=10, **case)
    want = _expected(lists, 10, depth=depth, **case)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def test_table_per_query_weights_and_evidence():
    lists = _lists(1)
    n_q = lists[0][0].shape[0]
    rng = np.random.default_rng(2)
    evidence = rng.uniform(size=(n_q, 3))
    evidence[2, 1] = 0.0  # one list left out of one query
    evidence[3] = 0.0  # no evidence at all: configured weights
    table = FusionTable(lists, depth=5)
    for case in (
        {"method": "adaptive", "evidence": evidence, "weights": [1.0, 0.5, 1.0]},
        {"method": "combmnz", "weights": np.where(evidence > 0.3, evidence, 0.0) + 0.0},
    ):
        if case["method"] == "combmnz":
            case["weights"][:, 0] = 1.0  # every query keeps a positive weight
        got = table.top(top=8, **case)
        want = _expected(lists, 8, depth=5, **case)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


def test_table_scores_mark_rows_of_zero_weight_lists():
    ids = np.array([[1, 2]]), np.array([[3]])
    lists = [(ids[0], np.array([[2.0, 1.0]])), (ids[1], np.array([[5.0]]))]
    table = FusionTable(lists)
    # union ids 1, 2, 3; the second list weighs 0, so doc 3 is not fused at all
    scores = table.scores("rrf", weights=[1.0, 0.0], k=0)
    np.testing.assert_array_equal(scores, [1.0, 0.5, -np.inf])
    top_ids, top_scores = table.top("rrf", weights=[1.0, 0.0], k=0, top=3)
    np.testing.assert_array_equal(top_ids, [[1, 2, -1]])
    np.testing.assert_array_equal(top_scores, [[1.0, 0.5, -np.inf]])


def test_table_errors_name_the_argument():
    with pytest.raises(ValueError, match="same number of queries"):
        FusionTable(
            [(np.zeros((2, 1), int), np.zeros((2, 1))), (np.zeros((3, 1), int), np.zeros((3, 1)))]
        )
    table = FusionTable(_lists(0))
    with pytest.raises(ValueError, match="unknown fusion method"):
        table.top("nope")
    with pytest.raises(ValueError, match="weights must have one value per list"):
        table.top("rrf", weights=[1.0])
    assert "FusionTable" in fusion.__all__
