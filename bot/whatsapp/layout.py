"""Fitting a reply into WhatsApp's message kinds: up to three reply buttons, a list of up to ten rows, or
options numbered in the text (the engine reads "2" as the second option)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from common.messages import Button

TEXT_MAX = 4096
# An interactive message's body; a longer text goes first as a plain message.
BODY_MAX = 1024
REPLY_BUTTONS_MAX = 3
REPLY_TITLE_MAX = 20
REPLY_ID_MAX = 256
LIST_ROWS_MAX = 10
ROW_TITLE_MAX = 24
ROW_ID_MAX = 200
ROW_DESCRIPTION_MAX = 72
# What the client sees on WhatsApp's own controls; the replies' wording comes from the guides.
LIST_BUTTON = "Выбрать"
LIST_SECTION = "Варианты"
EMPTY_BODY = "Выберите вариант:"
ELLIPSIS = "…"
# Where a long text may be cut so the question stays with the buttons: after a sentence or a line.
_BREAK = re.compile(r"(?<=[.!?…:])\s+|\n+")


class PartKind(StrEnum):
    """The WhatsApp message kind a part is sent as."""

    TEXT = "text"
    BUTTONS = "buttons"
    LIST = "list"


@dataclass(frozen=True, slots=True)
class Choice:
    """A reply button or a list row: the id sent back when chosen, the title, the full label if cut."""

    id: str
    title: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Part:
    """One WhatsApp message of a reply."""

    kind: PartKind
    text: str
    choices: tuple[Choice, ...] = ()


def shorten(title: str, limit: int) -> str:
    """`title` in at most `limit` characters: whole words and "…" when it is longer; a word is cut only
    when the first one alone does not fit, and then "…" says so too."""
    title = " ".join(title.split())
    if len(title) <= limit:
        return title
    room = limit - len(ELLIPSIS)
    words = title[: room + 1].rsplit(" ", 1)[0] if " " in title[: room + 1] else ""
    # Whole words only when they keep at least half the room: "Не…" says less than a cut word does.
    kept = words if len(words) >= room // 2 else title[:room]
    return kept.rstrip(" ,.;:-–—(") + ELLIPSIS


def split_tail(text: str, limit: int = BODY_MAX) -> tuple[str, str]:
    """(head, tail): the tail at most `limit` characters, cut after a sentence or a line if possible, so
    an interactive message keeps the question; the head is sent before it as it was written."""
    if len(text) <= limit:
        return "", text
    start = len(text) - limit
    for match in _BREAK.finditer(text, start - 1):
        if match.end() >= start and match.end() < len(text):
            return text[: match.start()].rstrip(), text[match.end() :]
    space = text.find(" ", start)
    cut = space + 1 if 0 <= space < len(text) - 1 else start
    return text[:cut].rstrip(), text[cut:]


def _reply_buttons(buttons: Sequence[Button]) -> tuple[Choice, ...] | None:
    titles = [" ".join(b.text.split()) for b in buttons]
    fits = all(0 < len(t) <= REPLY_TITLE_MAX for t in titles) and len(set(titles)) == len(titles)
    if len(buttons) > REPLY_BUTTONS_MAX or not fits or any(len(b.payload) > REPLY_ID_MAX for b in buttons):
        return None
    return tuple(Choice(b.payload, title) for b, title in zip(buttons, titles, strict=True))


def _list_rows(buttons: Sequence[Button]) -> tuple[Choice, ...] | None:
    if len(buttons) > LIST_ROWS_MAX or any(len(b.payload) > ROW_ID_MAX for b in buttons):
        return None
    rows = []
    for button in buttons:
        full = " ".join(button.text.split())
        title = shorten(full, ROW_TITLE_MAX)
        # A cut title is shown whole underneath, where a row has room for 72 characters.
        description = shorten(full, ROW_DESCRIPTION_MAX) if title != full else None
        rows.append(Choice(button.payload, title, description))
    if any(not row.title for row in rows) or len({row.title for row in rows}) < len(rows):
        return None
    return tuple(rows)


def _numbered(text: str, buttons: Sequence[Button]) -> list[Part]:
    options = "\n".join(f"{n}. {' '.join(b.text.split())}" for n, b in enumerate(buttons, 1))
    together = f"{text}\n\n{options}" if text else options
    if len(together) <= TEXT_MAX:
        return [Part(PartKind.TEXT, together)]
    parts = [Part(PartKind.TEXT, text)] if text else []
    while options:
        head, options = _first_lines(options, TEXT_MAX)
        parts.append(Part(PartKind.TEXT, head))
    return parts


def _first_lines(text: str, limit: int) -> tuple[str, str]:
    if len(text) <= limit:
        return text, ""
    cut = text.rfind("\n", 0, limit)
    cut = cut if cut > 0 else limit
    return text[:cut], text[cut:].lstrip("\n")


def layout(text: str, buttons: Sequence[Button]) -> list[Part]:
    """The WhatsApp messages that carry `text` (at most TEXT_MAX characters) with `buttons`."""
    if not buttons:
        return [Part(PartKind.TEXT, text)] if text.strip() else []
    choices = _reply_buttons(buttons)
    kind = PartKind.BUTTONS
    if choices is None:
        choices, kind = _list_rows(buttons), PartKind.LIST
    if choices is None:
        return _numbered(text, buttons)
    head, body = split_tail(text.strip())
    parts = [Part(PartKind.TEXT, head)] if head else []
    return [*parts, Part(kind, body or EMPTY_BODY, choices)]
