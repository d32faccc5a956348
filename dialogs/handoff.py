"""Does the client ask for a person? Telling "позовите оператора" from "не надо оператора, сам разберусь"."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from dialogs.lexicon import HandoffLexicon
from dialogs.text import Lemmatizer, Token, fold

WINDOW_BEFORE = 5
WINDOW_AFTER = 3
SHORT_MESSAGE = 2
_CLAUSE_BREAK = re.compile(r"[,.;!?]|\b(?:а|но|однако)\b")


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
        self.requests = frozenset(fold(w) for w in lexicon.request_words)
        self.refusals = frozenset(fold(w) for w in lexicon.refusals)
        self.other_verbs = frozenset(fold(w) for w in lexicon.other_verbs)
        self.not_after = frozenset(fold(w) for w in lexicon.not_a_person_after)

    def _is_person(self, token: Token) -> bool:
        if token.lemma in self.person_set or token.word in self.person_set:
            return True
        if len(token.word) < 6 or not token.word.isalpha():
            return False
        return process.extractOne(token.word, self.persons, scorer=fuzz.ratio, score_cutoff=82) is not None

    def _is_request(self, token: Token) -> bool:
        return token.lemma in self.requests or token.word in self.requests or "impr" in token.tags

    def detect(self, text: str) -> HumanRequest | None:
        """A HumanRequest when text asks for a person, None when it does not (or only mentions one)."""
        for clause in _CLAUSE_BREAK.split(fold(text)):
            found = self._detect_clause(clause)
            if found:
                return found
        return None

    def _detect_clause(self, clause: str) -> HumanRequest | None:
        squashed = " ".join(clause.split())
        tokens = self.lemmatizer.tokens(squashed)
        for phrase in self.phrases:
            position = squashed.find(phrase)
            if position >= 0 and not self._refused(self.lemmatizer.tokens(squashed[:position])):
                return HumanRequest(f"phrase: {phrase}")
        for index, token in enumerate(tokens):
            if not self._is_person(token):
                continue
            following = tokens[index + 1 : index + 2]
            if following and following[0].lemma in self.not_after:
                continue
            before = tokens[max(0, index - WINDOW_BEFORE) : index]
            after = tokens[index + 1 : index + 1 + WINDOW_AFTER]
            around = before + after
            if (
                self._refused(before)
                or self._refused_after(after)
                or any(t.lemma in self.other_verbs for t in around)
            ):
                continue
            if any(self._is_request(t) for t in around):
                return HumanRequest(f"request for {token.word}")
            if len(tokens) <= SHORT_MESSAGE:
                return HumanRequest(f"short call for {token.word}")
        return None

    def _refused_after(self, after: list[Token]) -> bool:
        """'оператора не зовите', 'специалиста вызывать не нужно': a negated request after the person."""
        lemmas = [t.lemma for t in after]
        return "не" in lemmas and any(self._is_request(t) or t.lemma == "вызывать" for t in after)

    def _refused(self, before: list[Token]) -> bool:
        return any(t.lemma in self.refusals or t.word in self.refusals for t in before)
