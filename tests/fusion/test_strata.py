"""fusion.strata: rankings of disjoint strata interleaved by a reference pattern (hand-worked)."""

from __future__ import annotations

import numpy as np
import pytest

import fusion
from fusion.strata import interleave, interleave_results, interleave_top


def test_interleave_hand_worked():
    # reference strata: A B A A B B; stratum 0 has 2 documents, stratum 1 has 3
    s, i, p = interleave([[0, 1, 0, 0, 1, 1]], [[2, 3]])
    # places 0..5: A0 B0 A1 (A has no third) B1 B2
    assert s.tolist() == [[0, 1, 0, 1, 1]]
    assert i.tolist() == [[0, 0, 1, 1, 2]]
    assert p.tolist() == [[0, 1, 2, 4, 5]]
    # the reference runs out: the rest follow by position, smaller stratum first on ties
    s, i, p = interleave([[1, -1, -1]], [[2, 2]])
    assert s.tolist() == [[1, 0, 0, 1]] and i.tolist() == [[0, 0, 1, 1]]
    assert p.tolist() == [[0, -1, -1, -1]]
    # top cuts; queries of different sizes pad with -1
    s, i, p = interleave([[0, 0], [1, 0]], [[1, 0], [1, 1]], top=2)
    assert s.tolist() == [[0, -1], [1, 0]] and p.tolist() == [[0, -1], [0, 1]]


@pytest.mark.parametrize(
    ("pattern", "counts", "match"),
    [
        ([0, 1], [[1, 1]], "2-d integer"),
        ([[0.5]], [[1]], "2-d integer"),
        ([[0, 2]], [[1, 1]], "outside -1 .. 1"),
        ([[0]], [[1, 1], [1, 1]], "counts must be"),
        ([[0]], [[-1]], "non-negative integers"),
    ],
)
def test_interleave_rejects_bad_input(pattern, counts, match):
    with pytest.raises(ValueError, match=match):
        interleave(pattern, counts)


def _fused(evidence):
    """Two lists over documents 0..3 fused adaptively with per-list ``evidence``."""
    lists = [
        (np.array([[0, 2, 1, 3]]), np.array([[4.0, 3.0, 2.0, 1.0]])),  # script-free
        (np.array([[1, 0, -1, -1]]), np.array([[9.0, 1.0, 0.0, 0.0]])),  # reads stratum 0 only
    ]
    return fusion.fuse_padded(lists, method="adaptive", evidence=[evidence])[0]


def test_interleave_results_keeps_each_strata_fusion_and_the_reference_places():
    inside, outside = _fused([1.0, 1.0]), _fused([1.0, 0.0])
    members = [np.isin(inside.ids, [0, 1]), np.isin(outside.ids, [2, 3])]
    reference = fusion.fuse_padded([(np.array([[0, 2, 1, 3]]), np.array([[4.0, 3, 2, 1]]))])[0]
    pattern = np.where(np.isin(reference.ids, [0, 1]), 0, 1)  # 0 2 1 3 -> 0 1 0 1
    merged = interleave_results([inside, outside], members, pattern, reference.scores)
    order_in = [d for d in inside.ids.tolist() if d in (0, 1)]  # stratum 0 by its own fusion
    order_out = [d for d in outside.ids.tolist() if d in (2, 3)]
    assert merged.ids.tolist() == [order_in[0], order_out[0], order_in[1], order_out[1]]
    np.testing.assert_allclose(merged.scores, reference.scores)  # the places' scores
    for row, doc in enumerate(merged.ids.tolist()):
        part = inside if doc in (0, 1) else outside
        at = part.ids.tolist().index(doc)
        np.testing.assert_array_equal(merged.ranks[row], part.ranks[at])
        np.testing.assert_allclose(merged.contributions[row], part.contributions[at])
        np.testing.assert_allclose(merged.weights[row], part.weights)
    # the ids-only path agrees with the explained one
    ids, scores = interleave_top(
        [inside.ids[None, :], outside.ids[None, :]],
        [members[0][None, :], members[1][None, :]],
        pattern[None, :],
        reference.scores[None, :],
        top=3,
    )
    assert ids.tolist() == [merged.ids[:3].tolist()]
    np.testing.assert_allclose(scores[0], merged.scores[:3])


def test_interleave_results_checks_members_and_handles_an_empty_stratum():
    part = _fused([1.0, 1.0])
    with pytest.raises(ValueError, match="members\\[0\\] must mask"):
        interleave_results([part], [np.array([True])], np.array([0]), np.array([1.0]))
    # no document in stratum 1: its places are skipped
    merged = interleave_results(
        [part, part],
        [np.ones(4, bool), np.zeros(4, bool)],
        np.array([1, 0, 1, 0]),
        np.arange(4.0)[::-1],
    )
    assert merged.ids.tolist() == part.ids.tolist()
    np.testing.assert_allclose(merged.scores, [2.0, 0.0, 0.0, 0.0])  # places 1, 3, then the floor
