"""Recognising short steering answers (yes, no, cancel, correction, "it works now") from the lexicon."""

from __future__ import annotations

import re
from functools import lru_cache

from common.text import AnyOf, fold
from dialogs.lexicon import ControlLexicon

_PUNCT = re.compile(r"[^\w\s-]+")
MAX_STEERING_WORDS = 6
# Texts whose answers are kept: the engine asks about one message several times (cancel, yes, no...).
RECENT_TEXTS = 256


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
        self._resolved_checks = [(p, f"не {p}") for p in self.resolved]
        # A correction phrase anywhere, as whole words: "ой, номер другой", "то есть 3030406, опечатался".
        self._correction = (
            re.compile(
                r"(?<!\w)(?:" + "|".join(map(re.escape, sorted(self.correction, key=len)[::-1])) + r")(?!\w)"
            )
            if self.correction
            else None
        )
        # Whether any resolved phrase occurs at all, in one pass: usually none does.
        self._any_resolved = AnyOf(self.resolved)
        self._answers = lru_cache(maxsize=RECENT_TEXTS)(self._answers_uncached)

    def _answers_uncached(self, text: str) -> tuple[bool, bool, bool, bool]:
        """Yes, no, cancel and resolved for one text, from one normalisation of it."""
        words = _PUNCT.sub(" ", fold(text)).split()
        norm = " ".join(words)
        count = len(words)
        # The leading one to three words, which the phrases may begin a longer answer with.
        starts: tuple[str, ...]
        if count > MAX_STEERING_WORDS or count == 0:
            starts = ()
        elif count <= 3:
            starts = tuple(" ".join(words[:n]) for n in range(count, 0, -1))
        else:
            starts = (" ".join(words[:3]), " ".join(words[:2]), words[0])
        no = norm in self.no or not self.no.isdisjoint(starts)
        yes = (norm in self.yes or not self.yes.isdisjoint(starts)) and not no
        cancel = norm in self.cancel or not self.cancel.isdisjoint(starts)
        return yes, no, cancel, self._is_resolved(norm, count)

    def _is_resolved(self, norm: str, count: int) -> bool:
        if count > MAX_STEERING_WORDS or not self._any_resolved(norm):
            return False
        return any(p in norm and negated not in norm for p, negated in self._resolved_checks)

    def is_yes(self, text: str) -> bool:
        """A yes: "да", "да, позовите", "ок давайте"; never when a no is in it."""
        return self._answers(text)[0]

    def is_no(self, text: str) -> bool:
        """A no: "нет", "не надо", "нет, не помогло"."""
        return self._answers(text)[1]

    def is_cancel(self, text: str) -> bool:
        """The client calls the current request off."""
        return self._answers(text)[2]

    def is_correction(self, text: str) -> bool:
        """The client corrects something they said ("ой, ошибся", "не тот номер")."""
        return self._correction is not None and self._correction.search(_norm(text)) is not None

    def is_resolved(self, text: str) -> bool:
        """The client says the problem went away ("всё заработало"), not that it did not."""
        return self._answers(text)[3]
