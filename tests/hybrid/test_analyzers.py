"""Analyzers on real English, Korean and mixed sentences; configs; errors."""

from __future__ import annotations

import json

import pytest

from hybrid.encoders.analyzers import (
    ANALYZER_NAMES,
    KIWI_CONTENT_TAGS,
    Analyzer,
    CallableAnalyzer,
    EnglishAnalyzer,
    HangulBigramAnalyzer,
    KiwiAnalyzer,
    MultilingualAnalyzer,
    analyzer_from_config,
    get_analyzer,
)

KO = "텔레픽스는 위성 데이터를 분석하여 해양, 농업 등 다양한 분야에 솔루션을 제공합니다."
MIXED = "B2B e커머스의 장점"
EN = "The runners were running quickly to the studies' results; Über-cool CAFÉS!"

pytest.importorskip("Stemmer")


def test_english() -> None:
    an = get_analyzer("english")
    assert an(EN) == ["runner", "run", "quick", "studi", "result", "über", "cool", "café"]
    assert EnglishAnalyzer(stopwords=False, stem=False)("The Über_cool 3D") == [
        "the", "über", "cool", "3d",
    ]
    assert an("") == [] and an("the of and") == []


def test_whitespace() -> None:
    assert get_analyzer("whitespace")(MIXED) == ["b2b", "e커머스의", "장점"]


def test_hangul_bigrams() -> None:
    bi = get_analyzer("bigram")
    assert bi(MIXED) == ["커머", "머스", "스의", "장점", "b2b", "e"]
    assert HangulBigramAnalyzer()("가 나다 abc") == ["가", "나다"]
    toks = bi(KO)
    assert "위성" in toks and "데이" in toks and "농업" in toks


def test_kiwi_content_morphemes() -> None:
    pytest.importorskip("kiwipiepy")
    kiwi = get_analyzer("kiwi")
    assert kiwi(KO) == [
        "텔레픽스", "위성", "데이터", "분석", "해양", "농업", "다양", "분야", "솔루션", "제공",
    ]
    # Verb/adjective stems kept, endings and particles dropped; Kiwi splits B2B.
    assert kiwi("아름답고 걸어갔다") == ["아름답", "걸어가"]
    assert kiwi(MIXED) == ["b", "2", "b", "e", "커머스", "장점"]
    assert kiwi("  ") == []
    assert {"NNG", "VV", "VA", "XR", "SL", "SN"} <= KIWI_CONTENT_TAGS
    assert "NNB" not in KIWI_CONTENT_TAGS and "JKS" not in KIWI_CONTENT_TAGS


def test_multilingual_mixed_text() -> None:
    pytest.importorskip("kiwipiepy")
    ml = get_analyzer("multilingual")
    assert ml(MIXED) == ["커머스", "장점", "b2b", "e"]
    assert ml("Running 데이터를 분석하여 B2B studies") == [
        "데이터", "분석", "run", "b2b", "studi",
    ]
    assert ml(KO) == get_analyzer("kiwi")(KO)
    assert ml(EN) == get_analyzer("english")(EN)


def test_batch_matches_single() -> None:
    pytest.importorskip("kiwipiepy")
    texts = [KO, MIXED, "", EN]
    for name in ANALYZER_NAMES:
        an = get_analyzer(name)
        assert an.analyze_batch(texts) == [an(t) for t in texts], name


def test_configs_rebuild() -> None:
    pytest.importorskip("kiwipiepy")
    for name in ANALYZER_NAMES:
        an = get_analyzer(name)
        config = json.loads(json.dumps(an.config))
        rebuilt = analyzer_from_config(config)
        assert rebuilt.config == an.config
        assert rebuilt(MIXED) == an(MIXED)
    assert get_analyzer("korean").config == get_analyzer("kiwi").config
    custom_tags = KiwiAnalyzer(tags=["NNG"])
    assert analyzer_from_config(custom_tags.config)(KO) == custom_tags(KO)
    assert isinstance(get_analyzer({"name": "english", "stem": False}), EnglishAnalyzer)
    ml = MultilingualAnalyzer(HangulBigramAnalyzer(), EnglishAnalyzer(stem=False))
    assert analyzer_from_config(ml.config).config == ml.config


def test_callable_analyzer() -> None:
    def shout(text: str) -> list[str]:
        return text.upper().split()

    an = get_analyzer(shout)
    assert isinstance(an, CallableAnalyzer) and isinstance(an, Analyzer)
    assert an("a b") == ["A", "B"]
    config = an.config
    assert config["name"] == "custom" and config["rebuildable"] is False
    assert config["callable"].endswith("shout")
    json.dumps(config)
    with pytest.raises(ValueError, match="pass the same callable"):
        analyzer_from_config(config)
    assert analyzer_from_config(config, custom=shout)("x") == ["X"]
    assert get_analyzer(an) is an


def test_errors() -> None:
    with pytest.raises(ValueError, match="multilingual"):
        get_analyzer("klingon")
    with pytest.raises(ValueError, match="unknown analyzer config"):
        analyzer_from_config({"name": "klingon"})
    with pytest.raises(TypeError):
        get_analyzer(42)
    with pytest.raises(TypeError):
        CallableAnalyzer("not callable")
