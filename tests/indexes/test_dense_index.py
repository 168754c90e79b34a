"""DenseIndex: exactness against numpy, ids, deletion, training, threads, persistence, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

faiss = pytest.importorskip("faiss")

from indexes import DenseIndex, IndexFormatError, SearchResult  # noqa: E402
from indexes._base import PAD_ID  # noqa: E402

DIM = 16


def rand(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def clustered(n: int, n_queries: int, dim: int = 32, clusters: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32) * 3
    x = centres[rng.integers(0, clusters, n)] + rng.standard_normal((n, dim)).astype(np.float32)
    q = centres[rng.integers(0, clusters, n_queries)]
    q = q + rng.standard_normal((n_queries, dim)).astype(np.float32)
    return x.astype(np.float32), q.astype(np.float32)


def brute_force(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = q @ x.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(
        np.mean([len(np.intersect1d(f, t)) / k for f, t in zip(found, truth, strict=True)])
    )


# ------------------------------------------------------------------------------ exact search


def test_flat_ip_matches_numpy_brute_force() -> None:
    x, q = rand(500), rand(20, seed=1)
    index = DenseIndex(DIM)
    ids = index.add(x)
    assert ids.dtype == np.int64 and ids.tolist() == list(range(500))
    res = index.search(q, 10)
    assert isinstance(res, SearchResult)
    assert res.ids.shape == res.scores.shape == (20, 10)
    assert res.ids.dtype == np.int64 and res.scores.dtype == np.float32
    want_ids, want_scores = brute_force(x, q, 10)
    np.testing.assert_array_equal(res.ids, want_ids)
    np.testing.assert_allclose(res.scores, want_scores, rtol=1e-5, atol=1e-5)


def test_cosine_normalises_stored_and_query_vectors() -> None:
    x, q = rand(300), rand(5, seed=1)
    scale = np.random.default_rng(2).uniform(0.1, 10, (300, 1)).astype(np.float32)
    index = DenseIndex(DIM, metric="cosine")
    index.add(x * scale)  # lengths must not matter
    res = index.search(q * 7.0, 5)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    want_ids, want_scores = brute_force(xn, qn, 5)
    np.testing.assert_array_equal(res.ids, want_ids)
    np.testing.assert_allclose(res.scores, want_scores, atol=1e-5)
    assert np.all(res.scores <= 1.0 + 1e-5)
    # the caller's arrays are not modified
    assert not np.allclose(np.linalg.norm(q * 7.0, axis=1), 1.0)


def test_ip_differs_from_cosine_when_lengths_differ() -> None:
    x = np.array([[1, 0], [10, 10]], dtype=np.float32)
    q = np.array([1, 0], dtype=np.float32)
    ip, cos = DenseIndex(2, "ip"), DenseIndex(2, "cosine")
    ip.add(x)
    cos.add(x)
    assert ip.search(q, 1).ids[0, 0] == 1  # 10 > 1
    assert cos.search(q, 1).ids[0, 0] == 0  # cos 1 > 0.707


def test_single_vector_query_gives_one_row() -> None:
    index = DenseIndex(DIM)
    index.add(rand(50))
    res = index.search(rand(1, seed=3)[0], 3)
    assert res.ids.shape == (1, 3)


def test_k_beyond_the_count_gives_the_whole_collection_and_empty_index_width_0() -> None:
    index = DenseIndex(DIM)
    empty = index.search(rand(2), 4)
    assert empty.ids.shape == empty.scores.shape == (2, 0)
    index.add(rand(3))
    for k in (5, 10**9):  # 10**9: nothing is allocated for the requested size
        res = index.search(rand(2, seed=1), k)
        assert res.ids.shape == (2, 3)
        assert sorted(res.ids[0].tolist()) == [0, 1, 2] and np.isfinite(res.scores).all()
    index.delete([1])
    res = index.search(rand(2, seed=1), 5)
    assert res.ids.shape == (2, 2) and (res.ids != 1).all() and (res.ids >= 0).all()


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3"])
def test_bad_k_rejected(k) -> None:
    index = DenseIndex(DIM)
    index.add(rand(5))
    with pytest.raises(ValueError, match="k must be"):
        index.search(rand(1), k)


# ------------------------------------------------------------------------------ ids and deletion


@pytest.mark.parametrize("factory", ["Flat", "HNSW32", "IVF8,Flat", "RR16,IVF8,Flat"])
def test_ids_stable_across_delete(factory: str) -> None:
    x, q = rand(400), rand(10, seed=1)
    index = DenseIndex(DIM, factory=factory)
    if index.nprobe is not None:
        index.nprobe = 8  # exhaustive: results comparable with brute force
    index.add(x[:300])
    deleted = np.arange(0, 300, 3)
    assert index.delete(deleted) == len(deleted)
    assert len(index) == 200
    ids = index.add(x[300:])
    assert ids.tolist() == list(range(300, 400))  # ids never reused
    assert len(index) == 300 and index.next_id == 400
    res = index.search(q, 10)
    live = np.setdiff1d(np.arange(400), deleted)
    want_ids, want_scores = brute_force(x[live], q, 10)
    if factory == "HNSW32":  # approximate: deleted ids never come back, recall stays high
        assert not np.isin(res.ids, deleted).any()
        assert recall(res.ids, live[want_ids]) >= 0.9
    else:
        np.testing.assert_array_equal(res.ids, live[want_ids])
        np.testing.assert_allclose(res.scores, want_scores, atol=1e-4)
    np.testing.assert_array_equal(index.live_ids(), live)


def test_hnsw_delete_everything_returns_only_padding() -> None:
    index = DenseIndex(DIM, factory="HNSW32")
    index.add(rand(20))
    index.delete(range(19))
    res = index.search(rand(3, seed=1), 5)
    assert (res.ids[:, 0] == 19).all()
    assert (res.ids[:, 1:] == PAD_ID).all() and np.isneginf(res.scores[:, 1:]).all()
    index.delete([19])
    assert (index.search(rand(1), 2).ids == PAD_ID).all()


@pytest.mark.parametrize("factory", ["IVF8,PQ4x4,RFlat", "PQ4x4,RFlat"])
def test_refine_factories_add_delete_search(factory: str) -> None:
    x, q = rand(500), rand(6, seed=1)
    index = DenseIndex(DIM, factory=factory)
    assert index.add(x).tolist() == list(range(500))
    first = index.search(q, 5).ids
    index.delete(first[:, 0])  # tombstoned (refine indexes cannot remove), filtered at search
    res = index.search(q, 5)
    assert not np.isin(res.ids, first[:, 0]).any()
    assert (res.ids >= 0).all() and len(index) == 500 - len(np.unique(first[:, 0]))
    few = DenseIndex(DIM, factory=factory)
    few.add(x[:300])
    if few.nprobe is not None:
        few.nprobe = 8  # visit every list: the two live vectors must be found
    few.delete(range(298))
    tail = few.search(q, 5)  # k larger than the live count: padded, never a deleted id
    assert (np.sort(tail.ids[:, :2], axis=1) == [298, 299]).all()
    assert (tail.ids[:, 2:] == PAD_ID).all() and np.isneginf(tail.scores[:, 2:]).all()


def test_delete_unknown_or_twice_raises_and_changes_nothing() -> None:
    index = DenseIndex(DIM)
    index.add(rand(10))
    index.delete([3])
    for bad in ([3], [42], [-1], [2, 42]):
        with pytest.raises(KeyError, match="not in the index"):
            index.delete(bad)
    assert len(index) == 9 and 2 in index.live_ids()


# ------------------------------------------------------------------------------ ANN quality


@pytest.mark.parametrize(
    ("factory", "params", "min_recall"),
    [
        ("HNSW32", {"ef_search": 64}, 0.9),
        ("IVF32,Flat", {"nprobe": 8}, 0.8),
        ("IVF32,PQ16x4", {"nprobe": 8}, 0.25),
    ],
)
def test_ann_recall_on_clustered_data(factory: str, params: dict, min_recall: float) -> None:
    x, q = clustered(3000, 50)
    flat = DenseIndex(32, factory="Flat")
    flat.add(x)
    truth = flat.search(q, 10).ids
    index = DenseIndex(32, factory=factory, threads=1)
    index.add(x)  # trains on these vectors first (IVF / PQ)
    for key, value in params.items():
        setattr(index, key, value)
    got = index.search(q, 10)
    assert recall(got.ids, truth) >= min_recall
    assert (got.ids >= 0).all()


def test_ivf_needs_enough_training_vectors() -> None:
    index = DenseIndex(DIM, factory="IVF64,Flat")
    assert index.min_train_size == 64 and not index.is_trained
    with pytest.raises(ValueError, match="at least 64 training vectors, got 10"):
        index.add(rand(10))
    assert len(index) == 0 and index.next_id == 0
    pq = DenseIndex(DIM, factory="IVF4,PQ4")
    assert pq.min_train_size == 256
    with pytest.raises(ValueError, match="at least 256 training vectors, got 100"):
        pq.train(rand(100))


def test_explicit_train_then_small_adds() -> None:
    index = DenseIndex(DIM, factory="IVF8,Flat")
    index.train(rand(200))
    assert index.is_trained
    assert index.add(rand(3, seed=1)).tolist() == [0, 1, 2]  # a small add is fine once trained
    with pytest.raises(ValueError, match="already trained"):
        index.train(rand(200))
    DenseIndex(DIM).train(rand(2))  # Flat: nothing to train, no error


def test_bad_factory_and_metric() -> None:
    with pytest.raises(ValueError, match="FAISS cannot build factory"):
        DenseIndex(DIM, factory="NoSuchThing99")
    with pytest.raises(ValueError, match="IDMap"):
        DenseIndex(DIM, factory="IDMap,Flat")
    with pytest.raises(ValueError, match="metric must be one of"):
        DenseIndex(DIM, metric="l2")
    with pytest.raises(ValueError, match="dim must be"):
        DenseIndex(0)


# ------------------------------------------------------------------------------ validation


def test_nan_and_inf_rejected_at_add() -> None:
    index = DenseIndex(DIM)
    x = rand(5)
    x[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        index.add(x)
    x[2, 3] = np.inf
    with pytest.raises(ValueError, match=r"first rows: \[2\]"):
        index.add(x)
    assert len(index) == 0 and index.next_id == 0


def test_dimension_mismatch_error_names_dims_and_models() -> None:
    index = DenseIndex(DIM, model_name="all-MiniLM-L6-v2")
    index.add(rand(5))
    with pytest.raises(ValueError, match=r"dimension 8.*16-d.*all-MiniLM-L6-v2") as err:
        index.search(rand(1, dim=8), 3, model_name="e5-tiny")
    assert "e5-tiny" in str(err.value)
    with pytest.raises(ValueError, match="dimension mismatch"):
        index.add(rand(2, dim=8))
    with pytest.raises(ValueError, match="built with 'all-MiniLM-L6-v2'"):
        index.search(rand(1), 3, model_name="other-384d-model")  # same dim, other model


# ------------------------------------------------------------------------------ threads


def test_threads_set_per_call_and_restored() -> None:
    before = faiss.omp_get_max_threads()
    index = DenseIndex(DIM, threads=1)
    index.add(rand(100))
    res1 = index.search(rand(4), 5)
    res2 = index.search(rand(4), 5, threads=2)
    np.testing.assert_array_equal(res1.ids, res2.ids)
    assert faiss.omp_get_max_threads() == before
    with pytest.raises(ValueError, match="threads"):
        DenseIndex(DIM, threads=0)


def test_import_does_not_change_thread_count() -> None:
    import importlib

    import indexes.dense

    before = faiss.omp_get_max_threads()
    importlib.reload(indexes.dense)
    assert faiss.omp_get_max_threads() == before


# ------------------------------------------------------------------------------ persistence


@pytest.mark.parametrize("factory", ["Flat", "HNSW32", "IVF8,PQ4x4"])
def test_save_load_same_results(tmp_path, factory: str) -> None:
    x, q = rand(600), rand(8, seed=1)
    index = DenseIndex(DIM, metric="cosine", factory=factory, model_name="m")
    index.add(x)
    index.delete([0, 5, 7])
    if index.nprobe is not None:
        index.nprobe = 4
    if index.ef_search is not None:
        index.ef_search = 40
    before = index.search(q, 10)
    index.save(tmp_path / "dense")
    meta = json.loads((tmp_path / "dense" / "meta.json").read_text())
    assert meta["type"] == "DenseIndex" and meta["format_version"] == 1
    assert (meta["dim"], meta["metric"], meta["factory"], meta["model_name"]) == (
        DIM,
        "cosine",
        factory,
        "m",
    )
    loaded = DenseIndex.load(tmp_path / "dense")
    assert len(loaded) == 597 and loaded.next_id == 600
    assert (loaded.nprobe, loaded.ef_search) == (index.nprobe, index.ef_search)
    after = loaded.search(q, 10)
    np.testing.assert_array_equal(after.ids, before.ids)
    np.testing.assert_allclose(after.scores, before.scores, atol=1e-6)
    assert loaded.add(rand(1, seed=9)).tolist() == [600]


def test_load_rejects_non_index_folder(tmp_path) -> None:
    with pytest.raises(IndexFormatError):
        DenseIndex.load(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"type": "BM25Index", "format_version": 1}))
    with pytest.raises(IndexFormatError, match="BM25Index"):
        DenseIndex.load(tmp_path)


# ------------------------------------------------------------------------------ real encodings


def test_flat_on_real_minilm_scifact_matches_numpy(scifact_encoded) -> None:
    docs = np.load(scifact_encoded / "minilm_docs.npy", mmap_mode="r")[:2000]
    queries = np.load(scifact_encoded / "minilm_queries.npy")[:30]
    index = DenseIndex(docs.shape[1], metric="cosine", model_name="all-MiniLM-L6-v2")
    index.add(docs)
    res = index.search(queries, 10)
    want_ids, want_scores = brute_force(np.asarray(docs), queries, 10)
    np.testing.assert_allclose(res.scores, want_scores, atol=1e-5)
    assert (res.ids == want_ids).mean() > 0.99  # ties within float error may swap
