"""Which of two values a client means when they give both: the one they say replaces the other."""

from __future__ import annotations

import re

from dialogs.details.base import Found

# Words that say the value after them replaces the one before: "старая была ..., новая ...".
NEWER = re.compile(
    r"(?i)\b(?:нов(?:ая|ый|ое)|теперь|правильн\w*|актуальн\w*|вернее|точнее|сменил\w*|перевед\w*|замен\w*"
    r"|а\s+надо|а\s+нужно|должен\s+быть)\b"
)


_NOT_BEFORE = re.compile(r"(?i)\bне\s*$")
_BUT_NOT = re.compile(r"(?i)\s*,?\s*а\s+не\b")
# A value said to be the old one: "старый", "прежний", "был".
OLD = re.compile(r"(?i)\b(?:стар\w*|прежн\w*|был[аио]?)\b")
_BUT_BETWEEN = re.compile(r"(?i)\s*,?\s*а\b")


def newest(found: list[Found], text: str) -> list[Found]:
    """Values in the order to take them: when the client says a later one replaces an earlier one
    ("почта старая была a@b.ru, новая c@d.ru", "не X, а Y"), the later one first; "X, а не Y" and
    "новый X (старый Y)" keep the first."""
    if len(found) < 2:
        return found
    between = text[found[0].end : found[-1].start]
    before = text[max(0, found[0].start - 40) : found[0].start]
    later_first = [found[-1], *found[:-1]]
    if _NOT_BEFORE.search(before) and _BUT_BETWEEN.match(between):
        return later_first
    if _BUT_NOT.match(between) or OLD.search(between):
        return found
    if OLD.search(before) or NEWER.search(between):
        return later_first
    return found
