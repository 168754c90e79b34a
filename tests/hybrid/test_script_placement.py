"""How a bilingual collection's scripts are placed against each other: the dense retriever's
vector sample and per-script baselines, and the lexical confirmation that keeps dense's own
order (hybrid.engine.sample, hybrid.engine.strata)."""

from __future__ import annotations

import numpy as np
import pytest

import fusion
from hybrid.engine.sample import VectorSample, sample_keys
from hybrid.engine.strata import CONFIRM_DEPTH, Placement, Strata, stratified_fuse
from tests import _standins as standins

# ----------------------------------------------------------------------------- the vector sample


def _sampled(sample: VectorSample, live: np.ndarray) -> np.ndarray:
    """The rows a Bernoulli sample at ``sample.rate`` must hold: live rows under the rate."""
    return live[sample_keys(live) < sample.rate]


def test_sample_is_the_live_rows_under_its_rate_through_adds_and_deletes():
    rng = np.random.default_rng(0)
    sample = VectorSample(dim=4, target=64)
    vectors = rng.standard_normal((3000, 4)).astype(np.float32)
    for start in range(0, 3000, 250):
        sample.add(np.arange(start, start + 250), vectors[start : start + 250])
    assert 64 <= len(sample) <= 128 and sample.rate < 1.0
    assert np.log2(sample.rate) == int(np.log2(sample.rate))  # halved from 1, never otherwise
    live = np.arange(3000)
    np.testing.assert_array_equal(sample.rows, _sampled(sample, live))
    np.testing.assert_array_equal(sample.vectors, vectors[sample.rows])
    gone = rng.choice(3000, size=1000, replace=False)
    before = sample.copy()
    sample.delete(gone)
    live = np.setdiff1d(live, gone)
    np.testing.assert_array_equal(sample.rows, _sampled(sample, live))
    assert len(before) > len(sample)  # the copy kept its own state
    # uniform: the sampled share of each half of the ids is about the rate
    half = np.isin(sample.rows, np.arange(1500)).mean()
    assert 0.3 < half < 0.7


def test_centroids_are_the_mean_sampled_vector_of_each_script():
    rng = np.random.default_rng(1)
    sample = VectorSample(dim=3, target=8)
    vectors = rng.standard_normal((40, 3)).astype(np.float32)
    sample.add(np.arange(40), vectors)
    codes = np.array([0, 1] * 20, dtype=np.int32)
    codes[:4] = -1  # no letters
    sample.delete([5, 7])
    got = sample.centroids(codes, 3)  # code 2 has no document
    rows = sample.rows
    for c in (-1, 0, 1):
        member = rows[codes[rows] == c]
        if member.size:
            np.testing.assert_allclose(got[c + 1], vectors[member].astype(np.float64).mean(0))
    np.testing.assert_allclose(got[3], vectors[rows].astype(np.float64).mean(0))
    assert sample.centroids(codes, 3) is got  # cached for this state


def test_sample_round_trip_and_damaged_files_name_the_file(tmp_path):
    sample = VectorSample(dim=2, target=4)
    sample.add(np.arange(20), np.arange(40, dtype=np.float32).reshape(20, 2))
    path = sample.save(tmp_path / "s.npz")
    back = VectorSample.load(path)
    assert (back.rate, back.n_rows, back.dim) == (sample.rate, sample.n_rows, 2)
    np.testing.assert_array_equal(back.rows, sample.rows)
    np.testing.assert_array_equal(back.vectors, sample.vectors)

    def damaged(**change):
        arrays = {
            "kind": np.array("vector_sample"),
            "meta": np.array([2, 4, 20]),
            "rate": np.array([sample.rate]),
            "rows": sample.rows,
            "vectors": sample.vectors,
            **change,
        }
        bad = tmp_path / "bad.npz"
        with open(bad, "wb") as f:
            np.savez(f, **arrays)
        return bad

    nan = sample.vectors.copy()
    nan[0, 0] = np.nan
    for change, words in (
        ({"vectors": nan}, "NaN"),
        ({"rows": sample.rows[::-1].copy()}, "increasing"),
        ({"meta": np.array([2, 4, 3])}, "below 3"),
        ({"rate": np.array([0.0])}, "rate"),
        ({"vectors": sample.vectors[:, :1].copy()}, "vectors for"),
    ):
        with pytest.raises(ValueError, match=words) as info:
            VectorSample.load(damaged(**change))
        assert "bad.npz" in str(info.value)
    (tmp_path / "cut.npz").write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match="cut.npz"):
        VectorSample.load(tmp_path / "cut.npz")


