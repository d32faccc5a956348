"""Recognising short steering answers (yes, no, cancel, correction, "it works now") from the lexicon."""

from __future__ import annotations

import re

from dialogs.lexicon import ControlLexicon
from dialogs.text import fold

_PUNCT = re.compile(r"[^\w\s-]+")
MAX_STEERING_WORDS = 6


def _norm(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", fold(text)).split())


class ControlWords:
    """Matches a message against the steering phrases."""

    def __init__(self, lexicon: ControlLexicon) -> None:
        self.yes = frozenset(_norm(p) for p in lexicon.yes)
        self.no = frozenset(_norm(p) for p in lexicon.no)
        self.cancel = frozenset(_norm(p) for p in lexicon.cancel)
        self.correction = frozenset(_norm(p) for p in lexicon.correction)
        self.resolved = frozenset(_norm(p) for p in lexicon.resolved)

    @staticmethod
    def _hit(text: str, phrases: frozenset[str], *, leading: bool) -> bool:
        norm = _norm(text)
        if norm in phrases:
            return True
        words = norm.split()
        if not leading or not words or len(words) > MAX_STEERING_WORDS:
            return False
        return any(" ".join(words[:n]) in phrases for n in range(min(3, len(words)), 0, -1))

    def is_yes(self, text: str) -> bool:
        """A yes: "да", "да, позовите", "ок давайте"; never when a no is in it."""
        return self._hit(text, self.yes, leading=True) and not self.is_no(text)

    def is_no(self, text: str) -> bool:
        """A no: "нет", "не надо", "нет, не помогло"."""
        return self._hit(text, self.no, leading=True)

    def is_cancel(self, text: str) -> bool:
        """The client calls the current request off."""
        return self._hit(text, self.cancel, leading=True)

    def is_resolved(self, text: str) -> bool:
        """The client says the problem went away ("всё заработало"), not that it did not."""
        norm = _norm(text)
        if len(norm.split()) > MAX_STEERING_WORDS:
            return False
        return any(p in norm and f"не {p}" not in norm for p in self.resolved)
