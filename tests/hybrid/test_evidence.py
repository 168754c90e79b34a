"""Evidence that sees the documents (hybrid/engine/evidence.py): scripts, collection statistics kept
on add and delete, their save/load round trip, and the reach they give each query."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid.engine.evidence import NO_SCRIPT, CollectionStats, stratum_reach
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
    # intact shares inside a script (with the documents without letters) and outside it
    assert s.intact_shares("HANGUL") == pytest.approx((12 / 24, 13 / 13))  # KO+MIXED+DIGITS
    assert s.intact_shares("LATIN") == pytest.approx((22 / 22, 3 / 15))  # EN+DIGITS | KO+MIXED
    assert s.intact_shares("CYRILLIC") == pytest.approx((9 / 9, 16 / 28))  # DIGITS | the rest
    assert s.intact_shares(None) == pytest.approx((25 / 37, 25 / 37))
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
    assert s.intact_share() == pytest.approx(16 / 22)
    assert s.intact_shares("HANGUL") == pytest.approx((3 / 9, 13 / 13))
    assert again.intact_shares("HANGUL") == s.intact_shares("HANGUL")
    # save / load round trip: the same rows, and totals recomputed from the live rows
    loaded = CollectionStats.load(s.save(tmp_path / "stats.npz"))
    assert loaded.totals() == s.totals() and loaded.scripts == s.scripts
    np.testing.assert_array_equal(loaded.live, s.live)
    np.testing.assert_array_equal(loaded.doc_script, s.doc_script)
    assert loaded.intact_shares("LATIN") == s.intact_shares("LATIN")


def test_stratum_reach_hand_worked():
    """Within the query's script: the intact share of its documents; across: that of the
    others times the query's crossing share; a query without letters is within everything."""
    latin = lambda chars: {c: not ("가" <= c <= "힣") for c in chars}  # noqa: E731
    s = CollectionStats()
    s.add([KO, KO, KO, EN], latin)  # 3 Hangul documents (18 chars, 0 intact), 1 Latin (13, 13)
    within, across = stratum_reach(s, ["LATIN", "HANGUL", None], np.array([0.5, 0.25, 0.0]))
    np.testing.assert_allclose(within, [1.0, 0.0, 13 / 31])
    np.testing.assert_allclose(across, [0.0 * 0.5, 1.0 * 0.25, 13 / 31])
    # an analyzer reads every character: within 1, across the crossing share alone
    t = CollectionStats()
    t.add([KO, KO, KO, EN])
    within, across = stratum_reach(t, ["LATIN", "HANGUL"], np.array([0.0, 0.4]))
    np.testing.assert_allclose(within, [1.0, 1.0])
    np.testing.assert_allclose(across, [0.0, 0.4])
    # a script no document has: nothing within (the whole collection's share), all across
    within, across = stratum_reach(t, ["CYRILLIC"], np.array([1.0]))
    np.testing.assert_allclose([within[0], across[0]], [1.0, 1.0])
    assert [a.tolist() for a in stratum_reach(None, ["LATIN"])] == [[1.0], [1.0]]
    with pytest.raises(ValueError, match="crossing must hold 2 values"):
        stratum_reach(t, ["LATIN", "HANGUL"], np.array([0.1]))


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
    from hybrid.engine.evidence import describe_reach

    s = CollectionStats()
    s.add([KO, EN, KO, KO, KO, EN])
    within, across = stratum_reach(s, scripts, crossing)
    np.testing.assert_allclose(within, [1.0, 1.0])
    np.testing.assert_allclose(across, [3 / 9, 0.0])
    assert describe_reach(s, "HANGUL", 1 / 3, 1 / 3, within=False) == (
        "the document is not in the query's script (Hangul); 33% of the query (digits, "
        "other scripts' letters) can match it: reach 0.33"
    )
    assert describe_reach(s, "HANGUL", 1.0, 1 / 3) == (
        "the document is in the query's script (Hangul) or has no letters: reach 1.00"
    )


def test_ascii_profiles_equal_the_per_character_path():
    """ASCII texts skip the per-character look-up (every letter is Latin): the same dominant
    script and the same crossing share, to the bit, as counting each character's script."""
    import random
    from collections import Counter

    from hybrid.engine.scripts import _crossing, _pick, _profile, _scripts

    rng = random.Random(5)
    ascii_chars = [chr(i) for i in range(128)]
    texts = ["", " ", "...", "2024", "a", "NASA 2024", "0-dimensional biomaterials", "\t\n7x"]
    texts += ["".join(rng.choices(ascii_chars, k=rng.randint(1, 40))) for _ in range(2000)]
    texts += ["".join(rng.choices("ab1 .", k=rng.randint(1, 12))) for _ in range(500)]
    for text in texts:
        counts = Counter(text)
        scripts = _scripts(counts)
        assert _profile(text) == (_pick(scripts), _crossing(counts, scripts)), repr(text)
    assert _profile("ab 12") == ("LATIN", 0.5) and _profile("12") == (None, 1.0)
    assert _profile("가 12") == ("HANGUL", 2 / 3)  # not ASCII: the per-character path


