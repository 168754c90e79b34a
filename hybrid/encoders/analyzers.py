"""Text analyzers for BM25: text -> list of tokens, for English, Korean and mixed text.

Names for :func:`get_analyzer`:

- ``"english"``: lowercase, Unicode-aware word split (runs of letters and digits), English
  stopwords removed, Snowball English stemming (PyStemmer).
- ``"kiwi"``: Korean content morphemes from kiwipiepy (see :data:`KIWI_CONTENT_TAGS`),
  lowercased; Latin words and numbers come through as Kiwi tags them (SL, SN).
- ``"bigram"``: Hangul runs as overlapping character bigrams, everything else through
  ``"english"``. About 40x faster than Kiwi and a few points behind it on Korean retrieval.
- ``"korean"``: the better Korean analyzer by measurement (``benchmarks/bm25.py``): ``"kiwi"``
  (AutoRAG-ko nDCG@10 0.934, against 0.921 for bigrams and 0.760 for whitespace).
- ``"multilingual"``: mixed text without choosing a language: Hangul runs go to the Korean
  analyzer (Kiwi morphemes), the rest to ``"english"``.
- ``"whitespace"``: lowercase and split on whitespace (a baseline; fails on Korean particles).

Any callable ``str -> list[str]`` is accepted too; its config records that it is custom, and
rebuilding from such a config needs the callable passed again.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any, ClassVar

from hybrid.progress import track, wanted

KIWI_CONTENT_TAGS: frozenset[str] = frozenset(
    {
        "NNG",
        "NNP",
        "NR",
        "VV",
        "VA",
        "XR",
        "SL",
        "SH",
        "SN",
        "W_URL",
        "W_EMAIL",
        "W_HASHTAG",
        "W_MENTION",
        "W_SERIAL",
    }
)
"""Kiwi tags kept as content morphemes: general and proper nouns (NNG, NNP), numerals (NR),
verb and adjective stems (VV, VA; irregular forms such as ``VA-I`` count by their base tag),
roots (XR), foreign words (SL), Hanja (SH), numbers (SN) and URLs, e-mails, hashtags, mentions
and serials. Dropped: particles (J*), endings (E*), affixes (XP*, XS*), bound nouns
(NNB: 것, 수, 등, 년), pronouns (NP), determiners, adverbs, interjections, copulas,
auxiliaries and punctuation."""

ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves""".split()
)
"""English function words removed by the English analyzer (written for this project)."""


_WORD = re.compile(r"[^\W_]+")
_HANGUL = "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff"
_HANGUL_RUN = re.compile(f"[{_HANGUL}]+")
_NOT_HANGUL = re.compile(f"[^{_HANGUL}]+")