# ----------------------------------------------------------------------------- in the engine


def test_engine_writes_keep_the_sample_and_folders_restore_it(tmp_path):
    texts, ids, _ = standins.docs(60, seed=3)
    with standins.engine(tmp_path / "idx") as live:
        live.add(texts, ids=ids)
        live.delete(ids[:10])
        live.upsert(["alpha omega", "radar radar"], ids=[ids[20], "new"])
        standins.check_sample(live)
        want = live.retrievers["dense"].vector_sample().rows
    from hybrid import HybridRetriever

    back = HybridRetriever.open(tmp_path / "idx", encoders=standins.encoders())
    try:
        np.testing.assert_array_equal(back.retrievers["dense"].vector_sample().rows, want)
        standins.check_sample(back)
    finally:
        back.close()


def test_a_failed_write_leaves_the_sample_as_before(monkeypatch):
    engine = standins.engine()
    texts, ids, _ = standins.docs(30, seed=4)
    engine.add(texts, ids=ids)
    before = engine.retrievers["dense"].vector_sample().rows.copy()
    bm25 = engine.retrievers["bm25"]

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(bm25, "delete", fail)
    with pytest.raises(RuntimeError):
        engine.upsert(["alpha beta"], ids=[ids[0]])
    np.testing.assert_array_equal(engine.retrievers["dense"].vector_sample().rows, before)
    standins.check_sample(engine)


# ----------------------------------------------------------------------------- placement


def _strata(baseline: np.ndarray | None) -> Strata:
    # rows 0-2 in script 0 (the query's), rows 3-4 in script 1
    doc_scripts = np.array([0, 0, 0, 1, 1], dtype=np.int32)
    base = None if baseline is None else {"dense": baseline[None, :]}
    return Strata(doc_scripts, np.array([0], dtype=np.int32), ("dense",), None, base)


def _fuse(lists, strata, evidence=(1.0, 1.0)):
    placements: dict[int, Placement] = {}
    options = {"method": "adaptive", "weights": [1.0, 1.0], "norm": "zscore", "k": 60}
    options.update(depth=100, evidence=np.array([evidence]))
    [result] = stratified_fuse(
        lists, ["dense", "bm25"], options, np.array([[1.0, 0.0]]), strata, None, placements
    )
    return result, placements[0]


DENSE = (np.array([[0, 1, 3, 2, 4]]), np.array([[0.90, 0.86, 0.85, 0.80, 0.78]]))


def test_unconfirmed_query_places_the_scripts_by_dense_minus_its_script_means():
    """BM25 returns only row 2, dense's 3rd document in the query's script: within a first
    page, so it confirms and dense's own order places the scripts. With BM25's evidence under
    the bar nothing confirms, and dense's scores minus each script's mean place them."""
    bm25 = (np.array([[2, -1, -1, -1, -1]]), np.array([[5.0, 0, 0, 0, 0]]))
    baseline = np.array([0.0, 0.84, 0.70])  # column code + 1: no letters, script 0, script 1
    result, placement = _fuse([DENSE, bm25], _strata(baseline))
    assert placement.confirmed_by == "bm25" and placement.baselines is None
    scripts = [0, 0, 1, 0, 1]  # dense's ranking: rows 0, 1, 3, 2, 4
    assert [0 if r < 3 else 1 for r in result.ids.tolist()] == scripts
    # BM25 with its evidence below the bar cannot confirm: dense minus each script's mean
    # 0.90-0.84=0.06, 0.86-0.84=0.02, 0.85-0.70=0.15, 0.80-0.84=-0.04, 0.78-0.70=0.08
    # -> rows 3, 4, 0, 1, 2: scripts 1, 1, 0, 0, 0
    result, placement = _fuse([DENSE, bm25], _strata(baseline), evidence=(1.0, 0.4))
    assert placement.confirmed_by is None
    np.testing.assert_array_equal(placement.baselines["dense"], baseline)
    assert [0 if r < 3 else 1 for r in result.ids.tolist()] == [1, 1, 0, 0, 0]
    assert np.all(np.diff(result.scores) <= 0)  # the shifted reference's fused scores
    text = placement.describe("dense", ["HANGUL", "LATIN"])
    assert "Hangul 0.840, Latin 0.700" in text and "no lexical retriever confirms" in text
    # without baselines the unconfirmed query keeps dense's order
    result, placement = _fuse([DENSE, bm25], _strata(None), evidence=(1.0, 0.4))
    assert placement == Placement(None, None)
    assert [0 if r < 3 else 1 for r in result.ids.tolist()] == scripts