def test_strata_within_unknown_rows_scripts_and_the_live_count():
    from hybrid.engine.evidence import strata_for

    bm25 = BM25Retriever("english")
    bm25.add([KO, EN, DIGITS])  # rows 0..2: HANGUL, LATIN, none
    s = bm25.collection_stats()

    class Dense:
        script_bound = False

    strata = strata_for({"bm25": bm25, "dense": Dense()}, ["LATIN", None, "CYRILLIC"])
    assert strata.reference == ("dense",)
    assert strata.query_scripts.tolist() == [1, NO_SCRIPT, -3]
    ids = np.array([[0, 1, 2, -1, 99], [0, 1, 2, -1, 99], [0, 1, 2, -1, 99]])
    # Latin query: row 1 and the row without letters; a query without letters: every row;
    # a script no document has: only the row without letters; padding never; unknown rows within
    assert strata.within(ids).tolist() == [
        [False, True, True, False, True],
        [True, True, True, False, True],
        [False, False, True, False, True],
    ]
    assert strata.subset([2]).within(ids[:1]).tolist() == [[False, False, True, False, True]]
    assert strata.only is None  # Hangul, Latin and a document without letters
    latin = BM25Retriever("english")
    latin.add([EN, "ocean fishing boats"])
    assert strata_for({"bm25": latin}, ["LATIN"]).only == 0  # one script: known per query
    assert strata_for({"dense": Dense()}, ["LATIN"]) is None  # no statistics anywhere
    assert len(s) == 3
    s.delete([0])
    assert len(s) == 2  # counted again after a write replaced the live mask
    s.add([EN])
    assert len(s) == 3 and s.totals()["per_script"] == {"HANGUL": 0, "LATIN": 2}


def test_candidates_fuse_by_strata_and_both_fusion_paths_agree(tmp_path):
    """Query 0 holds documents of both scripts: each stratum is fused with its own evidence,
    and dense's ranking places them. Query 1's candidates are all in another script: one
    fusion with the evidence across scripts, exactly as the fusion layer computes it."""
    import fusion
    from hybrid.engine.candidates import Candidates
    from hybrid.engine.config import DEFAULT_CONFIG, FusionConfig
    from hybrid.engine.strata import Strata

    dense = np.array([[0, 2, 1, 3], [2, 3, -1, -1]])
    dense_s = np.array([[4.0, 3.0, 2.0, 1.0], [2.0, 1.0, -np.inf, -np.inf]])
    bm25 = np.array([[1, 0, -1, -1], [3, 2, -1, -1]])
    bm25_s = np.array([[9.0, 1.0, -np.inf, -np.inf], [5.0, 1.0, -np.inf, -np.inf]])
    cands = Candidates.from_arrays(
        ["q0", "q1"],
        ["a", "b", "c", "d"],
        {"dense": dense, "bm25": bm25},
        {"dense": dense_s, "bm25": bm25_s},
        evidence={"dense": np.ones(2), "bm25": np.ones(2)},
        evidence_across={"dense": np.ones(2), "bm25": np.array([0.0, 0.3])},
        strata=Strata(np.array([0, 0, 1, 1]), np.array([0, 0]), ("dense",)),
    )
    _, results = cands.fuse(DEFAULT_CONFIG, 4)
    lists = [(dense, dense_s), (bm25, bm25_s)]
    opts = {"method": "adaptive", "norm": "zscore", "depth": 100}

    def alone(q, bm25_evidence):
        one = [(i[q : q + 1], s[q : q + 1]) for i, s in lists]
        return fusion.fuse_padded(one, evidence=[[1.0, bm25_evidence]], **opts)[0]

    first = [d for d in alone(0, 1.0).ids.tolist() if d in (0, 1)]
    assert first == [1, 0]  # BM25 lifts document 1 within the query's script
    assert results[0].ids.tolist() == [1, 2, 0, 3]  # dense's places: script 0, 1, 0, 1
    reference = fusion.fuse_padded([lists[0]], **opts)[0]  # dense alone: the places' scores
    np.testing.assert_allclose(results[0].scores[:4], reference.scores[:4])
    np.testing.assert_allclose(results[0].weights, [[1, 1], [1, 0], [1, 1], [1, 0]])
    one = alone(1, 0.3)
    assert results[1].ids.tolist() == one.ids.tolist()
    np.testing.assert_allclose(results[1].scores, one.scores)
    # the top-k arrays path gives the same rankings, and a saved set keeps its strata
    ids, scores = cands.fused_arrays(DEFAULT_CONFIG, 4)
    np.testing.assert_allclose(scores[0], results[0].scores)
    assert ids.tolist() == [r.ids.tolist() + [-1] * (4 - len(r.ids)) for r in results]
    loaded = Candidates.load(cands.save(tmp_path / "c"))
    assert loaded.fused_arrays(DEFAULT_CONFIG, 4)[0].tolist() == ids.tolist()
    assert loaded.strata.reference == ("dense",)
    # a collection in one script: the per-query shortcut equals the full stratified path
    one = Strata(np.array([1, 1, 1, 1]), np.array([0, 1]), ("dense",))
    for only in (None, 1):
        cands.strata = Strata(one.doc_scripts, one.query_scripts, one.reference, only)
        got = cands.fused_arrays(DEFAULT_CONFIG, 4)
        if only is None:
            want = got
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1])
    # another method than adaptive ignores the strata
    rrf = cands.fused_arrays(FusionConfig(method="rrf", norm=None, depth=100), 4)[0]
    assert rrf.tolist() == fusion.FusionTable(lists).top("rrf", top=4)[0].tolist()


def test_collection_stats_refuse_unknown_script_codes(tmp_path):
    """A damaged statistics file is refused naming the file, before any code indexes with it."""
    s = CollectionStats()
    s.add([KO, EN])
    path = s.save(tmp_path / "stats.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["doc_script"] = np.array([0, 7], dtype=np.int32)  # only two scripts are known
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(ValueError, match="stats.npz: collection statistics hold unknown script"):
        CollectionStats.load(path)
