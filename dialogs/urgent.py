"""Situations that always go to a person at once (a stolen card, money leaving the account, a death, a court
order, threats, a client in distress), from the phrases of lexicons/urgent.yaml. The situations' examples
are the editors' checks: each must be recognised, and no request example of the company may be."""

from __future__ import annotations

from dataclasses import dataclass

from dialogs.lexicon import UrgentLexicon
from dialogs.terms import TermNormaliser

# All words of a phrase within a window this much longer than the phrase.
PHRASE_SLACK = 3


@dataclass(frozen=True, slots=True)
class Urgent:
    """An urgent situation recognised in a message, the category that takes it, and why."""

    situation: str
    category: str | None
    evidence: str


class UrgentDetector:
    """Finds the urgent situations a message describes."""

    def __init__(self, lexicon: UrgentLexicon, normaliser: TermNormaliser) -> None:
        self.situations = lexicon.situations
        self.normaliser = normaliser
        self._phrases = [
            (name, frozenset(terms), len(terms), phrase)
            for name, spec in self.situations.items()
            for phrase in spec.phrases
            if (terms := normaliser.terms(phrase))
        ]
        # Phrases by each of their words: a message is checked only against phrases it shares a word with.
        self._by_word: dict[str, list[int]] = {}
        for position, (_, needed, _, _) in enumerate(self._phrases):
            for term in needed:
                self._by_word.setdefault(term, []).append(position)

    def detect(self, text: str) -> Urgent | None:
        """The urgent situation a message describes, if any: all words of one of its phrases close
        together, in any form and order ("не украли" does not count: negation is part of the word)."""
        if not self._phrases:
            return None
        terms = self.normaliser.terms(text, correct=True)
        present = set(terms)
        by_word = self._by_word
        candidates = sorted({p for term in present if term in by_word for p in by_word[term]})
        for position in candidates:
            name, needed, size, phrase = self._phrases[position]
            if not needed <= present:
                continue
            window = size + PHRASE_SLACK
            if any(needed <= set(terms[start : start + window]) for start in range(len(terms))):
                return Urgent(name, self.situations[name].category, f"phrase: {phrase}")
        return None