def test_confirmation_looks_a_first_page_deep():
    """Dense's best in-script document must be in BM25's first CONFIRM_DEPTH in-script
    documents (or the reverse), not anywhere in its list."""
    n = CONFIRM_DEPTH + 3
    doc_scripts = np.array([0] * n + [1], dtype=np.int32)
    dense = (np.arange(n + 1)[None, :], np.linspace(1.0, 0.5, n + 1)[None, :])
    bm25_ids = np.array([[*range(n - 1, 0, -1), 0, -1]])  # dense's best comes last
    bm25 = (bm25_ids, np.linspace(9, 1, n + 1)[None, :])
    base = {"dense": np.array([[0.0, 0.9, 0.1]])}
    strata = Strata(doc_scripts, np.array([0], dtype=np.int32), ("dense",), None, base)
    options = {"method": "adaptive", "weights": [1.0, 1.0], "norm": "zscore", "k": 60}
    options.update(depth=100, evidence=np.array([[1.0, 1.0]]))
    placements: dict[int, Placement] = {}
    across = np.array([[1.0, 0.0]])
    stratified_fuse([dense, bm25], ["dense", "bm25"], options, across, strata, 5, placements)
    # BM25's best (row n-1) is dense's n-th in the script: past a first page either way
    assert placements[0].confirmed_by is None
    [r] = stratified_fuse([dense, bm25], ["dense", "bm25"], options, across, strata, 5)
    assert r.ids[0] == n  # the other script's document, 0.5 - 0.1 above 1.0 - 0.9
    # the same lists with BM25's best moved up to dense's 2nd: confirmed
    bm25 = (np.array([[1] + [i for i in bm25_ids[0] if i != 1]]), bm25[1])
    stratified_fuse([dense, bm25], ["dense", "bm25"], options, across, strata, 5, placements)
    assert placements[0].confirmed_by == "bm25"


def test_plain_fusion_of_one_script_is_untouched_by_baselines():
    """A query whose candidates are all in one stratum fuses once, as fusion.fuse_padded."""
    doc_scripts = np.zeros(4, dtype=np.int32)
    base = {"dense": np.array([[0.0, 0.5]])}
    strata = Strata(doc_scripts, np.array([0], dtype=np.int32), ("dense",), None, base)
    dense = (np.array([[0, 1, 2, 3]]), np.array([[0.9, 0.8, 0.7, 0.6]]))
    bm25 = (np.array([[3, 2, -1, -1]]), np.array([[2.0, 1.0, 0, 0]]))
    options = {"method": "adaptive", "weights": [1.0, 1.0], "norm": "zscore", "k": 60}
    options.update(depth=100, evidence=np.array([[1.0, 1.0]]))
    across = np.array([[1.0, 0.0]])
    [got] = stratified_fuse([dense, bm25], ["dense", "bm25"], options, across, strata, 4)
    [want] = fusion.fuse_padded([dense, bm25], top=4, **options)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_array_equal(got.scores, want.scores)


def test_a_damaged_sample_file_is_refused_naming_it(tmp_path):
    engine = standins.engine()
    texts, ids, _ = standins.docs(20, seed=5)
    engine.add(texts, ids=ids)
    engine.save(tmp_path / "idx")
    [path] = [p for p in (tmp_path / "idx").rglob("collection_stats.npz") if "dense" in str(p)]
    path.write_bytes(path.read_bytes()[:-40])
    from hybrid import HybridRetriever

    with pytest.raises(Exception, match="collection_stats.npz") as info:
        HybridRetriever.load(tmp_path / "idx", encoders=standins.encoders())
    assert "dense" in str(info.value)
