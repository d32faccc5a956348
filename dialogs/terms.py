"""A message as matching terms: lemmas with slang mapped, stopwords dropped, typos corrected, Latin-letter
Russian read back, multi-word synonyms joined, and negation glued to the word it negates ("не_работать")."""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import pairwise

from rapidfuzz import fuzz, process

from common.text import MAX_ANALYSED_CHARS, WORD_LETTERS, Lemmatizer, fold
from dialogs.lexicon import MatchingLexicon
from dialogs.translit import LATIN_WORD, read_latin

TYPO_CUTOFF = 82
RECENT_TEXTS = 16
MIN_CORRECTED = 4
NEGATED = "не_"
# What one word of a message is to the matcher.
SKIP, NEGATION, TERM = 0, 1, 2
# A word, or a mark that ends a clause (negation does not reach past one).
_TOKEN_RE = re.compile(f"([{WORD_LETTERS}]+(?:[-'][{WORD_LETTERS}]+)*)|([,.;:!?()\n]|\\s(?:но|а|однако)\\s)")
# (kind, lemma, corrected lemma, whether it is a noun in the genitive ("интернета нет"), whether it is a
# verb in the past tense ("оплатил": something happened)).
_WordInfo = tuple[int, str, str, bool, bool]
PAST_MARK = "~past"
QUESTION_MARK = "~question"
_QUESTION_LEMMAS = frozenset({"как", "где", "когда", "сколько", "какой", "можно", "ли", "почему", "куда"})
# Negations that, after a noun in the genitive, deny it ("интернета нет") rather than the next word.
_PREDICATE_NEGATIONS = frozenset({"нет", "нету"})
# Grammatical tags of surnames, patronymics and place names.
NAMES = frozenset({"Surn", "Patr", "Geox"})
# Letters Russians confuse because they sound alike (unstressed vowels, a voiced "ф" for "в").
_SOUNDS = str.maketrans({"о": "а", "е": "и", "я": "а", "ю": "у", "ы": "и", "э": "и", "ф": "в"})


def sounded(word: str) -> str:
    """A word as it sounds, for typos written by ear: "гарят" and "горят" sound the same."""
    return word.translate(_SOUNDS)


