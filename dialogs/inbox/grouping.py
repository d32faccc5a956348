"""Misunderstood messages grouped by likeness, so an editor reads "позвоните мне на [телефон]" once with a
count of 40 instead of forty lines.

Every text is first stripped of personal data (dialogs/personal_data.py): what a page shows is masked, and
"позвоните на +7913…" groups with every other number. Then it is normalised (lower case, ё as е,
punctuation out, spaces collapsed) and identical phrasings are counted together. The phrasings, most
frequent first, are then grouped greedily: each joins a group whose leading phrasing is alike, or leads a
group of its own. Two phrasings are alike when

- their words, sorted, read at least `ALIKE_RATIO` = 80 alike (rapidfuzz's token_sort_ratio): word order
  does not matter ("интернет не работает" / "не работает интернет" 100) and a typo or an ending per word
  is forgiven ("не работаит инет" / "не работает интернет" 83, "вы опять про тарифы" / "...тариф" 97),
  while different requests stay apart ("как оплатить" / "как отключить" 72, "где мой перевод" / "где мой
  заказ" 50);
- or one holds all the words of the other plus at most `EXTRA_WORDS` = 2 more, and they share at least
  `SHARED_WORDS` = 3 ("вы не понимаете" / "вы меня не понимаете", "мой номер телефон" / "мой номер
  телефон пожалуйста"). This is token_set_ratio's subset case without its flaw: token_set_ratio scores
  "хочу" / "хочу поменять тариф" 100, and a short word would swallow every message that holds it.

The work is bounded: the caller reads at most the newest few thousand messages, and only the
`DISTINCT_LIMIT` most frequent phrasings are compared (at most ~2 million ratio computations in C, and
only with leaders of a length that could reach the ratio); rarer ones beyond it stay groups of their own.
Measured on the development machine: 5,000 messages all different, 0.6-1.4 s in all (a third masking);
5,000 messages in 300 phrasings, 0.06-0.15 s.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from rapidfuzz import fuzz, process, utils

from dialogs.personal_data import hide_personal_data

ALIKE_RATIO = 80
EXTRA_WORDS = 2
SHARED_WORDS = 3
DISTINCT_LIMIT = 2000
EXAMPLES_SHOWN = 3
# Longer phrasings are not looked up by their subsets (a few dozen dictionary look-ups each up to here).
SUBSET_MAX_WORDS = 12


class Misheard(Protocol):
    """A stored misunderstood message, as the grouping reads it."""

    @property
    def id(self) -> int: ...
    @property
    def conversation_id(self) -> int: ...
    @property
    def reason(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Example:
    """One phrasing of a group: its masked text, how often it came, and its newest message."""

    text: str
    count: int
    message_id: int
    conversation_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class Group:
    """Alike messages: counted by reason, their first and last moments, a few phrasings to read."""

    key: int  # the id of the newest message of the leading phrasing
    text: str  # the leading phrasing, masked: what snippets are made of
    count: int
    reasons: dict[str, int]
    first_at: datetime
    last_at: datetime
    conversation_id: int  # where the newest message of the group was written
    examples: tuple[Example, ...]
    message_ids: frozenset[int]


@dataclass(frozen=True, slots=True)
class Grouping:
    """The groups, most messages first, and how much was left uncompared."""

    groups: list[Group]
    messages: int
    phrasings: int
    uncompared: int  # phrasings past DISTINCT_LIMIT, each left a group of its own

    def containing(self, message_id: int) -> Group | None:
        """The group a message belongs to."""
        return next((group for group in self.groups if message_id in group.message_ids), None)


@dataclass(slots=True)
class _Phrasing:
    key: str
    words: frozenset[str]
    rows: list[Misheard] = field(default_factory=list)
    masked: str = ""


def normalise(masked: str) -> str:
    """A masked text as phrasings are compared: lower case, ё as е, punctuation out, spaces collapsed."""
    return " ".join(utils.default_process(masked.replace("ё", "е").replace("Ё", "Е")).split())


def mask(text: str) -> str:
    """A stored text as editors may read it: personal data hidden, whitespace on one line."""
    return " ".join(hide_personal_data(text).split())


def _newest_first(row: Misheard) -> tuple[datetime, int]:
    return row.at, row.id


def _phrasings(rows: Iterable[Misheard]) -> list[_Phrasing]:
    found: dict[str, _Phrasing] = {}
    masks: dict[str, str] = {}  # clients repeat themselves: each text is masked once
    for row in sorted(rows, key=_newest_first, reverse=True):
        masked = masks.get(row.text)
        if masked is None:
            masked = masks[row.text] = mask(row.text)
        # A message of no words ("???", "👍") is its own phrasing, not one with every other such message.
        key = normalise(masked) or masked
        phrasing = found.get(key)
        if phrasing is None:
            phrasing = found[key] = _Phrasing(key, frozenset(key.split()), masked=masked)
        phrasing.rows.append(row)
    # Most frequent first, so that groups are led by the phrasings clients use most; then the newest.
    return sorted(found.values(), key=lambda p: (-len(p.rows), -p.rows[0].at.timestamp(), -p.rows[0].id))


def _smaller(words: frozenset[str]) -> Iterable[frozenset[str]]:
    """The word sets that lack one or two of these words and still hold SHARED_WORDS."""
    if len(words) > SUBSET_MAX_WORDS:
        return
    for dropped in range(1, EXTRA_WORDS + 1):
        if len(words) - dropped < SHARED_WORDS:
            return
        for gone in itertools.combinations(sorted(words), dropped):
            yield words - frozenset(gone)


class _Leaders:
    """The leading phrasings so far, found by a word subset or by likeness of their sorted words."""

    def __init__(self) -> None:
        self.count = 0
        # Sorted words by length: a ratio of ALIKE_RATIO needs lengths within 2:3 of each other, so only
        # leaders of a length in that window are compared.
        self.by_length: dict[int, tuple[list[str], list[int]]] = {}
        self.by_words: dict[frozenset[str], int] = {}
        self.by_subset: dict[frozenset[str], int] = {}

    def find(self, phrasing: _Phrasing) -> int | None:
        words = phrasing.words
        # A leader with the same words, or these words and one or two more.
        for table in (self.by_words, self.by_subset):
            if words in table:
                return table[words]
        # A leader that is these words less one or two.
        for smaller in _smaller(words):
            if smaller in self.by_words:
                return self.by_words[smaller]
        text = _sorted_words(phrasing)
        texts: list[str] = []
        indexes: list[int] = []
        low, high = _window(len(text))
        for length in range(low, high + 1):
            bucket = self.by_length.get(length)
            if bucket is not None:
                texts += bucket[0]
                indexes += bucket[1]
        found = process.extractOne(text, texts, scorer=fuzz.ratio, processor=None, score_cutoff=ALIKE_RATIO)
        return None if found is None else indexes[found[2]]

    def add(self, phrasing: _Phrasing) -> int:
        index = self.count
        self.count += 1
        text = _sorted_words(phrasing)
        texts, indexes = self.by_length.setdefault(len(text), ([], []))
        texts.append(text)
        indexes.append(index)
        self.by_words.setdefault(phrasing.words, index)
        for smaller in _smaller(phrasing.words):
            self.by_subset.setdefault(smaller, index)
        return index


def _sorted_words(phrasing: _Phrasing) -> str:
    """token_sort_ratio's view of a phrasing: its words in order, so that ratio() gives the same score."""
    return " ".join(sorted(phrasing.key.split()))


