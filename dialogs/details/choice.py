"""A choice from a list: by button, by number, by meaning (the words of a label or synonym, in any form and
order, negation kept: "горит красный" is not "не горит"), and, when asked, by a close spelling."""

from __future__ import annotations

from rapidfuzz import fuzz

from common.text import fold, words
from dialogs.details.base import DetailSpec, Found
from dialogs.terms import NEGATED, TermNormaliser

MIN_SCORE = 80
# When asked, a phrase of three or more words counts if this share of its words is in the answer.
PARTIAL_SHARE = 0.75


def choice_payload(name: str, option_id: str) -> str:
    """The button payload that selects an option."""
    return f"choice:{name}:{option_id}"


SPELLING_MAX_TERMS = 3


class ChoiceFinder:
    """Matches a client's answer to one option of a choice detail."""

    def __init__(self, name: str, spec: DetailSpec, normaliser: TermNormaliser) -> None:
        self.name = name
        self.options = spec.options
        self._normaliser = normaliser
        self._phrases: list[tuple[str, frozenset[str], str]] = []
        self._known_terms: frozenset[str] | None = None
        for option in spec.options:
            for phrase in (option.label, *option.synonyms):
                terms = frozenset(normaliser.terms(phrase))
                if terms:
                    self._phrases.append((option.id, terms, " ".join(sorted(terms))))

    @property
    def _phrase_terms(self) -> frozenset[str]:
        if self._known_terms is None:
            self._known_terms = frozenset(term for _, terms, _ in self._phrases for term in terms)
        return self._known_terms

    def vocabulary(self) -> set[str]:
        """The words of every option, as lemmas and as written, for typos in answers to be read towards."""
        lemmas = {term.removeprefix("не_") for _, terms, _ in self._phrases for term in terms}
        written = {
            word
            for option in self.options
            for phrase in (option.label, *option.synonyms)
            for word in self._normaliser.lemmatizer.words(phrase)
            if word.isalpha()
        }
        return lemmas | written

    def find(
        self, text: str, *, asked: bool, payload: str | None = None, first_named: bool = False
    ) -> Found | None:
        """The chosen option, or None when the text names none of them (or names two alike, unless
        `first_named`: "не так, это банк заблокировал, я сама ничего не делала" names the bank first)."""
        for option in self.options:
            if payload == choice_payload(self.name, option.id):
                return Found(self.name, option.id, option.label)
        stripped = fold(text).strip(" .)")
        # ASCII digits only: "፩" or "²" pass isdigit() but int() refuses them; and a few of them, since
        # int() refuses over 4,300 and no question has that many options.
        number = asked and len(stripped) <= 9 and stripped.isascii() and stripped.isdigit()
        if number and 1 <= int(stripped) <= len(self.options):
            return self._found(self.options[int(stripped) - 1].id)
        ordered = self._denied_dropped(self._normaliser.terms(text, correct=True))
        terms = frozenset(ordered)
        if not terms:
            return None
        chosen = self._by_meaning(terms, asked, ordered, first_named)
        if chosen is None and asked:
            chosen = self._by_number(terms)
        if chosen is None and asked and len(terms) <= SPELLING_MAX_TERMS and "?" not in text:
            # Only a short answer is read by its spelling ("оптма"); a sentence is about something else.
            chosen = self._by_spelling(" ".join(sorted(terms)))
        return self._found(chosen) if chosen else None

    def _by_meaning(
        self, terms: frozenset[str], asked: bool, ordered: list[str], first_named: bool = False
    ) -> str | None:
        """The option whose phrase's words are all in the message (the longest such phrase wins; a tie
        between options is no answer, unless `first_named`: then the one named first). Unasked, a phrase's
        words must also stand together: a story that has "приложение" at its start and "заблокирована" at
        its end did not say "заблокировал в приложении"."""
        best: dict[str, tuple[float, int]] = {}
        for option_id, needed, _ in self._phrases:
            covered = len(needed & terms)
            position = _together(needed, ordered) if covered == len(needed) else None
            if covered == len(needed) and not asked and position is None:
                continue
            if covered == len(needed):
                score = float(len(needed))
            elif asked and len(needed) >= 3 and covered / len(needed) >= PARTIAL_SHARE:
                score = covered - 0.5
            else:
                continue
            place = position if position is not None else len(ordered)
            earlier = best.get(option_id)
            if earlier is None or (score, -place) > (earlier[0], -earlier[1]):
                best[option_id] = (score, place)
        if not best:
            return None
        ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[1][1]))
        if len(ranked) > 1 and ranked[0][1][0] == ranked[1][1][0] and not first_named:
            return None
        return ranked[0][0]

    def _denied_dropped(self, ordered: list[str]) -> list[str]:
        """ "Вайфаем не пользуюсь": an option's word followed by a negated word that no option has is
        denied, not chosen ("значок интернета не горит" keeps its words: "не горит" is an option's)."""
        known = self._phrase_terms
        return [
            term
            for i, term in enumerate(ordered)
            if not (
                i + 1 < len(ordered)
                and ordered[i + 1].startswith(NEGATED)
                # a denied action ("не пользуюсь"), not a manner ("ввела не правильно")
                and ordered[i + 1].endswith(("ть", "ться", "ти"))
                and ordered[i + 1] not in known
                and term in known
            )
        ]

    def _by_number(self, terms: frozenset[str]) -> str | None:
        """ "Давайте за 650": a number that only one option's label holds (a price, a speed)."""
        named = {term for term in terms if term.isdigit()}
        if not named:
            return None
        holders = {option.id for option in self.options for word in words(option.label) if word in named}
        return holders.pop() if len(holders) == 1 else None

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


def _together(needed: frozenset[str], ordered: list[str]) -> int | None:
    """Where the words of a phrase first occur within a window a little longer than the phrase (None:
    they never stand together)."""
    window = len(needed) + 2
    for start in range(len(ordered)):
        if needed <= set(ordered[start : start + window]):
            return start
    return None