class TermNormaliser:
    """Turns text into matching terms, driven by the matching lexicon (stopwords, synonyms, phrases)."""

    def __init__(
        self,
        lexicon: MatchingLexicon,
        lemmatizer: Lemmatizer,
        *,
        bare_negations: bool = False,
        numbers: bool = False,
    ) -> None:
        self.lemmatizer = lemmatizer
        # Numbers name no request, but they answer questions ("на 500 мегабит", "вариант 2").
        self.numbers = numbers
        # A negation with nothing to negate ("нет.", "не, спасибо") is a term of its own when this is set:
        # answers are made of such words, requests are not.
        self.bare_negations = bare_negations
        self.stopwords = frozenset(fold(w) for w in lexicon.stopwords)
        self.synonyms = {fold(k): fold(v) for k, v in lexicon.synonyms.items() if " " not in k.strip()}
        self.negations = frozenset(fold(w) for w in lexicon.negations) | _PREDICATE_NEGATIONS
        # Slang the dictionary does not know gets no reliable lemma ("ютубе", "вайфаю"): its stem finds it.
        self._stems = {key[:-1]: value for key, value in self.synonyms.items() if len(key) >= 5}
        self._stems.update(self.synonyms)
        self.vocabulary: list[str] = []
        self._known: frozenset[str] = frozenset()
        self._sounds: dict[str, str | None] = {}
        self.correct = lru_cache(maxsize=50_000)(self._correct_uncached)
        self._classify = lru_cache(maxsize=50_000)(self._classify_uncached)
        # One message is read by several readers in a turn (acts, choices, urgency): its words are
        # classified once.
        self._recent_items = lru_cache(maxsize=RECENT_TEXTS)(self._items_uncached)
        # Multi-word synonyms ("вай фай", "личный кабинет"), looked up by their first word's lemma.
        self._phrases: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for phrase, target in lexicon.synonyms.items():
            parts = tuple(self._lemma(word)[0] for word in lemmatizer.words(phrase))
            if len(parts) > 1:
                self._phrases.setdefault(parts[0], []).append((parts[1:], fold(target)))
        for starts in self._phrases.values():
            starts.sort(key=lambda entry: -len(entry[0]))

    def set_vocabulary(self, vocabulary: set[str]) -> None:
        """Terms that typos are corrected towards (and the slang of the synonyms, read as what it means)."""
        self.vocabulary = sorted(vocabulary | {key for key in self.synonyms if " " not in key})
        self._known = frozenset(vocabulary)
        # Words as heard: "гарят" is "горят", "памагло" is "помогло" (vowels written as they sound).
        sounds: dict[str, str | None] = {}
        token = self.lemmatizer.token
        for word in self.vocabulary:
            key = sounded(word)
            if key not in sounds:
                sounds[key] = word
            elif (other := sounds[key]) is not None and token(other).lemma != token(word).lemma:
                sounds[key] = None  # "помогло"/"помогла" are one word; two different ones are no answer
        self._sounds = sounds
        self.correct.cache_clear()
        self._classify.cache_clear()
        self._recent_items.cache_clear()

    def add_vocabulary(self, vocabulary: set[str]) -> None:
        """Add terms to those typos are corrected towards (a normaliser shared by several readers)."""
        self.set_vocabulary(set(self._known) | vocabulary)

    def _correct_uncached(self, term: str) -> str:
        if term in self._known or len(term) < MIN_CORRECTED or not term.isalpha():
            return term
        best = process.extractOne(term, self.vocabulary, scorer=fuzz.ratio, score_cutoff=TYPO_CUTOFF)
        if not best:
            heard = self._sounds.get(sounded(term))
            return self.synonyms.get(heard, heard) if heard else term
        found = str(best[0])
        return self.synonyms.get(found, found)

    def _lemma(self, word: str) -> tuple[str, str, bool, bool]:
        """A word's lemma after the synonyms, its part of speech, whether the dictionary knows it, and
        whether it is a noun in the genitive."""
        token = self.lemmatizer.token(word)
        genitive = token.pos == "NOUN" and "gent" in token.tags
        mapped = self.synonyms.get(token.word) or self.synonyms.get(token.lemma)
        if mapped:
            return mapped, token.pos, True, genitive
        known = self.lemmatizer.is_known(word)
        if not known and len(word) >= 5:
            mapped = self._stems.get(word[:-1]) or self._stems.get(word[:-2])
            if mapped:
                return mapped, token.pos, True, genitive
        return token.lemma, token.pos, known, genitive

    def _classify_uncached(self, word: str) -> _WordInfo:
        """What a word is to the matcher, its term, and its term with a typo corrected."""
        if LATIN_WORD.match(word) and word not in self.synonyms and word not in self._known:
            russian = read_latin(word, self.lemmatizer.is_known)
            if russian is not None:
                word = russian
        lemma, _pos, known, genitive = self._lemma(word)
        if lemma in self.negations or word in self.negations:
            return NEGATION, word if word in _PREDICATE_NEGATIONS else lemma, lemma, False, False
        # Numbers, codes ("400-40-40", "500р") and single letters ("л/с") name no request.
        if word.isdigit() and self.numbers:
            return TERM, word, word, False, False
        tags = self.lemmatizer.token(word).tags
        past = "past" in tags
        if lemma in self.stopwords or len(lemma) < 2 or any(ch.isdigit() for ch in word):
            return SKIP, lemma, lemma, False, past
        # Surnames and places ("ул. Кирова", "в Бердске") are where, not what: an example's street must
        # not make every message on that street its request. Words the lexicon names stay.
        if NAMES & tags and lemma not in self._known and word not in self.synonyms:
            return SKIP, lemma, lemma, False, past
        # Only words the dictionary does not know are taken for typos: a real word is what it says.
        corrected = lemma if known else self.correct(lemma)
        if corrected != lemma:
            corrected = self._lemma(corrected)[0]  # read towards a written form ("помогло"): its lemma
        if not known and corrected == lemma and len(word) >= MIN_CORRECTED:
            # A guessed lemma may be far from the right one ("вафйаю" -> "вафйать"): the word as written
            # is compared too, with the written forms of the vocabulary.
            as_written = self.correct(word)
            if as_written != word:
                corrected = self._lemma(as_written)[0]
        return TERM, lemma, corrected, genitive, past

    def words(self, text: str) -> list[str | None]:
        """The folded words of a text in order, None where a clause ends. A hyphenated word that is
        neither in the dictionary nor in the lexicon is read as its parts ("сбп-перевод")."""
        found: list[str | None] = []
        for word, _ in _TOKEN_RE.findall(fold(text[:MAX_ANALYSED_CHARS])):
            if "-" in word and word not in self.synonyms and not self.lemmatizer.is_known(word):
                found.extend(part for part in word.split("-") if part)
            else:
                found.append(word or None)
        return found

    def terms(self, text: str, *, correct: bool = False) -> list[str]:
        """Matching terms of a text, in order."""
        return self._terms(self._items(text), correct)

    def _items(self, text: str) -> tuple[_WordInfo | None, ...]:
        return self._recent_items(text)

    def _items_uncached(self, text: str) -> tuple[_WordInfo | None, ...]:
        classify = self._classify
        return tuple(classify(word) if word is not None else None for word in self.words(text))

    def _terms(self, items: tuple[_WordInfo | None, ...], correct: bool) -> list[str]:
        result: list[str] = []
        negate = False
        index = 0
        genitive_before = False
        negation = ""
        while index < len(items):
            item = items[index]
            index += 1
            if item is None:
                if negate and self.bare_negations:
                    result.append(negation)
                negate = genitive_before = False
                continue
            kind, lemma, corrected, genitive, _ = item
            if kind == NEGATION:
                if lemma in _PREDICATE_NEGATIONS and genitive_before and not result[-1].startswith(NEGATED):
                    # "интернета нет", "света нету": the noun before is what is missing.
                    result[-1] = NEGATED + result[-1]
                    genitive_before = False
                    continue
                negate, negation = True, lemma
                continue
            if lemma in self._phrases:
                joined = self._phrase_at(items, index, lemma)
                if joined is not None:
                    lemma, index = joined
                    # A phrase the lexicon rewrites to a stop word ("сколько можно" -> "опять") names nothing.
                    corrected, kind = lemma, SKIP if lemma in self.stopwords else TERM
            if kind == SKIP:
                continue
            term = corrected if correct else lemma
            result.append(NEGATED + term if negate else term)
            genitive_before = genitive and not negate
            negate = False
        if negate and self.bare_negations:
            result.append(negation)
        return result

    def features(self, text: str, *, correct: bool = False, pairs: bool = False) -> list[str]:
        """Terms, and what else tells requests apart: neighbouring terms as pairs ("скорость+тариф" is not
        "тариф" alone), whether something already happened (a verb in the past) and whether it is asked."""
        items = self._items(text)
        terms = self._terms(items, correct)
        if not pairs:
            return terms
        found = [*terms, *("+".join(sorted(pair)) for pair in pairwise(terms) if pair[0] != pair[1])]
        words = [item for item in items if item is not None]
        if any(item[4] for item in words):
            found.append(PAST_MARK)
        if "?" in text or any(item[1] in _QUESTION_LEMMAS for item in words):
            found.append(QUESTION_MARK)
        return found

    def _phrase_at(
        self, items: tuple[_WordInfo | None, ...], index: int, first: str
    ) -> tuple[str, int] | None:
        """A multi-word synonym starting with `first`: its term and the index after it."""
        for rest, target in self._phrases.get(first, ()):
            end = index + len(rest)
            if end > len(items):
                continue
            following = items[index:end]
            if all(item is not None and item[1] == part for item, part in zip(following, rest, strict=True)):
                return target, end
        return None


# Words that carry no meaning in a short answer ("а это плохо?" is not about "это").
ANSWER_STOPWORDS = (
    "а",
    "и",
    "это",
    "этот",
    "ну",
    "вот",
    "же",
    "у",
    "в",
    "на",
    "с",
    "к",
    "о",
    "по",
    "ещё",
    "еще",
)


def answer_normaliser(lexicon: MatchingLexicon, lemmatizer: Lemmatizer) -> TermNormaliser:
    """Terms for short answers: every word counts ("не надо", "все горят"), bare negations are kept."""
    words = MatchingLexicon(
        stopwords=list(ANSWER_STOPWORDS), synonyms=lexicon.synonyms, negations=lexicon.negations
    )
    return TermNormaliser(words, lemmatizer, bare_negations=True, numbers=True)
