"""Email addresses."""

from __future__ import annotations

import re

from dialogs.details.base import Found, Invalid, Span, overlaps

EMAIL_RE = re.compile(
    r"[a-z0-9][a-z0-9._%+\-]{0,63}@[a-z0-9\-]{1,63}(?:\.[a-z0-9\-]{1,63}){0,5}\.[a-z]{2,24}", re.IGNORECASE
)
_ALMOST_EMAIL = re.compile(r"\S{1,64}@\S{0,64}|\S{1,64}\s*(?:собака|собачка)\s*\S{1,64}", re.IGNORECASE)


# "ivan собака mail.ru", "ivan(at)mail.ru", "ivan @ mail . ru": how an @ and dots are said in words.
_SPOKEN_AT = re.compile(
    r"\s*(?:[(\[<]\s*(?:собака|собачка|at)\s*[)\]>]|\bсобака\b|\bсобачка\b|\s@\s|@\s+|\s+@)\s*",
    re.IGNORECASE,
)
_SPOKEN_DOT = re.compile(
    r"\s*(?:[(\[<]\s*(?:точка|dot)\s*[)\]>]|\bточка\b)\s*|(?<=\w)\s+\.\s*(?=[a-z])", re.IGNORECASE
)
_SPOKEN = re.compile(r"собак|собачк|\(at\)|\[at\]|\s@|@\s", re.IGNORECASE)


def find_emails(name: str, text: str, taken: list[Span]) -> list[Found]:
    """Every email address in text, also when the @ is said in words ("ivan собака mail.ru")."""
    if "@" not in text and _SPOKEN.search(text) is None:  # the regex would scan the text to learn the same
        return []
    found = [
        Found(name, m.group().lower().rstrip("."), m.group(), *m.span())
        for m in EMAIL_RE.finditer(text)
        if not overlaps(m.span(), taken)
    ]
    if found or _SPOKEN.search(text) is None:
        return found
    written = _SPOKEN_DOT.sub(".", _SPOKEN_AT.sub("@", text))
    # The spelled-out address is not where it was in the text: no span is taken for it.
    return [Found(name, m.group().lower().rstrip("."), m.group()) for m in EMAIL_RE.finditer(written)]


def email_problem(name: str, text: str) -> Invalid | None:
    """Why something that looks like an email address is not one."""
    match = _ALMOST_EMAIL.search(text)
    return Invalid(name, "email_invalid", match.group()) if match else None
