"""Url-encoded form values quoted a run of bytes at a time (urllib quotes byte by byte in Python, which
cProfile showed as a visible share of each send in the Telegram and VK end-to-end benches)."""

from __future__ import annotations

import re

# What urllib's quote_plus leaves as it is (a space becomes "+").
_QUOTED_RUN = re.compile(r"[^A-Za-z0-9_.\-~ ]+")


def _quote_run(match: re.Match[str]) -> str:
    return "%" + match.group().encode().hex("%").upper()


def quote_plus(text: str) -> str:
    """`urllib.parse.quote_plus(text)`, the same characters, quoting a run of bytes in one call."""
    return _QUOTED_RUN.sub(_quote_run, text).replace(" ", "+")
