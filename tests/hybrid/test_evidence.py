"""Evidence that sees the documents (hybrid/evidence.py): scripts, collection statistics kept
on add and delete, their save/load round trip, and the reach they give each query."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid.engine.evidence import (
    NO_SCRIPT,
    CollectionStats,
    char_script,
    document_reach,
    dominant_script,
    intact_characters,
    script_counts,
)
from hybrid.engine.retrievers import BM25Retriever

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


def test_document_reach_from_reference_rows_hand_worked():
    """With rows a script-free retriever ranked first, the reach is the share of them in the
    query's script (rows without letters count; padding is left out), times the intact share."""
    s = CollectionStats()
    s.add([KO, EN, DIGITS, KO, EN])  # rows 0..4: HANGUL, LATIN, none, HANGUL, LATIN
    ref = np.array([[0, 3, 2, -1], [1, 0, -1, -1], [-1, -1, -1, -1]])
    reach = document_reach(s, ["HANGUL", "LATIN", "LATIN"], ref)
    # query 0: rows 0, 3 Hangul, 2 no letters -> 3/3; query 1: row 1 of rows 1, 0 -> 1/2;
    # query 2: no reference rows -> the collection: LATIN 2 + no-script 1 of 5
    np.testing.assert_allclose(reach, [1.0, 0.5, 3 / 5])
    s.delete([1])  # a deleted row still has its script: reference rows are live by definition
    np.testing.assert_allclose(document_reach(s, ["LATIN"], ref[1:2]), [0.5])
    from hybrid.engine.evidence import describe_reach

    assert describe_reach(s, "LATIN", 0.5, "dense's top 100") == (
        "50% of dense's top 100 are in the query's script (Latin): reach 0.50"
    )


def test_document_reach_unknown_rows_scripts_and_the_live_count():
    s = CollectionStats()
    s.add([KO, EN, DIGITS])  # rows 0..2: HANGUL, LATIN, none
    ref = np.array([[99, 1, -1], [0, 1, 2], [0, 1, 2]])
    # query 0: row 99 is unknown and left out -> 1 of 1; query 1 has no letters -> 1;
    # query 2's script is in no document: only the row without letters counts -> 1 of 3
    reach = document_reach(s, ["LATIN", None, "CYRILLIC"], ref)
    assert reach.tolist() == [1.0, 1.0, 1 / 3]
    assert len(s) == 3
    s.delete([0])
    assert len(s) == 2  # counted again after a write replaced the live mask
    s.add([EN])
    assert len(s) == 3 and s.script_share("LATIN") == 3 / 3