def _window(length: int) -> tuple[int, int]:
    """The lengths a text of this length may score ALIKE_RATIO with: ratio = 2·common / (a + b), and the
    common part is at most the shorter text."""
    share = ALIKE_RATIO / (200 - ALIKE_RATIO)  # shortest / longest
    return int(length * share), int(length / share) + 1


def group_messages(
    rows: Sequence[Misheard], *, distinct_limit: int = DISTINCT_LIMIT, examples: int = EXAMPLES_SHOWN
) -> Grouping:
    """Group misunderstood messages by likeness (see the module's notes); groups with most messages first."""
    phrasings = _phrasings(rows)
    leaders = _Leaders()
    members: list[list[_Phrasing]] = []
    for position, phrasing in enumerate(phrasings):
        found = leaders.find(phrasing) if position < distinct_limit else None
        if found is None:
            found = leaders.add(phrasing) if position < distinct_limit else len(members)
            members.append([])
        members[found].append(phrasing)
    groups = [_group(parts, examples) for parts in members]
    groups.sort(key=lambda g: (-g.count, -g.last_at.timestamp(), -g.key))
    return Grouping(
        groups=groups,
        messages=len(rows),
        phrasings=len(phrasings),
        uncompared=max(0, len(phrasings) - distinct_limit),
    )


def _group(parts: list[_Phrasing], examples: int) -> Group:
    rows = [row for part in parts for row in part.rows]
    newest = max(rows, key=_newest_first)
    reasons: dict[str, int] = {}
    for row in rows:
        reasons[row.reason] = reasons.get(row.reason, 0) + 1
    shown = tuple(
        Example(part.masked, len(part.rows), part.rows[0].id, part.rows[0].conversation_id, part.rows[0].at)
        for part in parts[:examples]
    )
    return Group(
        key=parts[0].rows[0].id,
        text=parts[0].masked,
        count=len(rows),
        reasons=reasons,
        first_at=min(row.at for row in rows),
        last_at=newest.at,
        conversation_id=newest.conversation_id,
        examples=shown,
        message_ids=frozenset(row.id for row in rows),
    )
