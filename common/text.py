"""Text normalisation and Russian lemmatisation shared by matching, details and personas."""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pymorphy3

WORD_RE = re.compile(r"[a-zа-яё0-9]+(?:[-'][a-zа-яё0-9]+)*", re.IGNORECASE)
# WORD_RE for folded text, without IGNORECASE (which makes it a third slower on Cyrillic). Folded
# text holds only characters that fold to themselves, and of those IGNORECASE adds exactly ı, ſ and
# the old Cyrillic letter forms U+1C80-U+1C86 (checked over all code points with Python 3.11's
# Unicode data), so they are listed instead.
WORD_LETTERS = "a-zа-яё0-9\u0131\u017f\u1c80-\u1c86"
FOLDED_WORD_RE = re.compile(f"[{WORD_LETTERS}]+(?:[-'][{WORD_LETTERS}]+)*")
# Zero-width and bidi control characters carry no meaning for us and break matching.
_INVISIBLE_RE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
MAX_ANALYSED_CHARS = 2000
# Texts whose tokens are kept: the engine analyses one message several times (classifier, matcher,
# choices), so a handful of recent texts is enough.
RECENT_TEXTS = 64


def clean(text: str) -> str:
    """Drop control and invisible characters and normalise Unicode, keeping line breaks."""
    # NFKC would turn "№" into "No"; clients use it both as a number sign and to mask swear words.
    # (A private-use U+E000 in the input comes out as "№" too; the replaces are skipped when idle.)
    text = unicodedata.normalize("NFKC", text.replace("№", "\ue000") if "№" in text else text)
    if "\ue000" in text:
        text = text.replace("\ue000", "№")
    # A printable string has no character of category C (the invisible ones are all Cf), so there
    # is nothing to drop: the usual message skips the per-character pass.
    if text.isprintable():
        return text
    # Line breaks and tabs are kept but are not printable: spaces stand in for them in the check
    # (str.replace, as str.translate is many times slower on non-ASCII text).
    if ("\n" in text or "\t" in text) and text.replace("\n", " ").replace("\t", " ").isprintable():
        return text
    text = _INVISIBLE_RE.sub("", text)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")


def trie_pattern(needles: list[str] | tuple[str, ...] | frozenset[str]) -> str:
    """One regex for a set of literal strings with their common beginnings shared ("не работа|не пришел"
    -> "не (?:работа|пришел)"): the regex engine tries each alternative at each position, and a shared
    beginning fails once for all the strings behind it."""
    trie: dict[str, Any] = {}
    for needle in needles:
        if not needle:
            continue
        node = trie
        for char in needle:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict[str, Any]) -> str:
        # Only whether one occurs matters: a needle that ends here makes the longer ones behind it moot.
        if "" in node:
            return ""
        branches = [re.escape(char) + pattern(child) for char, child in sorted(node.items())]
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return pattern(trie) if trie else "(?!x)x"


class AnyOf:
    """Whether any of some literal strings occurs in a text: one regex scan instead of a loop of `in`."""

    __slots__ = ("_regex",)

    def __init__(self, needles: list[str] | tuple[str, ...] | frozenset[str]) -> None:
        self._regex = re.compile(trie_pattern(needles)) if needles else None

    def __call__(self, text: str) -> bool:
        return self._regex is not None and self._regex.search(text) is not None


def fold(text: str) -> str:
    """Lower-case and fold ё to е, the way Russians type interchangeably."""
    return text.lower().replace("ё", "е")


def words(text: str) -> list[str]:
    """Split folded text into word tokens."""
    return FOLDED_WORD_RE.findall(fold(text))


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a message: its surface form, lemma and grammatical tags."""

    word: str
    lemma: str
    pos: str
    tags: frozenset[str]


def _dictionary_path() -> str | None:
    """The Russian dictionaries' directory; None leaves the choice to pymorphy3 (its environment variable)."""
    # Named here, pymorphy3 does not look for it among every installed package's entry points (~4 ms a start).
    if pymorphy3.MorphAnalyzer.DICT_PATH_ENV_VARIABLE in os.environ:
        return None
    import pymorphy3_dicts_ru  # type: ignore[import-untyped]

    path: str = pymorphy3_dicts_ru.get_path()
    return path


class Lemmatizer:
    """pymorphy3 behind a cache: the same words recur across messages."""

    def __init__(self, cache_size: int = 200_000) -> None:
        self._morph = pymorphy3.MorphAnalyzer(path=_dictionary_path(), lang="ru")
        self._parse = lru_cache(maxsize=cache_size)(self._parse_uncached)
        self._recent = lru_cache(maxsize=RECENT_TEXTS)(self._tokens_uncached)
        self._known = lru_cache(maxsize=cache_size)(self._morph.word_is_known)
        self._analyses = lru_cache(maxsize=4096)(self._analyses_uncached)

    def _parse_uncached(self, word: str) -> Token:
        if not word.replace("-", "").isalpha():
            return Token(word, word, "NUMB" if word.isdigit() else "", frozenset())
        parsed = self._morph.parse(word)[0]
        tags = frozenset(str(parsed.tag).replace(" ", ",").split(","))
        return Token(word, fold(parsed.normal_form), str(parsed.tag.POS or ""), tags)

    def token(self, word: str) -> Token:
        """Parse one already folded word."""
        return self._parse(word)

    def analyses(self, word: str) -> tuple[frozenset[str], ...]:
        """The grammatical tags of every reading the dictionary has for an already folded word."""
        return self._analyses(word)

    def _analyses_uncached(self, word: str) -> tuple[frozenset[str], ...]:
        return tuple(frozenset(str(p.tag).replace(" ", ",").split(",")) for p in self._morph.parse(word))

    def is_known(self, word: str) -> bool:
        """Whether the dictionary knows an already folded word (not a guess from its ending)."""
        return bool(self._known(word))

    def words(self, text: str) -> list[str]:
        """The folded words of a text."""
        return FOLDED_WORD_RE.findall(fold(text[:MAX_ANALYSED_CHARS]))

    def _tokens_uncached(self, text: str) -> tuple[Token, ...]:
        return tuple(map(self._parse, FOLDED_WORD_RE.findall(fold(text[:MAX_ANALYSED_CHARS]))))

    def tokens(self, text: str) -> list[Token]:
        """Tokenise and lemmatise a text (only its first MAX_ANALYSED_CHARS characters)."""
        # A fresh list each call: callers may change theirs, the cached tuple stays intact.
        return list(self._recent(text))

    def lemmas(self, text: str) -> list[str]:
        """Lemmas of a text's words, in order."""
        return [t.lemma for t in self._recent(text)]


@lru_cache(maxsize=1)
def shared_lemmatizer() -> Lemmatizer:
    """One analyser per process: loading the dictionaries costs about 100 ms."""
    return Lemmatizer()
