"""Evidence that sees the documents (hybrid/engine/evidence.py): scripts, collection statistics kept
on add and delete, their save/load round trip, and the reach they give each query."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid.engine.evidence import NO_SCRIPT, CollectionStats, document_reach
from hybrid.engine.retrievers import BM25Retriever
from hybrid.engine.scripts import char_script, dominant_script, intact_characters, script_counts

KO = "위성 영상 분석"  # 6 Hangul letters
EN = "Satellite data"  # 13 Latin letters
MIXED = "B2B 커머스의 성장"  # B, B Latin; 6 Hangul; the digit 2 belongs to no script
DIGITS = "2024, 3.5%"


def test_scripts_of_characters_and_texts():
    assert char_script("a") == "LATIN" and char_script("é") == "LATIN"
    assert char_script("Ａ") == "LATIN"  # full-width: NFKC first
    assert char_script("한") == "HANGUL" and char_script("ᄋ") == "HANGUL"  # syllable and jamo
    assert char_script("中") == "HAN" and char_script("Ж") == "CYRILLIC"
    assert char_script("7") is None and char_script("%") is None and char_script(" ") is None
    assert script_counts(MIXED) == {"LATIN": 2, "HANGUL": 6}
    assert dominant_script(MIXED) == "HANGUL" and dominant_script(EN) == "LATIN"
    assert dominant_script(DIGITS) is None
    assert dominant_script("ab 가나") == "HANGUL"  # a tie goes to the alphabetically first
    # intact characters: all non-space ones, or those a tokenizer keeps whole
    assert intact_characters(MIXED, None) == 9
    latin = lambda chars: {c: not ("가" <= c <= "힣") for c in chars}  # noqa: E731
    assert intact_characters(MIXED, latin) == 3  # B, 2, B


def _recomputed(texts: list[str], live: list[bool], known=None) -> CollectionStats:
    s = CollectionStats()
    s.add([t for t, keep in zip(texts, live, strict=True) if keep], known)
    return s


def test_collection_stats_by_hand_and_incremental_equals_from_scratch(tmp_path):
    latin = lambda chars: {c: not ("가" <= c <= "힣") for c in chars}  # noqa: E731
    s = CollectionStats()
    s.add([KO, EN], latin)
    s.add([MIXED, DIGITS], latin)
    # rows: KO (HANGUL, 6 chars, 0 intact), EN (LATIN, 13, 13), MIXED (HANGUL, 9, 3),
    # DIGITS (no letters, 9 chars, 9 intact)
    np.testing.assert_array_equal(s.doc_script, [0, 1, 0, NO_SCRIPT])
    assert s.totals() == {
        "documents": 4,
        "per_script": {"HANGUL": 2, "LATIN": 1},
        "no_script": 1,
        "chars": 37,
        "intact": 25,
    }
    # a document without letters counts for every script
    assert s.script_share("HANGUL") == pytest.approx(3 / 4)
    assert s.script_share("LATIN") == pytest.approx(2 / 4)
    assert s.script_share("CYRILLIC") == pytest.approx(1 / 4)
    assert s.script_share(None) == 1.0
    assert s.intact_share() == pytest.approx(25 / 37)
    # delete rows 0 and 3 (and ignore a repeat and an unknown row): totals of EN + MIXED
    s.delete([0, 3, 3, 99])
    s.delete(np.array([0]))  # already deleted: no change
    assert s.totals() == {
        "documents": 2,
        "per_script": {"HANGUL": 1, "LATIN": 1},
        "no_script": 0,
        "chars": 22,
        "intact": 16,
    }
    again = _recomputed([KO, EN, MIXED, DIGITS], [False, True, True, False], latin)
    assert again.totals() == s.totals()
    assert s.script_share("LATIN") == pytest.approx(0.5) and s.intact_share() == pytest.approx(
        16 / 22
    )
    # save / load round trip: the same rows, and totals recomputed from the live rows
    loaded = CollectionStats.load(s.save(tmp_path / "stats.npz"))
    assert loaded.totals() == s.totals() and loaded.scripts == s.scripts
    np.testing.assert_array_equal(loaded.live, s.live)
    np.testing.assert_array_equal(loaded.row_scripts(np.array([1, -1, 7])), [1, -2, -2])


def test_document_reach_hand_worked():
    latin = lambda chars: {c: not ("가" <= c <= "힣") for c in chars}  # noqa: E731
    s = CollectionStats()
    s.add([KO, KO, KO, EN], latin)  # 3 Hangul documents (0 intact), 1 Latin (13 intact)
    intact = 13 / (18 + 13)
    reach = document_reach(s, ["LATIN", "HANGUL", None])
    np.testing.assert_allclose(reach, [intact * 1 / 4, intact * 3 / 4, intact])
    # an analyzer reads every character: only the script share remains
    t = CollectionStats()
    t.add([KO, KO, KO, EN])
    np.testing.assert_allclose(document_reach(t, ["LATIN", "HANGUL"]), [0.25, 0.75])
    np.testing.assert_allclose(document_reach(None, ["LATIN"]), [1.0])  # no statistics


def test_bm25_retriever_keeps_stats_on_add_delete_save_load(tmp_path):
    r = BM25Retriever("english")
    r.add([EN, KO, "ocean fishing boats"])
    assert r.collection_stats().totals()["per_script"] == {"LATIN": 2, "HANGUL": 1}
    r.delete(np.array([1]))
    assert r.collection_stats().totals()["per_script"] == {"LATIN": 2, "HANGUL": 0}
    r.save(tmp_path / "bm25")
    from hybrid.engine.retrievers import Retriever

    loaded = Retriever.load(tmp_path / "bm25")
    assert loaded.collection_stats().totals() == r.collection_stats().totals()
    # a retriever saved before the statistics existed: none, and evidence as before
    (tmp_path / "bm25" / "collection_stats.npz").unlink()
    old = Retriever.load(tmp_path / "bm25")
    assert old.collection_stats() is None
    old.add(["more text"])  # cannot line up with rows it never saw: stays without
    assert old.collection_stats() is None


def _reference(ids, scores, name="dense"):
    from hybrid.engine.evidence import Reference

    return Reference((name,), (np.asarray(ids),), (np.asarray(scores, dtype=float),))


def test_script_standouts_hand_worked():
    """Each script's best document standardised by that script's own documents in the list."""
    from hybrid.engine.evidence import script_standouts, standout_reach

    # a best-first list: H 0.9, L 0.8, H 0.5, H 0.4, H 0.3, L 0.2 (H Hangul = 0, L Latin = 1)
    codes = np.array([[0, 1, 0, 0, 0, 1]] * 2)
    scores = np.array([[0.9, 0.8, 0.5, 0.4, 0.3, 0.2]] * 2)
    same, other, other_code = script_standouts(codes, scores, np.array([0, 1]))
    # Hangul: mean 0.525, std sqrt(0.2075 / 4) = 0.22776 -> (0.9 - 0.525) / 0.2277608 = 1.646464
    # Latin: mean 0.5, std 0.3 -> (0.8 - 0.5) / 0.3 = 1.0
    np.testing.assert_allclose(same, [1.646464, 1.0], atol=1e-6)
    np.testing.assert_allclose(other, [1.0, 1.646464], atol=1e-6)
    np.testing.assert_array_equal(other_code, [1, 0])
    np.testing.assert_allclose(standout_reach(same, other), [0.646464, 0.0], atol=1e-6)
    # a document without letters joins the query's script; padding (-2 code, -inf) is left out;
    # a script with one document is measured against the whole list; none of the query's
    # script: reach 0
    codes = np.array([[0, NO_SCRIPT, 1, -2], [1, 1, 1, 1], [1, 0, 0, 0]])
    scores = np.array([[3.0, 1.0, 2.0, -np.inf], [4.0, 3.0, 2.0, 1.0], [4.0, 1.0, 1.0, 0.0]])
    same, other, _ = script_standouts(codes, scores, np.array([0, 0, 0]))
    # row 0: Hangul + no letters 3, 1 -> (3 - 2) / 1; Latin alone 2 vs the list 3, 1, 2 -> 0
    # row 1: no Hangul; Latin 4 3 2 1 -> 1.5 / 1.118034
    # row 2: Hangul 1 1 0 -> (1 - 2/3) / 0.471405; Latin alone 4 vs the list: (4 - 1.5) / 1.5
    np.testing.assert_allclose(same, [1.0, -np.inf, 0.707107], atol=1e-6)
    np.testing.assert_allclose(other, [0.0, 1.341641, 1.666667], atol=1e-6)
    np.testing.assert_allclose(standout_reach(same, other), [1.0, 0.0, 0.0])
    # no other script among the ranked documents: the query's script holds the answers
    assert standout_reach(np.array([0.3]), np.array([-np.inf]))[0] == 1.0


def test_document_reach_from_reference_lists_hand_worked():
    """With a script-free retriever's ranked list, the reach is clip(standout of the query's
    script - the best other script's standout, 0, 1), times the intact share."""
    from hybrid.engine.evidence import describe_reach

    s = CollectionStats()
    s.add([KO, EN, KO, KO, KO, EN])  # rows 0..5: H L H H H L
    ref = _reference([[0, 1, 2, 3, 4, 5]] * 3, [[0.9, 0.8, 0.5, 0.4, 0.3, 0.2]] * 3)
    reach = document_reach(s, ["HANGUL", "LATIN", None], ref, measure="standout")
    np.testing.assert_allclose(reach, [0.646464, 0.0, 1.0], atol=1e-6)
    # dense ranks a Hangul document first and favours Hangul overall, but its best Latin
    # document stands out further from the other Latin ones: Hangul 0.96 .95 .94 .93 -> 1.342,
    # Latin .955 .5 .5 .5 -> sqrt(3) = 1.732; the answers are likely Latin
    t = CollectionStats()
    t.add([KO] * 4 + [EN] * 4)  # rows 0-3 Hangul, 4-7 Latin
    biased = _reference(
        [[0, 4, 1, 2, 3, 5, 6, 7]], [[0.96, 0.955, 0.95, 0.94, 0.93, 0.5, 0.5, 0.5]]
    )
    np.testing.assert_allclose(document_reach(t, ["HANGUL"], biased, measure="standout"), [0.0])
    np.testing.assert_allclose(
        document_reach(t, ["LATIN"], biased, measure="standout"),
        [np.sqrt(3) - 0.015 / np.sqrt(0.000125)],
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="reference lists hold 1 queries, scripts 2"):
        document_reach(t, ["HANGUL", "LATIN"], biased, measure="standout")
    # two reference lists: the mean of their reaches
    from hybrid.engine.evidence import Reference

    # b: L .9, H .8 .5 .4 .3, L .2 -> Hangul 0.3 / sqrt(0.035) = 1.603567, Latin 1.0
    other = _reference([[1, 0, 2, 3, 4, 5]], [[0.9, 0.8, 0.5, 0.4, 0.3, 0.2]])
    both = Reference(("a", "b"), ref.rows(0).ids + other.ids, ref.rows(0).scores + other.scores)
    np.testing.assert_allclose(
        document_reach(s, ["HANGUL"], both, measure="standout"),
        [(0.646464 + 0.603567) / 2],
        atol=1e-6,
    )
    assert both.label == "a's top 6 and b's top 6"
    assert describe_reach(s, "HANGUL", 0.65, ref.rows(0), measure="standout") == (
        "in dense's top 6, the best Hangul document stands 1.6 sd above the other Hangul ones, "
        "the best Latin one stands 1.0 sd above the other Latin ones: reach 0.65"
    )
    s.delete([1])  # a deleted row keeps its script: reference rows are live by definition
    np.testing.assert_allclose(document_reach(s, ["LATIN"], ref.rows(1), measure="standout"), [0.0])


