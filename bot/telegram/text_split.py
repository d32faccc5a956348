"""Splitting long replies under Telegram's 4096-character limit, at sentence boundaries where possible."""

from __future__ import annotations

import re

TELEGRAM_TEXT_LIMIT = 4096
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")


def _hard_split(piece: str, limit: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for word in piece.split(" "):
        while len(word) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(word[:limit])
            word = word[limit:]
        candidate = f"{current} {word}" if current else word
        if len(candidate) > limit:
            chunks.append(current)
            current = word
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks


def split_text(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Chunks of at most `limit` characters, cut between sentences, then between words."""
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for sentence in (s for s in _SENTENCE_END.split(text) if s.strip()):
        pieces = [sentence] if len(sentence) <= limit else _hard_split(sentence, limit)
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
