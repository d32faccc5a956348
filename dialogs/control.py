"""Recognising short steering answers (yes, no, cancel, correction, "it works now") from the lexicon."""

from __future__ import annotations

import re
from functools import lru_cache

from dialogs.lexicon import ControlLexicon
from dialogs.text import fold

_PUNCT = re.compile(r"[^\w\s-]+")
MAX_STEERING_WORDS = 6
# Texts whose normal form is kept: one message is asked about up to five times (yes, no, cancel...).
RECENT_TEXTS = 256


def _norm(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", fold(text)).split())


@lru_cache(maxsize=RECENT_TEXTS)
def _shape(text: str) -> tuple[str, tuple[str, ...], int]:
    """A text's normal form, its leading one to three words when it is short enough, its word count."""
    norm = _norm(text)
    words = norm.split()
    count = len(words)
    # The leading words, longest first; up to three words they include the whole normal form.
    if count > MAX_STEERING_WORDS or count == 0:
        return norm, (), count
    if count == 1:
        return norm, (norm,), count
    if count == 2:
        return norm, (norm, words[0]), count
    return norm, (" ".join(words[:3]), " ".join(words[:2]), words[0]), count


class ControlWords:
    """Matches a message against the steering phrases."""

    def __init__(self, lexicon: ControlLexicon) -> None:
        self.yes = frozenset(_norm(p) for p in lexicon.yes)
        self.no = frozenset(_norm(p) for p in lexicon.no)
        self.cancel = frozenset(_norm(p) for p in lexicon.cancel)
        self.correction = frozenset(_norm(p) for p in lexicon.correction)
        self.resolved = frozenset(_norm(p) for p in lexicon.resolved)
        self._resolved_checks = [(p, f"не {p}") for p in self.resolved]
        # Whether any resolved phrase occurs at all, in one pass: usually none does.
        self._any_resolved = (
            re.compile("|".join(re.escape(p) for p in self.resolved)) if self.resolved else None
        )

    @staticmethod
    def _hit(text: str, phrases: frozenset[str], *, leading: bool) -> bool:
        norm, starts, _ = _shape(text)
        if norm in phrases:
            return True
        return leading and not phrases.isdisjoint(starts)

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
        norm, _, count = _shape(text)
        if count > MAX_STEERING_WORDS or self._any_resolved is None or not self._any_resolved.search(norm):
            return False
        return any(p in norm and negated not in norm for p, negated in self._resolved_checks)
