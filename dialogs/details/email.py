"""Email addresses."""

from __future__ import annotations

import re

from dialogs.details.base import Found, Invalid, Span, overlaps

EMAIL_RE = re.compile(
    r"[a-z0-9][a-z0-9._%+\-]{0,63}@[a-z0-9\-]{1,63}(?:\.[a-z0-9\-]{1,63}){0,5}\.[a-z]{2,24}", re.IGNORECASE
)
_ALMOST_EMAIL = re.compile(r"\S{1,64}@\S{0,64}|\S{1,64}\s*(?:собака|собачка)\s*\S{1,64}", re.IGNORECASE)


def find_emails(name: str, text: str, taken: list[Span]) -> list[Found]:
    """Every email address in text."""
    if "@" not in text:  # the regex would scan the whole text to learn the same
        return []
    return [
        Found(name, m.group().lower().rstrip("."), m.group(), *m.span())
        for m in EMAIL_RE.finditer(text)
        if not overlaps(m.span(), taken)
    ]


def email_problem(name: str, text: str) -> Invalid | None:
    """Why something that looks like an email address is not one."""
    match = _ALMOST_EMAIL.search(text)
    return Invalid(name, "email_invalid", match.group()) if match else None
