"""What a SPLADE tokenizer reads intact: the share of a query's characters that are whole
tokens of its vocabulary (the query part of SPLADE's evidence), per character, cached."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["known_characters", "token_coverage"]


def _fold(text: str) -> str:
    """Text as compared for token coverage: compatibility-decomposed, combining marks (accents)
    dropped, recomposed (so Hangul jamo become syllables again), case-folded, no spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return "".join(unicodedata.normalize("NFC", kept).casefold().split())


def token_coverage(
    tokenizer: Any, texts: Sequence[str], known: dict[str, bool] | None = None
) -> np.ndarray:
    """Share of each text's non-space characters that a tokenizer knows as whole tokens.

    A character is *known* when the tokenizer, given that character alone (or after a space),
    returns one token that spells it (compared after :func:`_fold`: case and accents ignored, as
    uncased vocabularies drop them). It is unknown when it becomes the unknown token or is cut into
    pieces: an English WordPiece vocabulary splits a Hangul syllable into jamo, a byte-level BPE
    vocabulary splits a character it never saw into bytes. So an English SPLADE model scores
    ~1.0 on English text and ~0.0 on Korean, a bilingual one ~1.0 on both. Each distinct
    character is tokenised once and remembered in ``known`` (pass the same dict across calls:
    a query then costs a dictionary lookup per character). Texts without characters: 0.
    """
    texts = list(texts)
    known = {} if known is None else known
    new = sorted({c for t in texts for c in t if not c.isspace()} - known.keys())
    if new:
        known.update(zip(new, _chars_known(tokenizer, new), strict=True))
    out = np.zeros(len(texts))
    for i, text in enumerate(texts):
        flags = [known[c] for c in text if not c.isspace()]
        out[i] = sum(flags) / len(flags) if flags else 0.0
    return out


def known_characters(
    tokenizer: Any, chars: Sequence[str], known: dict[str, bool] | None = None
) -> dict[str, bool]:
    """Per distinct character: does ``tokenizer`` read it intact (see :func:`token_coverage`);
    answers are cached in ``known``."""
    known = {} if known is None else known
    new = sorted(set(chars) - known.keys())
    if new:
        known.update(zip(new, _chars_known(tokenizer, new), strict=True))
    return {c: known[c] for c in chars}


def _chars_known(tokenizer: Any, chars: list[str]) -> list[bool]:
    """Per character: does the tokenizer give it one token of its own, alone or after a space
    (byte-level BPE vocabularies often hold a word-initial form such as ``Ġ`` + character)."""
    unk = getattr(tokenizer, "unk_token_id", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    byte_level = "ByteLevel" in str(getattr(backend, "decoder", ""))
    texts = chars + [" " + c for c in chars]
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    whole = []
    for text, ids in zip(texts, encoded, strict=True):
        if unk is not None and unk in ids:
            whole.append(False)
            continue
        parts = [p for p in (_fold(_token_text(tokenizer, t, byte_level)) for t in ids) if p]
        whole.append(len(parts) == 1 and parts[0] == _fold(text))
    n = len(chars)
    return [a or b for a, b in zip(whole[:n], whole[n:], strict=True)]


def _token_text(tokenizer: Any, token_id: int, byte_level: bool) -> str:
    """A token's text: byte-level BPE tokens decoded (a piece of a character decodes to U+FFFD,
    which spells no character), other vocabularies without their ``##`` / ``▁`` marker."""
    token = tokenizer.convert_ids_to_tokens(int(token_id)) or ""
    if byte_level:
        return tokenizer.convert_tokens_to_string([token])
    for marker in ("##", "\u2581"):
        if token.startswith(marker):
            token = token[len(marker) :]
    return token