def test_crossing_share_and_its_part_of_the_reach():
    """A query reaches documents in another script through its digits and the letters outside
    its dominant script: reach = p + (1 - p) x crossing."""
    from hybrid.engine.scripts import crossing_share, query_profiles

    assert crossing_share(MIXED) == pytest.approx(3 / 9)  # B, 2, B of 6 Hangul + 2 Latin + 1 digit
    assert crossing_share(KO) == 0.0 and crossing_share(EN) == 0.0
    assert crossing_share("NASA 2024 위성") == pytest.approx(6 / 10)  # Latin 4 dominates
    assert crossing_share("...") == 0.0
    scripts, crossing = query_profiles([MIXED, EN])
    assert scripts == ["HANGUL", "LATIN"]
    np.testing.assert_allclose(crossing, [3 / 9, 0.0])
    s = CollectionStats()
    s.add([KO, EN, KO, KO, KO, EN])  # rows 0..5: H L H H H L
    ref = _reference([[0, 1, 2, 3, 4, 5]] * 2, [[0.9, 0.8, 0.5, 0.4, 0.3, 0.2]] * 2)
    reach = document_reach(s, scripts, ref, crossing, measure="standout")
    # Hangul query: p = 0.646464, + 0.353536 x 1/3; Latin query: p = 0, crossing 0
    np.testing.assert_allclose(reach, [0.646464 + 0.353536 / 3, 0.0], atol=1e-6)
    # without a reference: the collection's share (Hangul 4 of 6)
    np.testing.assert_allclose(
        document_reach(s, ["HANGUL"], None, np.array([0.5])), [4 / 6 + 2 / 6 * 0.5]
    )
    from hybrid.engine.evidence import describe_reach

    assert describe_reach(s, "HANGUL", 0.76, None, 1 / 3) == (
        "67% of its documents are in the query's script (Hangul); 33% of the query (digits, "
        "other scripts' letters) can match documents in other scripts: reach 0.76"
    )


