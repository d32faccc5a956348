"""A choice from a list: by button, by number, by label or synonym, tolerant of typos and word forms."""

from __future__ import annotations

from rapidfuzz import fuzz

from dialogs.details.base import DetailSpec, Found
from dialogs.text import Lemmatizer, fold, words

MIN_SCORE = 80


def choice_payload(name: str, option_id: str) -> str:
    """The button payload that selects an option."""
    return f"choice:{name}:{option_id}"


class ChoiceFinder:
    """Matches a client's answer to one option of a choice detail."""

    def __init__(self, name: str, spec: DetailSpec, lemmatizer: Lemmatizer) -> None:
        self.name = name
        self.options = spec.options
        self._lemmatizer = lemmatizer
        self._phrases: list[tuple[str, str]] = [
            (option.id, self._norm(phrase))
            for option in spec.options
            for phrase in (option.label, *option.synonyms)
        ]

    def _norm(self, text: str) -> str:
        return " ".join(self._lemmatizer.lemmas(text))

    def find(self, text: str, *, asked: bool, payload: str | None = None) -> Found | None:
        """The chosen option, or None when the text names none of them."""
        for option in self.options:
            if payload == choice_payload(self.name, option.id):
                return Found(self.name, option.id, option.label)
        stripped = fold(text).strip(" .)")
        # ASCII digits only: "፩" or "²" pass isdigit() but int() refuses them.
        if asked and stripped.isascii() and stripped.isdigit() and 1 <= int(stripped) <= len(self.options):
            option = self.options[int(stripped) - 1]
            return Found(self.name, option.id, option.label)
        norm = self._norm(text)
        if not norm:
            return None
        best_id, best_score = "", 0.0
        for option_id, phrase in self._phrases:
            score = self._score(norm, phrase, asked)
            if score > best_score:
                best_id, best_score = option_id, score
        if best_score < MIN_SCORE:
            return None
        option = next(o for o in self.options if o.id == best_id)
        return Found(self.name, option.id, option.label)

    @staticmethod
    def _score(norm: str, phrase: str, asked: bool) -> float:
        if not asked:
            # Unprompted, every word of a multi-word option phrase must be in the message.
            phrase_words = phrase.split()
            return 100.0 if len(phrase_words) > 1 and set(phrase_words) <= set(norm.split()) else 0.0
        if len(words(norm)) <= len(words(phrase)) + 2:
            return max(fuzz.ratio(norm, phrase), fuzz.token_set_ratio(norm, phrase))
        return fuzz.partial_ratio(phrase, norm)
