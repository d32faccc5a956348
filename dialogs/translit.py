"""Russian typed in Latin letters ("internet ne rabotaet", "pozovite operatora") read back as Cyrillic."""

from __future__ import annotations

import re
from collections.abc import Callable

# Longest first: "shch" before "sh" before "s". Several schemes are in use; the common ones are covered,
# and where they disagree ("y" is ы or й, "e" is е or э) the variants are tried in turn.
_SEQUENCES = (
    ("shch", "щ"),
    ("sch", "щ"),
    ("sh", "ш"),
    ("ch", "ч"),
    ("zh", "ж"),
    ("kh", "х"),
    ("ts", "ц"),
    ("tz", "ц"),
    ("yu", "ю"),
    ("ju", "ю"),
    ("iu", "ю"),
    ("ya", "я"),
    ("ja", "я"),
    ("ia", "я"),
    ("yo", "ё"),
    ("jo", "ё"),
    ("ye", "е"),
    ("iy", "ий"),
    ("yy", "ый"),
    ("ij", "ий"),
    ("a", "а"),
    ("b", "б"),
    ("v", "в"),
    ("w", "в"),
    ("g", "г"),
    ("d", "д"),
    ("e", "е"),
    ("z", "з"),
    ("i", "и"),
    ("j", "й"),
    ("k", "к"),
    ("q", "к"),
    ("l", "л"),
    ("m", "м"),
    ("n", "н"),
    ("o", "о"),
    ("p", "п"),
    ("r", "р"),
    ("s", "с"),
    ("t", "т"),
    ("u", "у"),
    ("f", "ф"),
    ("h", "х"),
    ("x", "кс"),
    ("c", "ц"),
    ("y", "ы"),
    ("'", "ь"),
)
_SEQUENCE_RE = re.compile("|".join(re.escape(latin) for latin, _ in _SEQUENCES))
_TABLE = dict(_SEQUENCES)
# Second guesses where one scheme's letter is another's: "y" after a vowel is й, "c" before a hard vowel is к.
_ALTERNATIVES = (
    ("ы", "й"),
    ("ц", "к"),
    ("е", "э"),
    ("х", "кс"),
    ("ц", "тс"),
    ("ця", "тся"),
    ("щ", "сч"),
    ("ш", "щ"),
)
# A soft sign is rarely typed: "uznat" is узнать.
_SOFT_ENDINGS = ("т", "л", "н", "с")
LATIN_WORD = re.compile(r"^[a-z']+$")
# Letter groups of English spelling that Russian transliteration does not produce.
_ENGLISH = re.compile(
    r"th|w|q|x|ee|oo|ou|ea|ck|ph|wh|[bcdfgklmnprstvz]{4}|^(?:dns|dhcp|pppoe|mtr|iptv|lan|wan)"
)


def to_cyrillic(word: str) -> str:
    """The straightforward Cyrillic reading of a lower-case Latin word."""
    return _SEQUENCE_RE.sub(lambda m: _TABLE[m.group()], word)


def read_latin(word: str, is_russian: Callable[[str], bool]) -> str | None:
    """A Latin-letter word as the Russian word it spells, if one of its readings is a known word."""
    if not LATIN_WORD.match(word) or len(word) < 2:
        return None
    first = to_cyrillic(word)
    if is_russian(first):
        return first
    candidates = [first.replace(reading, other) for reading, other in _ALTERNATIVES if reading in first]
    if first.endswith(_SOFT_ENDINGS):
        candidates.append(first + "ь")
    for candidate in candidates:
        if is_russian(candidate):
            return candidate
    # Unknown either way: the straightforward reading, for typo correction to find (most English
    # words are kept, they hold letters the reading cannot make sense of).
    return first if len(word) >= 4 and not _ENGLISH.search(word) else None