class Analyzer(ABC):
    """Text -> tokens, with a JSON-able ``config`` that :func:`analyzer_from_config` rebuilds."""

    name: ClassVar[str]

    @abstractmethod
    def __call__(self, text: str) -> list[str]:
        """Tokens of one text."""

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able description: ``{"name": ..., **options}``."""
        return {"name": self.name}

    def analyze_batch(self, texts: Sequence[str], progress: bool | None = None) -> list[list[str]]:
        """Tokens of many texts, with a progress bar on stderr: ``progress=True/False`` forces
        it, ``None`` follows :mod:`hybrid.progress` (the caller's scope, else a terminal and
        at least 200 texts)."""
        return [self(t) for t in _progress_iter(texts, len(texts), progress, self.name)]

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.config.items() if k != "name")
        return f"{type(self).__name__}({opts})"


class WhitespaceAnalyzer(Analyzer):
    """Lowercase and split on whitespace."""

    name = "whitespace"

    def __call__(self, text: str) -> list[str]:
        return text.lower().split()


@lru_cache(maxsize=1)
def _stemmer():
    try:
        import Stemmer
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "English stemming needs PyStemmer: pip install PyStemmer (or pass stem=False)"
        ) from exc
    return Stemmer.Stemmer("english")


class EnglishAnalyzer(Analyzer):
    """Lowercase, split into runs of Unicode letters/digits, drop stopwords, Snowball-stem."""

    name = "english"

    def __init__(self, stopwords: bool = True, stem: bool = True) -> None:
        self.stopwords = bool(stopwords)
        self.stem = bool(stem)
        if self.stem:
            _stemmer()  # fail now, not at the first document

    @property
    def config(self) -> dict[str, Any]:
        return {"name": self.name, "stopwords": self.stopwords, "stem": self.stem}

    def __call__(self, text: str) -> list[str]:
        tokens = _WORD.findall(text.lower())
        if self.stopwords:
            tokens = [t for t in tokens if t not in ENGLISH_STOPWORDS]
        if self.stem and tokens:
            tokens = _stemmer().stemWords(tokens)
        return tokens


_KIWI_MISSING = "Korean morpheme analysis needs kiwipiepy: pip install 'splade-hybrid[korean]'"


@lru_cache(maxsize=4)
def _kiwi(num_workers: int):
    """One shared Kiwi per thread setting (loading its model takes seconds)."""
    try:
        from kiwipiepy import Kiwi
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(_KIWI_MISSING) from exc
    with warnings.catch_warnings():  # kiwipiepy warns that 0 now means one thread: intended
        warnings.simplefilter("ignore", DeprecationWarning)
        return Kiwi(num_workers=num_workers)


class KiwiAnalyzer(Analyzer):
    """Korean content morphemes (kiwipiepy), lowercased; tags kept: :data:`KIWI_CONTENT_TAGS`.

    ``num_workers`` is Kiwi's own thread count for batches (0: single thread, -1: all cores); it
    does not change the tokens and is not part of the config.
    """

    name = "kiwi"

    def __init__(self, tags: Iterable[str] | None = None, num_workers: int = 0) -> None:
        self.tags = frozenset(KIWI_CONTENT_TAGS if tags is None else tags)
        self.num_workers = int(num_workers)
        if importlib.util.find_spec("kiwipiepy") is None:
            raise ImportError(_KIWI_MISSING)

    @property
    def _kiwi(self):
        return _kiwi(self.num_workers)  # loaded at first use

    @property
    def config(self) -> dict[str, Any]:
        return {"name": self.name, "tags": sorted(self.tags)}

    def _keep(self, tokens) -> list[str]:
        tags = self.tags
        return [t.form.lower() for t in tokens if t.tag.split("-", 1)[0] in tags]

    def __call__(self, text: str) -> list[str]:
        if not text.strip():
            return []
        return self._keep(self._kiwi.tokenize(text))

    def analyze_batch(self, texts: Sequence[str], progress: bool | None = None) -> list[list[str]]:
        if self.num_workers == 0:  # Kiwi's batch API needs worker threads
            return super().analyze_batch(texts, progress)
        results = self._kiwi.tokenize(iter(texts))  # batch API: results come back in order
        return [self._keep(r) for r in _progress_iter(results, len(texts), progress, self.name)]


def _progress_iter(items: Iterable, total: int, progress: bool | None, desc: str) -> Iterable:
    if not wanted(progress, total):
        return items
    return track(items, total, f"analyze ({desc})", True)


class HangulBigramAnalyzer(Analyzer):
    """Overlapping character bigrams of each Hangul run (a one-syllable run stays whole).

    Anything that is not Hangul is ignored: combine with another analyzer through
    :class:`MultilingualAnalyzer` (that is what the ``"bigram"`` name does).
    """

    name = "hangul_bigram"

    def __call__(self, text: str) -> list[str]:
        out: list[str] = []
        for run in _HANGUL_RUN.findall(text):
            if len(run) == 1:
                out.append(run)
            else:
                out.extend(run[i : i + 2] for i in range(len(run) - 1))
        return out


class MultilingualAnalyzer(Analyzer):
    """Hangul runs through ``korean``, everything else through ``english``, in one document.

    The Korean analyzer sees the text with every non-Hangul character replaced by a space (so
    Kiwi keeps sentence context and character offsets), the English one sees it with Hangul
    replaced by spaces. Tokens come Korean part first, then the rest (BM25 ignores order).
    """

    name = "multilingual"

    def __init__(self, korean: Analyzer | None = None, english: Analyzer | None = None) -> None:
        self.korean = KiwiAnalyzer() if korean is None else korean
        self.english = EnglishAnalyzer() if english is None else english

    @property
    def config(self) -> dict[str, Any]:
        return {"name": self.name, "korean": self.korean.config, "english": self.english.config}

    def __call__(self, text: str) -> list[str]:
        hangul = _NOT_HANGUL.sub(_spaces, text)
        ko = self.korean(hangul) if hangul.strip() else []
        return ko + self.english(_HANGUL_RUN.sub(_spaces, text))

    def analyze_batch(self, texts: Sequence[str], progress: bool | None = None) -> list[list[str]]:
        ko = self.korean.analyze_batch([_NOT_HANGUL.sub(_spaces, t) for t in texts], progress)
        en = self.english.analyze_batch([_HANGUL_RUN.sub(_spaces, t) for t in texts], progress)
        return [a + b for a, b in zip(ko, en, strict=True)]


def _spaces(match: re.Match) -> str:
    return " " * len(match.group())


class CallableAnalyzer(Analyzer):
    """Wraps a user callable ``str -> list[str]``; its config cannot rebuild it."""

    name = "custom"

    def __init__(self, fn: Callable[[str], list[str]]) -> None:
        if not callable(fn):
            raise TypeError(f"expected a callable str -> list[str], got {type(fn).__name__}")
        self.fn = fn

    @property
    def config(self) -> dict[str, Any]:
        qualname = getattr(self.fn, "__qualname__", type(self.fn).__qualname__)
        module = getattr(self.fn, "__module__", None) or type(self.fn).__module__
        return {"name": self.name, "callable": f"{module}.{qualname}", "rebuildable": False}

    def __call__(self, text: str) -> list[str]:
        return list(self.fn(text))

    def __repr__(self) -> str:
        return f"CallableAnalyzer({self.fn!r})"


def _bigram() -> Analyzer:
    return MultilingualAnalyzer(HangulBigramAnalyzer(), EnglishAnalyzer())


_NAMED: dict[str, Callable[[], Analyzer]] = {
    "english": EnglishAnalyzer,
    "whitespace": WhitespaceAnalyzer,
    "kiwi": KiwiAnalyzer,
    "bigram": _bigram,
    "korean": KiwiAnalyzer,  # best measured Korean analyzer (benchmarks/bm25.py)
    "multilingual": MultilingualAnalyzer,
}
ANALYZER_NAMES: tuple[str, ...] = tuple(sorted(_NAMED))


def get_analyzer(spec: str | Analyzer | Callable[[str], list[str]] | dict) -> Analyzer:
    """An analyzer from a name (see the module docstring), an instance, a config or a callable."""
    if isinstance(spec, Analyzer):
        return spec
    if isinstance(spec, str):
        if spec not in _NAMED:
            raise ValueError(f"unknown analyzer {spec!r}; choose one of {list(ANALYZER_NAMES)}")
        return _NAMED[spec]()
    if isinstance(spec, dict):
        return analyzer_from_config(spec)
    if callable(spec):
        return CallableAnalyzer(spec)
    raise TypeError(f"analyzer must be a name, an Analyzer or a callable, got {spec!r}")


def analyzer_from_config(
    config: dict[str, Any], custom: Callable[[str], list[str]] | None = None
) -> Analyzer:
    """Rebuild an analyzer from its ``config``; a custom one needs its callable as ``custom``."""
    name = config.get("name")
    if name == CallableAnalyzer.name:
        if custom is None:
            raise ValueError(
                f"the index was built with a custom analyzer ({config.get('callable')}); "
                "its config cannot rebuild it: pass the same callable again"
            )
        return get_analyzer(custom)
    if name == "english":
        return EnglishAnalyzer(config.get("stopwords", True), config.get("stem", True))
    if name == "whitespace":
        return WhitespaceAnalyzer()
    if name == "kiwi":
        return KiwiAnalyzer(config.get("tags"))
    if name == HangulBigramAnalyzer.name:
        return HangulBigramAnalyzer()
    if name == "multilingual":
        return MultilingualAnalyzer(
            analyzer_from_config(config["korean"]), analyzer_from_config(config["english"])
        )
    raise ValueError(
        f"unknown analyzer config name {name!r}; expected one of "
        f"{sorted({'english', 'whitespace', 'kiwi', 'hangul_bigram', 'multilingual', 'custom'})}"
    )
