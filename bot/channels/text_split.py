"""Splitting long replies under Telegram's 4096-character limit, at sentence boundaries where possible."""

from __future__ import annotations

import re
from collections.abc import Iterable

TELEGRAM_TEXT_LIMIT = 4096
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")


def _pack(pieces: Iterable[str], limit: int) -> list[str]:
    """Join pieces with spaces into as few chunks of at most `limit` characters as their order allows."""
    chunks: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current} {piece}" if current else piece
        if len(candidate) > limit:
            chunks.append(current)
            current = piece
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


def _words(sentence: str, limit: int) -> list[str]:
    """A sentence's words, any word longer than `limit` cut into slices."""
    return [word[i : i + limit] for word in sentence.split(" ") for i in range(0, max(len(word), 1), limit)]


def split_text(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Chunks of at most `limit` characters, cut between sentences, then between words."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    for sentence in (s for s in _SENTENCE_END.split(text) if s.strip()):
        pieces += [sentence] if len(sentence) <= limit else _pack(_words(sentence, limit), limit)
    return _pack(pieces, limit)
