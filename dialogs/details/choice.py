"""A choice from a list: by button, by number, by meaning (the words of a label or synonym, in any form and
order, negation kept: "горит красный" is not "не горит"), and, when asked, by a close spelling."""

from __future__ import annotations

from rapidfuzz import fuzz

from dialogs.details.base import DetailSpec, Found
from dialogs.terms import TermNormaliser
from dialogs.text import fold, words

MIN_SCORE = 80
# When asked, a phrase of three or more words counts if this share of its words is in the answer.
PARTIAL_SHARE = 0.75


def choice_payload(name: str, option_id: str) -> str:
    """The button payload that selects an option."""
    return f"choice:{name}:{option_id}"


class ChoiceFinder:
    """Matches a client's answer to one option of a choice detail."""

    def __init__(self, name: str, spec: DetailSpec, normaliser: TermNormaliser) -> None:
        self.name = name
        self.options = spec.options
        self._normaliser = normaliser
        self._phrases: list[tuple[str, frozenset[str], str]] = []
        for option in spec.options:
            for phrase in (option.label, *option.synonyms):
                terms = frozenset(normaliser.terms(phrase))
                if terms:
                    self._phrases.append((option.id, terms, " ".join(sorted(terms))))

    def vocabulary(self) -> set[str]:
        """The words of every option, for typos in answers to be read towards."""
        return {term.removeprefix("не_") for _, terms, _ in self._phrases for term in terms}

    def find(self, text: str, *, asked: bool, payload: str | None = None) -> Found | None:
        """The chosen option, or None when the text names none of them (or names two alike)."""
        for option in self.options:
            if payload == choice_payload(self.name, option.id):
                return Found(self.name, option.id, option.label)
        stripped = fold(text).strip(" .)")
        # ASCII digits only: "፩" or "²" pass isdigit() but int() refuses them.
        if asked and stripped.isascii() and stripped.isdigit() and 1 <= int(stripped) <= len(self.options):
            return self._found(self.options[int(stripped) - 1].id)
        ordered = self._normaliser.terms(text, correct=True)
        terms = frozenset(ordered)
        if not terms:
            return None
        chosen = self._by_meaning(terms, asked, ordered)
        if chosen is None and asked:
            chosen = self._by_spelling(" ".join(sorted(terms)))
        return self._found(chosen) if chosen else None

    def _by_meaning(self, terms: frozenset[str], asked: bool, ordered: list[str]) -> str | None:
        """The option whose phrase's words are all in the message (the longest such phrase wins; a tie
        between options is no answer). Unasked, a phrase's words must also stand together: a story that
        has "приложение" at its start and "заблокирована" at its end did not say "заблокировал в
        приложении"."""
        best: dict[str, float] = {}
        for option_id, needed, _ in self._phrases:
            covered = len(needed & terms)
            if covered == len(needed) and not asked and not _together(needed, ordered):
                continue
            if covered == len(needed):
                score = float(len(needed))
            elif asked and len(needed) >= 3 and covered / len(needed) >= PARTIAL_SHARE:
                score = covered - 0.5
            else:
                continue
            best[option_id] = max(best.get(option_id, 0.0), score)
        if not best:
            return None
        ranked = sorted(best.items(), key=lambda item: -item[1])
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            return None
        return ranked[0][0]

    def _by_spelling(self, joined: str) -> str | None:
        best_id, best_score = "", 0.0
        for option_id, _, phrase in self._phrases:
            if len(words(joined)) <= len(words(phrase)) + 2:
                score = max(fuzz.ratio(joined, phrase), fuzz.token_set_ratio(joined, phrase))
            else:
                score = fuzz.partial_ratio(phrase, joined)
            if score > best_score:
                best_id, best_score = option_id, score
        return best_id if best_score >= MIN_SCORE else None

    def _found(self, option_id: str) -> Found:
        option = next(o for o in self.options if o.id == option_id)
        return Found(self.name, option.id, option.label)


def _together(needed: frozenset[str], ordered: list[str]) -> bool:
    """Whether the words of a phrase occur within a window a little longer than the phrase."""
    window = len(needed) + 2
    return any(needed <= set(ordered[start : start + window]) for start in range(len(ordered)))
