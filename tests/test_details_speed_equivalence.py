"""The shortcuts that make detail extraction cheap must never change what it finds.

Each shortcut skips work when a cheap test says the work cannot find anything; these tests throw
real-looking and random texts at both sides and check the cheap test never says "no" wrongly.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime

import phonenumbers
import pytest

from dialogs.details import address, noise, when
from dialogs.details.phone import PhoneFinder, digit_bounds

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

# Pieces to build texts from: digits, the punctuation phonenumbers allows, letters, units, cue words.
_ATOMS = [
    *"0123456789" * 3, *"xX", " ", "  ", "-", "–", "(", ")", "+", ".", ",", "/", ":", "~", "[", "]",
    "\u2011", "\u3000", "\u00a0", "\uff0b", "٣", "７", "#", "ext", "доб", "tel", "8 ", "+7", "кв", "кв.",
    "д.", "ул.", "ул", "пр-т", "п.", "с.", "дом", "Ленина", "гоголя", "Кирова", "тариф", "г. Бердск, ",
    "р", "руб", "к", "₽", "$", "мб", "mbps", "kb/s", "dbm", "%", "мс", "мин", "час", "дня", "лет", "раз",
    "в ", "к ", "на ", "до ", "после ", "с ", "утра", "вечером", "завтра", "пн", "чт", "ноября",
    "а", "б", "Р", "MBPS", "ч", "через ", "полчаса", "срочно", "любое время",
]  # fmt: skip
_PHONES = [
    "+7 (913) 000-11-22", "8 913 000 11 22", "89130001122", "9130001122", "+43 1234", "+49 30 1234",
    "+683 4002", "8 10 49 30 1234", "810 43 1 234", "8104312345", "+7 913 xxx 11 22", "8xx9130001122",
    "+44 20 7946 0958", "+800 1234 5678", "+43 (1) 2345 ext 12", "＋43 1234", "8 913 000 11",
]  # fmt: skip


def _random_texts(seed: int, count: int) -> list[str]:
    rnd = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = [rnd.choice(_ATOMS) for _ in range(rnd.randint(1, 18))]
        if rnd.random() < 0.4:
            parts.insert(rnd.randint(0, len(parts)), rnd.choice(_PHONES))
        texts.append("".join(parts))
    return texts


def _mutated_phones(seed: int, count: int) -> list[str]:
    rnd = random.Random(seed)
    texts = []
    for _ in range(count):
        chars = list(rnd.choice(_PHONES))
        for _ in range(rnd.randint(0, 4)):
            at = rnd.randint(0, len(chars))
            if rnd.random() < 0.4 and chars:
                del chars[min(at, len(chars) - 1)]
            else:
                chars.insert(at, rnd.choice([*"0123456789", " ", "-", "x", "(", "+", ".", "/", "a", "т"]))
        texts.append(
            rnd.choice(["", "тел ", "abc", "мой "]) + "".join(chars) + rnd.choice(["", " ok", ":00"])
        )
    return texts


def test_digit_bounds_come_from_metadata() -> None:
    bounds = digit_bounds("RU")
    # Some countries allow four-digit numbers after a two-digit code; Russian ones have ten digits,
    # or nine counting the "810" international prefix before the shortest foreign number.
    assert bounds.with_plus <= 6
    assert bounds.without_plus <= 9


@pytest.mark.parametrize("seed", [1, 2])
def test_phone_prefilter_never_hides_a_number(seed: int) -> None:
    finder = PhoneFinder([])
    for text in _random_texts(seed, 4000) + _mutated_phones(seed, 4000):
        if finder._may_hold_number(text):
            continue
        matches = phonenumbers.PhoneNumberMatcher(text, "RU", leniency=phonenumbers.Leniency.VALID)
        assert not any(True for _ in matches), text


def test_phone_prefilter_lets_through_every_russian_way() -> None:
    finder = PhoneFinder([])
    for text in ("+7 (913) 000-11-22", "8 913 000 11 22", "89130001122", "9130001122", "тел 8-913-000-11-22"):
        assert finder._may_hold_number(text)
        assert finder.first("phone", text, [], noise.LazyNoise(text)) is not None


def test_possessive_noise_patterns_match_as_greedy_ones() -> None:
    greedy = [
        re.compile(p.pattern.replace(r"{0,15}+\s*+", r"{0,15}\s*"), p.flags) for p in noise.NOISE_PATTERNS
    ]
    assert sum(g.pattern != p.pattern for g, p in zip(greedy, noise.NOISE_PATTERNS, strict=True)) == 4
    for text in _random_texts(3, 6000):
        assert noise.noise_spans(text) == [m.span() for p in greedy for m in p.finditer(text)], text


def test_address_prefilters_are_necessary() -> None:
    for text in _random_texts(4, 6000):
        for regex, prefilter in address._PREFILTERS:
            if prefilter.search(text) is None:
                assert regex.search(text) is None, (regex.pattern[:40], text)


def test_when_prefilter_is_necessary() -> None:
    for text in _random_texts(5, 6000):
        folded = text.lower().replace("ё", "е")
        assert when.parse_when(text, NOW) == when._parse_folded(folded, NOW), text
