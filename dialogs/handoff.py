"""Does the client ask for a person? Telling "позовите оператора" from "не надо оператора, сам разберусь"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from common.text import MAX_ANALYSED_CHARS, Lemmatizer, Token, fold, trie_pattern, words
from dialogs.lexicon import HandoffLexicon
from dialogs.terms import RECENT_TEXTS, sounded
from dialogs.translit import read_latin

WINDOW_BEFORE = 5
WINDOW_AFTER = 3
SHORT_MESSAGE = 2
_LATIN = re.compile(r"\b[a-z']{2,}\b")
# A relative clause after a person says who is meant: "оператор, от которого я ушёл", "для человека, который".
_RELATIVE = re.compile(r"^\s*(?:(?:от|у|с|в|к|для|про)\s+)?котор")
_COURTESY_IN_COMMAS = re.compile(r"\s*,\s*(?:пожалуйста|плиз|пжл|пж)\s*,\s*")
_CLAUSE_BREAK = re.compile(r"[,.;:!?]|\b(?:а|но|однако)\b")


def _any_phrase_pattern(phrases: list[str]) -> tuple[re.Pattern[str] | None, bool]:
    """A pattern telling whether any phrase occurs in a text squashed the way clauses are (one space
    between words), and that the text must be squashed first."""
    if not phrases:
        return None, False
    return re.compile(trie_pattern(phrases)), True


def _qualifies(token: Token) -> bool:
    """An adjective that only makes a person of the noun after it ("живой", read as a noun "живые")."""
    return token.pos == "ADJF" or token.lemma == "живой"


@dataclass(frozen=True, slots=True)
class HumanRequest:
    """Why the detector thinks the client wants a person."""

    cue: str


class HumanRequestDetector:
    """Rule-based detector over lemmas, driven by the handoff lexicon."""

    def __init__(self, lexicon: HandoffLexicon, lemmatizer: Lemmatizer) -> None:
        self.lemmatizer = lemmatizer
        self.persons = sorted({fold(w) for w in lexicon.persons})
        self.person_set = frozenset(self.persons)
        self.phrases = [fold(p) for p in lexicon.person_phrases]
        self._any_phrase, self._squash_first = _any_phrase_pattern(self.phrases)
        self.requests = frozenset(fold(w) for w in lexicon.request_words)
        self.refusals = frozenset(fold(w) for w in lexicon.refusals)
        self.other_verbs = frozenset(fold(w) for w in lexicon.other_verbs)
        self.not_after = frozenset(fold(w) for w in lexicon.not_a_person_after)
        self.not_before = frozenset(fold(w) for w in lexicon.not_a_person_before)
        self.declines = tuple(" ".join(fold(p).split()) for p in lexicon.declines)
        self._person_sounds = frozenset(sounded(word) for word in self.person_set)
        self._request_sounds = frozenset(sounded(word) for word in self.requests if len(word) >= 4)
        questions = sorted((fold(q) for q in lexicon.who_questions), key=len, reverse=True)
        self.who_questions = re.compile(
            "|".join(rf"(?<!\w){re.escape(q)}(?!\w)" for q in questions) if questions else r"(?!x)x"
        )
        # Whether a word names a person depends on the word alone (its lemma comes from the shared
        # analyser), and most clauses have none: a cached per-word answer lets them be skipped.
        self._person_word = lru_cache(maxsize=50_000)(self._person_word_uncached)
        # Several layers of one turn ask about the same text; the answer depends on the text alone.
        self.detect = lru_cache(maxsize=RECENT_TEXTS)(self._detect_uncached)

    def _person_word_uncached(self, word: str) -> bool:
        return self._is_person(self.lemmatizer.token(word))

    def _tokens(self, text: str) -> list[Token]:
        # Lemmatizer.tokens without its recent-texts cache, which clauses would only crowd.
        return [self.lemmatizer.token(w) for w in self._words(text)]

    def _words(self, text: str) -> list[str]:
        """Words of a clause; an unknown hyphenated word is read as its parts ("оператором-человеком")."""
        found: list[str] = []
        for word in words(text[:MAX_ANALYSED_CHARS]):
            if "-" in word and not self.lemmatizer.is_known(word):
                found.extend(part for part in word.split("-") if part)
            else:
                found.append(word)
        return found

    def _is_person(self, token: Token) -> bool:
        if token.lemma in self.person_set or token.word in self.person_set:
            return True
        # Written by ear: "чилавека", "аператором".
        if sounded(token.word) in self._person_sounds or sounded(token.lemma) in self._person_sounds:
            return True
        if len(token.word) < 6 or not token.word.isalpha():
            return False
        return process.extractOne(token.word, self.persons, scorer=fuzz.ratio, score_cutoff=82) is not None

    def _is_request(self, token: Token) -> bool:
        return (
            token.lemma in self.requests
            or token.word in self.requests
            or "impr" in token.tags
            or sounded(token.word) in self._request_sounds  # "пазавите", "хачу"
        )

    def _detect_uncached(self, text: str) -> HumanRequest | None:
        """A HumanRequest when text asks for a person, None when it does not (or only mentions one)."""
        folded = fold(text)
        if _LATIN.search(folded):
            folded = self._as_cyrillic(folded)
        # "Передайте, пожалуйста, мой вопрос специалисту": a courtesy in commas does not end the clause.
        folded = _COURTESY_IN_COMMAS.sub(" пожалуйста ", folded)
        squashed_text = " ".join(folded.split())
        if any(phrase in squashed_text for phrase in self.declines):
            return None  # "переключат на оператора, если захочу? пока не надо"
        # A phrase found in a whitespace-squashed clause is also in the squashed whole text.
        any_phrase = self._any_phrase
        phrases = (
            any_phrase is not None
            and any_phrase.search(" ".join(folded.split()) if self._squash_first else folded) is not None
        )
        # Without a hyphen or apostrophe inside words, splitting into clauses only drops whole words,
        # so a text none of whose words is a person word (the usual message) asks for no one.
        if (
            not phrases
            and "-" not in folded
            and "'" not in folded
            and not any(map(self._person_word, words(folded)))
        ):
            return None
        clauses = _CLAUSE_BREAK.split(folded)
        for index, clause in enumerate(clauses):
            following = clauses[index + 1] if index + 1 < len(clauses) else ""
            found = self._detect_clause(
                clause, phrases=phrases, relative_next=_RELATIVE.match(following) is not None
            )
            if found:
                return found
        return None

    def _detect_clause(
        self, clause: str, *, phrases: bool = True, relative_next: bool = False
    ) -> HumanRequest | None:
        squashed = " ".join(clause.split())
        clause_words = self._words(squashed)
        if self.who_questions.search(squashed):
            return None  # "ты живой человек или бот?" asks who answers, it asks for no one
        if phrases:
            for phrase in self.phrases:
                position = squashed.find(phrase)
                if position < 0 or self._refused(self._tokens(squashed[:position])):
                    continue
                after = self._tokens(squashed[position + len(phrase) :])[:WINDOW_AFTER]
                if self._refused_after(after) or any(t.lemma == "не" for t in after[:1]):
                    continue  # "живой человек не нужен"
                last = self._tokens(phrase)[-1:]
                if (
                    last
                    and _qualifies(last[0])
                    and after
                    and after[0].pos == "NOUN"
                    and not self._is_person(after[0])
                ):
                    continue  # "есть живые растения?": a thing, not a person
                # "мастер живой человек придёт?": a person mentioned with another verb is no request; a
                # phrase with no person in it ("вы меня не слышите") is what it says, whatever else is said.
                names_a_person = any(map(self._person_word, words(phrase)))
                if names_a_person and any(t.lemma in self.other_verbs for t in self._tokens(squashed)):
                    continue
                return HumanRequest(f"phrase: {phrase}")
        if not any(map(self._person_word, clause_words)):
            return None
        tokens = [self.lemmatizer.token(w) for w in clause_words]
        for index, token in enumerate(tokens):
            if not self._person_word(token.word):
                continue
            following = tokens[index + 1 : index + 2]
            if following and following[0].lemma in self.not_after:
                continue
            if (
                following
                and _qualifies(token)
                and following[0].pos == "NOUN"
                and not self._is_person(following[0])
            ):
                continue  # "живые растения", "человеческий размер": a thing, not a person
            preceding = tokens[index - 1 : index] if index else []
            if preceding and (preceding[0].lemma in self.not_before or preceding[0].word in self.not_before):
                continue
            before = tokens[max(0, index - WINDOW_BEFORE) : index]
            after = tokens[index + 1 : index + 1 + WINDOW_AFTER]
            around = before + after
            if (
                self._refused(before)
                or self._refused_after(after)
                # "передайте меня сотруднику" asks; "сотрудник передал" tells.
                or any(t.lemma in self.other_verbs and "impr" not in t.tags for t in around)
            ):
                continue
            if any(self._is_request(t) for t in around):
                return HumanRequest(f"request for {token.word}")
            # "Оператор, от которого я ушёл": someone spoken about, not called.
            if len(tokens) <= SHORT_MESSAGE and not (relative_next and index == len(tokens) - 1):
                return HumanRequest(f"short call for {token.word}")
        return None

    def _as_cyrillic(self, folded: str) -> str:
        """Russian typed in Latin letters ("pozovite operatora") read back, word by word."""
        return _LATIN.sub(lambda m: read_latin(m.group(), self.lemmatizer.is_known) or m.group(), folded)

    def refuses(self, text: str) -> bool:
        """Whether text declines a person ("не надо оператора", "оператора не зовите", "сам разберусь")."""
        folded = " ".join(fold(text).split())
        if any(phrase in folded for phrase in self.declines):
            return True
        for clause in _CLAUSE_BREAK.split(folded):
            tokens = self._tokens(clause)
            for index, token in enumerate(tokens):
                if not self._is_person(token):
                    continue
                before = tokens[max(0, index - WINDOW_BEFORE) : index]
                after = tokens[index + 1 : index + 1 + WINDOW_AFTER]
                if self._refused(before) or self._refused_after(after):
                    return True
        return False

    def _refused_after(self, after: list[Token]) -> bool:
        """'оператора не зовите', 'специалиста вызывать не нужно': a negated request after the person."""
        lemmas = [t.lemma for t in after]
        return "не" in lemmas and any(self._is_request(t) or t.lemma == "вызывать" for t in after)

    def _refused(self, before: list[Token]) -> bool:
        return any(t.lemma in self.refusals or t.word in self.refusals for t in before)
