"""Bad inputs at the engine (add, delete, search, retrieve, fuse), with fast stand-in encoders:
a clear error naming the argument, or a correct result; a failed call changes nothing (#18)."""

from __future__ import annotations

import zlib
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid import HybridRetriever
from hybrid.engine.config import FusionConfig
from hybrid.engine.retrievers import BM25Retriever, DenseRetriever, SpladeRetriever
from tests._junk import ALLOWED, junk, names_argument, odd_text

pytest.importorskip("faiss")

SETTINGS = settings(max_examples=60, deadline=None)
DOCS = {
    "d0": "satellite data for ocean farming",
    "d1": "optical imagery for defense",
    "d2": "space economy and data",
    "d3": "ocean imagery from space",
    "d4": "farming data",
    97: "the document whose id is the int 97 (b'a'[0])",
}


class HashSparse:
    """SPLADE stand-in: each word hashed to one of 97 columns, weight 1."""

    dim = 97
    spec: ClassVar[dict] = {"type": "stand-in"}
    tokenizer = None

    def encode_documents(self, texts):
        rows, cols = [], []
        for i, text in enumerate(texts):
            for word in text.lower().split():
                rows.append(i)
                cols.append(zlib.crc32(word.encode()) % self.dim)
        vals = np.ones(len(rows), dtype=np.float32)
        return sp.csr_matrix((vals, (rows, cols)), shape=(len(texts), self.dim))

    encode_queries = encode_documents

    def decode(self, ids):
        return [f"t{i}" for i in ids]


class HashDense:
    """Dense stand-in: a pseudo-random unit vector per text."""

    dim = 8
    metric = "cosine"
    name = "stand-in"
    spec: ClassVar[dict] = {"type": "stand-in"}

    def encode_documents(self, texts):
        return np.stack(
            [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(self.dim) for t in texts]
        ).astype(np.float32)

    encode_queries = encode_documents


def make_engine() -> HybridRetriever:
    engine = HybridRetriever(
        {
            "splade": SpladeRetriever(HashSparse()),
            "dense": DenseRetriever(HashDense()),
            "bm25": BM25Retriever("whitespace"),
        },
        parallel=False,
    )
    engine.add(list(DOCS.values()), ids=list(DOCS))
    return engine


def state(engine: HybridRetriever) -> tuple:
    """Everything a failed call must leave as it was."""
    hits = engine.search("ocean data imagery", k=10, fusion="rrf")
    return (
        list(engine.store.ids),
        list(engine.store.live),
        len(engine),
        [len(r) for r in engine.retrievers.values()],
        [(h.id, h.score) for h in hits],
    )


@pytest.fixture
def engine() -> HybridRetriever:
    return make_engine()


# ---------------------------------------------------------------- one test per row of the issue


@pytest.mark.parametrize(
    "ids, error, named",
    [
        (b"a", TypeError, "ids"),  # used to delete the document whose id is the int 97
        (None, TypeError, "ids"),
        (1.5, TypeError, "ids"),
        (True, TypeError, "ids"),
        ([1.5], TypeError, "ids[0]"),
        (["d1", None], TypeError, "ids[1]"),
        ({"d0": 1}, TypeError, "ids"),
        (["d0", "d0"], ValueError, "'d0'"),  # used to delete d0, then raise
        (["d0", "zz"], KeyError, "'zz'"),
        ([97, "97"], KeyError, "'97'"),
    ],
)
def test_delete_checks_every_id_before_removing_any(engine, ids, error, named):
    before = state(engine)
    with pytest.raises(error) as info:
        engine.delete(ids)
    assert names_argument(info.value, named)
    assert state(engine) == before


