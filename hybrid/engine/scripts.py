"""Which writing system a text is in: each character's script (from its Unicode name), a
text's dominant script, how many of its characters a tokenizer reads intact, and the share of a
query that documents in another script can match (its digits and foreign letters)."""

from __future__ import annotations

import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

_ALIASES = {"FULLWIDTH": "LATIN", "CJK": "HAN"}
_ASCII_LETTERS = string.ascii_letters.encode()
_ASCII_DIGITS = string.digits.encode()


@lru_cache(maxsize=1 << 16)
def char_script(char: str) -> str | None:
    """The script of one character: the first word of its Unicode name (``"LATIN"``,
    ``"HANGUL"``, ``"HAN"`` for CJK ideographs, ``"CYRILLIC"``, ...); None for anything that is
    not a letter (digits, punctuation, symbols, spaces), which every script shares.

    Compatibility forms count as their base script (NFKC first: full-width Latin is Latin,
    half-width Hangul is Hangul); Hangul jamo are Hangul.
    """
    if not char.isalpha():
        return None
    norm = unicodedata.normalize("NFKC", char)
    base = next((c for c in norm if c.isalpha()), char)
    name = unicodedata.name(base, "")
    if not name:
        return "UNKNOWN"
    word = name.split(" ", 1)[0]
    return _ALIASES.get(word, word)


def script_counts(text: str) -> dict[str, int]:
    """Letters per script in ``text`` (digits, punctuation and spaces are left out)."""
    return _scripts(Counter(text))


def dominant_script(text: str) -> str | None:
    """The script holding most of ``text``'s letters (ties: alphabetical); None without letters."""
    return _profile(text)[0]


def intact_characters(text: str, known: Callable[[list[str]], dict[str, bool]] | None) -> int:
    """How many of ``text``'s non-space characters a tokenizer reads intact: ``known`` maps
    distinct characters to whether the tokenizer keeps each whole (None: every character)."""
    return _intact(Counter(text), known)[1]


def _scripts(counts: Counter[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for char, n in counts.items():
        script = char_script(char)
        if script is not None:
            out[script] = out.get(script, 0) + n
    return out


def _dominant(counts: Counter[str]) -> str | None:
    return _pick(_scripts(counts))


def _pick(scripts: dict[str, int]) -> str | None:
    """The script with most letters in ``scripts`` (:func:`_scripts`; ties: alphabetical)."""
    if not scripts:
        return None
    return min(scripts, key=lambda s: (-scripts[s], s))


def _intact(
    counts: Counter[str], known: Callable[[list[str]], dict[str, bool]] | None
) -> tuple[int, int]:
    """(non-space characters, those read intact) of a text's character counts."""
    chars = {c: n for c, n in counts.items() if not c.isspace()}
    total = sum(chars.values())
    if known is None:
        return total, total
    flags = known(list(chars))
    return total, sum(n for c, n in chars.items() if flags[c])


def query_scripts(queries: Sequence[str]) -> list[str | None]:
    """Dominant script of each query (None: no letters)."""
    return [dominant_script(q) for q in queries]


def crossing_share(text: str) -> float:
    """Share of ``text``'s letters and digits that a document in another script can hold too:
    its digits and the letters outside its dominant script (a Korean question's "NASA" and
    "2024"). A lexical retriever reaches documents in another script only through them. 0 for
    a text in one script without digits, 0 without letters or digits."""
    return _profile(text)[1]


def _crossing(counts: Counter[str], scripts: dict[str, int] | None = None) -> float:
    if scripts is None:
        scripts = _scripts(counts)
    digits = sum(n for c, n in counts.items() if c.isdigit())
    total = sum(scripts.values()) + digits
    if total == 0:
        return 0.0
    dominant = min(scripts, key=lambda s: (-scripts[s], s)) if scripts else None
    return (total - scripts.get(dominant, 0)) / total  # type: ignore[arg-type]


def query_profiles(queries: Sequence[str]) -> tuple[list[str | None], np.ndarray]:
    """Each query's dominant script (:func:`dominant_script`) and :func:`crossing_share`."""
    dominant, crossing = _profiles(queries)
    return dominant, np.array(crossing)


def _profiles(queries: Sequence[str]) -> tuple[list[str | None], list[float]]:
    """:func:`query_profiles` as two lists."""
    dominant, crossing = [], []
    for q in queries:
        script, share = _profile(q)
        dominant.append(script)
        crossing.append(share)
    return dominant, crossing


def _profile(text: str) -> tuple[str | None, float]:
    """``(dominant_script(text), crossing_share(text))``, found together."""
    if text.isascii():  # every letter is Latin: count letters and digits without a look at each
        raw = text.encode("ascii")
        letters = len(raw) - len(raw.translate(None, _ASCII_LETTERS))
        digits = len(raw) - len(raw.translate(None, _ASCII_DIGITS))
        total = letters + digits
        return ("LATIN" if letters else None), (digits / total if total else 0.0)
    counts = Counter(text)
    scripts = _scripts(counts)  # once for both
    return _pick(scripts), _crossing(counts, scripts)