def test_document_reach_share_of_reference_lists_hand_worked():
    """The default measure: the share of a reference list's top 100 in the query's script (rows
    without letters count, padding is left out), times the intact share."""
    from hybrid.engine.evidence import describe_reach

    s = CollectionStats()
    s.add([KO, EN, DIGITS, KO, EN])  # rows 0..4: HANGUL, LATIN, none, HANGUL, LATIN
    ids = np.array([[0, 3, 2, -1], [1, 0, -1, -1], [-1, -1, -1, -1]])
    scores = np.where(ids >= 0, 1.0, -np.inf)
    ref = _reference(ids, scores)
    reach = document_reach(s, ["HANGUL", "LATIN", "LATIN"], ref)
    # query 0: rows 0, 3 Hangul, 2 no letters -> 3/3; query 1: row 1 of rows 1, 0 -> 1/2;
    # query 2: no reference rows -> the collection: LATIN 2 + no-script 1 of 5
    np.testing.assert_allclose(reach, [1.0, 0.5, 3 / 5])
    np.testing.assert_allclose(
        document_reach(s, ["LATIN"], ref.rows(1), np.array([0.5])), [0.5 + 0.5 * 0.5]
    )
    assert describe_reach(s, "LATIN", 0.5, ref.rows(1)) == (
        "50% of dense's top 4 are in the query's script (Latin): reach 0.50"
    )
    with pytest.raises(ValueError, match="measure must be one of"):
        document_reach(s, ["LATIN"], ref.rows(1), measure="vote")


def test_document_reach_unknown_rows_scripts_and_the_live_count():
    s = CollectionStats()
    s.add([KO, EN, DIGITS])  # rows 0..2: HANGUL, LATIN, none
    ids = np.array([[99, 1, -1], [0, 1, 2], [0, 1, 2]])
    ref = _reference(ids, np.where(ids >= 0, 1.0, -np.inf))
    # query 0: row 99 is unknown and left out -> 1 of 1; query 1 has no letters -> 1;
    # query 2's script is in no document: only the row without letters counts -> 1 of 3
    reach = document_reach(s, ["LATIN", None, "CYRILLIC"], ref)
    assert reach.tolist() == [1.0, 1.0, 1 / 3]
    assert len(s) == 3
    s.delete([0])
    assert len(s) == 2  # counted again after a write replaced the live mask
    s.add([EN])
    assert len(s) == 3 and s.script_share("LATIN") == 3 / 3