def test_delete_of_valid_ids(engine):
    engine.delete("d0")
    engine.delete([97, "d1"])
    engine.delete(("d2",))
    engine.delete([])
    assert len(engine) == 2 and sorted(engine.store._row) == ["d3", "d4"]
    assert {h.id for h in engine.search("ocean data imagery", k=10)} <= {"d3", "d4"}


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"depth": 0}, "depth"),
        ({"rerank_top": 0}, "rerank_top"),
        ({"rerank_top": 0, "reranker": "dense"}, "rerank_top"),
        ({"k": 0}, "k must"),
        ({"k": 2.0}, "k must"),
        ({"config": FusionConfig(depth=0)}, "depth"),
        ({"config": FusionConfig(stats_depth=0, method="adaptive")}, "stats_depth"),
        ({"weights": {"dense": float("nan")}}, "dense"),
        ({"weights": {"dense": "1"}}, "dense"),
        ({"rrf_k": "x", "fusion": "rrf"}, "k"),
        ({"fusion": ["rrf"]}, "method"),
    ],
)
def test_search_errors_name_the_argument(engine, kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        engine.search("ocean", **kwargs)


def test_zero_counts_in_the_constructor_and_retrieve_name_their_argument(engine):
    with pytest.raises(ValueError, match="rerank_top"):
        HybridRetriever({"bm25": BM25Retriever("whitespace")}, rerank_top=0)
    with pytest.raises(ValueError, match="depth"):
        engine.retrieve("ocean", depth=0)
    with pytest.raises(TypeError, match="names"):
        engine.retrieve("ocean", names="bm25")
    with pytest.raises(TypeError, match="candidates"):
        engine.fuse(None)


def test_huge_k_and_depth_return_the_whole_collection(engine):
    for kwargs in ({"k": 10**9}, {"k": 3, "depth": 10**8}, {"k": 10**9, "fusion": "rrf"}):
        hits = engine.search("ocean data", **kwargs)
        assert len(hits) == min(kwargs["k"], len(DOCS))
    candidates = engine.retrieve(["ocean"], depth=10**9)
    assert {r.ids.shape for r in candidates.results.values()} == {(1, len(DOCS))}


# ---------------------------------------------------------------- generated junk

_known = st.sampled_from(["d0", "d1", "d4", 97, "zz", 98, "97"])


def valid_delete(ids) -> list | None:
    if isinstance(ids, (str, int)) and not isinstance(ids, bool):
        ids = [ids]
    elif isinstance(ids, np.ndarray) and ids.ndim == 1:
        ids = list(ids)  # numpy scalars are not ids (add() refuses them too); [] is a no-op
    elif not isinstance(ids, (list, tuple)):
        return None
    if not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
        return None
    if len(set(ids)) != len(ids) or not all(i in DOCS for i in ids):
        return None
    return list(ids)


@SETTINGS
@given(ids=st.one_of(junk, _known, st.lists(_known, max_size=3)))
def test_delete_junk(ids):
    engine = make_engine()
    before = state(engine)
    expected = valid_delete(ids)
    try:
        engine.delete(ids)
    except ALLOWED as exc:
        assert expected is None, f"valid {ids!r} refused: {exc}"
        assert names_argument(exc, "ids"), exc
        assert state(engine) == before
        return
    assert expected is not None, f"{ids!r} accepted"
    assert len(engine) == len(DOCS) - len(expected)
    assert not any(i in engine.store for i in expected)


_count = st.one_of(junk, st.integers(1, 12), st.none())


@SETTINGS
@given(
    query=st.one_of(junk, odd_text, st.just("ocean data")),
    k=st.one_of(junk, st.integers(1, 12)),
    depth=_count,
    rerank_top=_count,
    fusion=st.one_of(st.none(), st.sampled_from(["rrf", "wsum", "adaptive", "combmnz"]), junk),
    weights=st.one_of(
        st.none(),
        junk,
        st.dictionaries(st.sampled_from(["dense", "bm25"]), st.floats(0, 2), max_size=2),
    ),
    rrf_k=st.one_of(st.none(), junk, st.floats(0, 100)),
)
def test_search_junk(query, k, depth, rerank_top, fusion, weights, rrf_k):
    engine = make_engine()
    before = state(engine)
    try:
        hits = engine.search(
            query,
            k=k,
            depth=depth,
            rerank_top=rerank_top,
            fusion=fusion,
            weights=weights,
            rrf_k=rrf_k,
        )
    except ALLOWED as exc:
        names = (
            "quer",
            "k",
            "depth",
            "rerank_top",
            "fusion",
            "method",
            "weight",
            "norm",
            "retriever",
        )
        assert names_argument(exc, *names), exc
    else:
        rows = [hits] if isinstance(query, str) else hits
        for row in rows:
            assert len(row) <= min(int(k), len(DOCS))
            assert [h.rank for h in row] == list(range(1, len(row) + 1))
            assert all(np.isfinite(h.score) for h in row)
    assert state(engine) == before


@SETTINGS
@given(
    texts=st.one_of(junk, st.lists(st.one_of(odd_text, st.just("new doc")), max_size=3)),
    ids=st.one_of(st.none(), junk, st.lists(st.one_of(_known, odd_text, junk), max_size=3)),
    metadata=st.one_of(st.none(), junk, st.lists(st.one_of(st.none(), junk), max_size=3)),
)
def test_add_junk(texts, ids, metadata):
    engine = make_engine()
    before = state(engine)
    try:
        added = engine.add(texts, ids=ids, metadata=metadata)
    except ALLOWED as exc:
        assert names_argument(exc, "documents", "ids", "id ", "metadata", "encoded"), exc
        assert state(engine) == before
        return
    n = 1 if isinstance(texts, str) else len(texts)
    assert len(added) == n and len(engine) == len(DOCS) + n
    assert all(i in engine.store for i in added)
