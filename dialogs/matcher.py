"""Recognising which scenario a message asks for: an inverted index over lemmas, then fuzzy scoring.

Cost grows with the words of the message and the candidates the index returns, not with the number of
example phrases: only examples sharing a rare-enough lemma are ever compared.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process

from dialogs.lexicon import MatchingLexicon
from dialogs.scenarios import Scenario
from dialogs.text import Lemmatizer

CANDIDATES = 12
# Small talk only wins short messages: in a long one the request matters, not the "привет".
SMALLTALK_MAX_TERMS = 4
MATCH_THRESHOLD = 0.68
TYPO_CUTOFF = 82
# What one word of a message is to the matcher.
_SKIP, _NEGATION, _TERM = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Match:
    """A recognised scenario, the score and the example or keyword that won."""

    scenario_id: str
    score: float
    evidence: str


class TermNormaliser:
    """Turns text into matching terms: lemmas, slang mapped, stopwords dropped, 'не' glued to its word."""

    def __init__(self, lexicon: MatchingLexicon, lemmatizer: Lemmatizer) -> None:
        self.lemmatizer = lemmatizer
        self.stopwords = frozenset(lexicon.stopwords)
        self.synonyms = {k.lower(): v.lower() for k, v in lexicon.synonyms.items()}
        self.negations = frozenset(lexicon.negations)
        self.vocabulary: list[str] = []
        self._known: frozenset[str] = frozenset()
        self.correct = lru_cache(maxsize=50_000)(self._correct_uncached)
        self._classify = lru_cache(maxsize=50_000)(self._classify_uncached)

    def set_vocabulary(self, vocabulary: set[str]) -> None:
        """Terms that typos are corrected towards."""
        self.vocabulary = sorted(vocabulary)
        self._known = frozenset(vocabulary)
        self.correct.cache_clear()
        self._classify.cache_clear()

    def _correct_uncached(self, term: str) -> str:
        if term in self._known or len(term) < 4 or not term.isalpha():
            return term
        best = process.extractOne(term, self.vocabulary, scorer=fuzz.ratio, score_cutoff=TYPO_CUTOFF)
        return str(best[0]) if best else term

    def _classify_uncached(self, word: str) -> tuple[int, str, str]:
        """What a word is to the matcher, its term and its typo-corrected term."""
        # A word's token is the same wherever it occurs: tokens come from this one lemmatizer.
        token = self.lemmatizer.token(word)
        lemma = self.synonyms.get(token.word) or self.synonyms.get(token.lemma) or token.lemma
        if lemma in self.negations:
            return _NEGATION, lemma, lemma
        if lemma in self.stopwords or token.pos == "NUMB":
            return _SKIP, lemma, lemma
        return _TERM, lemma, self.correct(lemma)

    def terms(self, text: str, *, correct: bool = False) -> list[str]:
        """Matching terms of a text, in order."""
        result: list[str] = []
        negate = False
        classify = self._classify
        for token in self.lemmatizer.tokens(text):
            # Cached by word: the same words recur, the lexicon lookups and corrections need not.
            kind, lemma, corrected = classify(token.word)
            if kind == _NEGATION:
                negate = True
                continue
            if kind == _SKIP:
                continue
            if correct:
                lemma = corrected
            result.append(f"не_{lemma}" if negate else lemma)
            negate = False
        return result


class IntentMatcher:
    """Finds the scenario a message belongs to."""

    def __init__(self, scenarios: Sequence[Scenario], normaliser: TermNormaliser) -> None:
        self.normaliser = normaliser
        self._examples: list[tuple[str, str, frozenset[str], str]] = []  # scenario, text, terms, joined
        self._keywords: list[tuple[str, str, frozenset[str]]] = []
        self._smalltalk = frozenset(s.id for s in scenarios if s.smalltalk)
        postings: dict[str, list[int]] = defaultdict(list)
        vocabulary: set[str] = set()
        for scenario in scenarios:
            for example in scenario.match.examples:
                terms = normaliser.terms(example)
                if not terms:
                    continue
                index = len(self._examples)
                self._examples.append((scenario.id, example, frozenset(terms), " ".join(sorted(set(terms)))))
                for term in set(terms):
                    postings[term].append(index)
                vocabulary.update(t.removeprefix("не_") for t in terms)
            for keyword in scenario.match.keywords:
                terms = normaliser.terms(keyword)
                if terms:
                    self._keywords.append((scenario.id, keyword, frozenset(terms)))
                    vocabulary.update(t.removeprefix("не_") for t in terms)
        self._postings = dict(postings)
        total = max(1, len(self._examples))
        self._idf = {term: math.log(1 + total / len(ids)) for term, ids in self._postings.items()}
        self._unknown_weight = math.log(1 + total)
        # An example's weight is summed once here, over the same frozenset (so in the same order and
        # to the same float) as a per-call sum would be.
        self._example_weights = [sum(self._weight(t) for t in terms) for _, _, terms, _ in self._examples]
        # Keywords looked up by each of their terms; checked in list order, as ties go to the first.
        keyword_postings: dict[str, list[int]] = defaultdict(list)
        for index, (_, _, needed) in enumerate(self._keywords):
            for term in needed:
                keyword_postings[term].append(index)
        self._keyword_postings = dict(keyword_postings)
        normaliser.set_vocabulary(vocabulary)

    def _weight(self, term: str) -> float:
        return self._idf.get(term, self._unknown_weight)

    def match(self, text: str) -> Match | None:
        """The best scenario for text, or None when nothing scores above the threshold."""
        terms = self.normaliser.terms(text, correct=True)
        if not terms:
            return None
        term_set = frozenset(terms)
        long_message = len(term_set) > SMALLTALK_MAX_TERMS
        best: Match | None = None
        keyword_postings = self._keyword_postings
        hits = [keyword_postings[t] for t in term_set if t in keyword_postings]
        possible = hits[0] if len(hits) == 1 else sorted({i for ids in hits for i in ids})
        for index in possible:
            scenario_id, keyword, needed = self._keywords[index]
            if long_message and scenario_id in self._smalltalk:
                continue
            if needed <= term_set:
                score = 0.9 + 0.01 * len(needed)
                if best is None or score > best.score:
                    best = Match(scenario_id, score, f"keyword: {keyword}")
        candidates = self._candidates(term_set)
        if not candidates:
            return best
        # What depends on the message alone is computed once, not once per candidate.
        idf, unknown = self._idf.get, self._unknown_weight
        weight_of = {t: idf(t, unknown) for t in term_set}.__getitem__
        terms_weight = sum(map(weight_of, term_set))
        joined_terms = " ".join(sorted(term_set))
        examples, example_weights, smalltalk = self._examples, self._example_weights, self._smalltalk
        # Every candidate has one of the terms: for a one-term message (a common one) it shares
        # exactly that term, whose weight the sum above already is.
        single = len(term_set) == 1
        for index in candidates:
            scenario_id, example, example_terms, joined = examples[index]
            if long_message and scenario_id in smalltalk:
                continue
            shared_weight = terms_weight if single else sum(map(weight_of, term_set & example_terms))
            covered = shared_weight / example_weights[index]
            # Extra words in a long message dilute less than missing example words.
            precision = shared_weight / terms_weight
            partial = 0.6 * covered + 0.2 * math.sqrt(precision)
            # fuzzy is at most 1 and float addition is monotonic: when even a perfect fuzzy score
            # could not win, the (costly on long messages) ratio is not computed.
            ceiling = partial + 0.2 * 1.0
            if ceiling < MATCH_THRESHOLD or (best is not None and ceiling <= best.score):
                continue
            fuzzy = fuzz.token_sort_ratio(joined_terms, joined) / 100
            score = partial + 0.2 * fuzzy
            if score >= MATCH_THRESHOLD and (best is None or score > best.score):
                best = Match(scenario_id, score, f"example: {example}")
        return best

    def _candidates(self, terms: frozenset[str]) -> list[int]:
        postings = self._postings
        if len(terms) == 1:
            # One term weighs every example alike, and the stable sort keeps the postings' order.
            (term,) = terms
            return postings.get(term, [])[:CANDIDATES]
        weights: dict[int, float] = {}
        get = weights.get
        for term in terms:
            ids = postings.get(term)
            if ids is None:
                continue
            weight = self._idf[term]
            for index in ids:
                weights[index] = get(index, 0.0) + weight
        return sorted(weights, key=weights.__getitem__, reverse=True)[:CANDIDATES]
