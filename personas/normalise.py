"""Undoing the disguises of rude words: latin look-alikes, transliteration, masks and stretched letters."""

from __future__ import annotations

import re

_LOOKALIKE = str.maketrans(
    {"a": "а", "c": "с", "e": "е", "o": "о", "p": "р", "x": "х", "y": "у", "k": "к", "m": "м", "t": "т",
     "h": "н", "b": "в", "3": "з", "0": "о", "6": "б", "u": "и", "r": "г", "n": "п"}
)  # fmt: skip
_TRANSLIT = (
    ("shch", "щ"), ("sch", "щ"), ("zh", "ж"), ("kh", "х"), ("ch", "ч"), ("sh", "ш"), ("ya", "я"), ("yu", "ю"),
    ("yo", "ё"), ("ts", "ц"), ("a", "а"), ("b", "б"), ("v", "в"), ("g", "г"), ("d", "д"), ("e", "е"),
    ("z", "з"), ("i", "и"), ("j", "й"), ("k", "к"), ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"),
    ("p", "п"), ("r", "р"), ("s", "с"), ("t", "т"), ("u", "у"), ("f", "ф"), ("h", "х"), ("x", "х"),
    ("c", "ц"), ("y", "ы"), ("w", "в"), ("q", "к"),
)  # fmt: skip
MASK_CHARS = "*#@$%_.№"
_WORD = re.compile(r"[a-zа-яё0-9*#@$%_.№]+", re.IGNORECASE)
_STRETCH = re.compile(r"(.)\1{2,}")
_DOUBLE = re.compile(r"(.)\1+")
_HAS_CYRILLIC = re.compile(r"[а-яё]")
_HAS_LATIN = re.compile(r"[a-z]")


def _translit(word: str) -> str:
    for latin, cyrillic in _TRANSLIT:
        word = word.replace(latin, cyrillic)
    return word


def word_forms(word: str) -> list[str]:
    """Readings of a word: as written, look-alikes undone, transliterated; stretched letters squeezed."""
    word = _STRETCH.sub(r"\1", word.lower().replace("ё", "е"))
    forms = [word]
    if _HAS_LATIN.search(word):
        lookalike = word.translate(_LOOKALIKE)
        forms.append(lookalike)
        # "nizdec": look-alike letters first (n -> п), then the rest transliterated.
        forms.append(_translit(lookalike))
        if not _HAS_CYRILLIC.search(word):
            forms.append(_translit(word))
    squeezed = _DOUBLE.sub(r"\1", forms[-1])
    if squeezed != forms[-1]:
        forms.append(squeezed)
    return forms


def words_of(text: str) -> list[str]:
    """Words of a text keeping mask characters inside them ("п#здец", "бл*", "х...")."""
    return [w.lstrip("._") for w in _WORD.findall(text) if w.strip("._")]


def is_masked(word: str) -> bool:
    """A word with a letter and a mask in it ("п#здец", "бл**", "х..."); single dots are abbreviations."""
    core = word.rstrip(".")
    if not any(ch.isalpha() for ch in core):
        return False
    return any(ch in "*#@$%№" for ch in core) or ".." in core or (word.endswith("..") and len(core) == 1)


def letters_only(word: str) -> str:
    """The word with mask characters and dots removed ("пидор.с" -> "пидорс")."""
    return "".join(ch for ch in word if ch not in MASK_CHARS)


def mask_pattern(word: str) -> re.Pattern[str]:
    """A regex reading mask characters as up to three hidden letters: "п#здец" -> п[а-я]{0,3}здец."""
    parts = re.split(r"[*#@$%_.№]+", word.lower())
    return re.compile("^" + "[а-яё]{0,3}".join(re.escape(p) for p in parts) + ("[а-яё]{0,6}$"))
