"""Numbers that are never a phone or a contract: amounts, speeds, dates, times, order numbers, IPs."""

from __future__ import annotations

import re

from dialogs.details.base import Span

# A number right before its unit. No unit starts with a digit, a space, a dot or a comma, so a unit can
# only start where the run of those ends: possessive quantifiers find the same matches as greedy ones
# would, without retrying the unit words at every shorter length of the run.
_NUM_UNIT = r"\d[\d\s.,]{0,15}+\s*+"
NOISE_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        # Amounts of money.
        rf"{_NUM_UNIT}(?:₽|руб\w*|р\b|р\.|тыс\w*|т\.р|коп\w*|\$|usd|eur|евро|доллар\w*)",
        # "5к", "15 к" are thousands; "+79050009988 к вам" is a preposition after a phone.
        r"(?<!\d)\d{1,4}\s?к\b",
        r"(?:₽|\$)\s*\d[\d\s.,]{0,15}",
        # Speeds, sizes, signal levels, percentages, durations.
        rf"{_NUM_UNIT}(?:[мкгm]б(?:ит|айт)?\w*|[кмгkmg]bit\w*|[кмгkmg]b/?s|mbps|gbps|мбпс|мегабит\w*|гигабит\w*)",
        rf"-?{_NUM_UNIT}(?:dbm|дбм|db|дб|ms|мс|%|процент\w*|ghz|ггц|mhz|мгц)",
        rf"{_NUM_UNIT}(?:минут\w*|мин\b|час\w*|сек\w*|дн(?:я|ей|ь)\w*|недел\w*|месяц\w*|год\w*|лет\b|раз\w*)",
        # Dates and times.
        r"\b(?:0?[1-9]|[12]\d|3[01])[./](?:0?[1-9]|1[0-2])(?:[./]\d{2,4})?\b",
        # (not inside a phone number: "8(383)2-11-22-33")
        r"(?<![\d)(\-])\b(?:0?[1-9]|[12]\d|3[01])-(?:0?[1-9]|1[0-2])-(?:19|20)?\d{2}\b(?!-\d)",
        r"\b\d{4}-\d{2}-\d{2}\b",
        r"\b\d{1,2}[:.]\d{2}\b",
        r"\b(?:19|20)\d{2}\s*(?:г\b|г\.|год\w*)",
        # Order, request and ticket numbers, codes and passwords.
        r"\b(?:заявк\w*|заказ\w*|тикет\w*|обращени\w*|инцидент\w*|наряд\w*|накладн\w*|чек\w*|квитанци\w*"
        r"|код\w*|смс|sms|пин\w*|пароль\w*|трек\w*|ticket|order|id)\s*(?:№|#|номер|no\.?|n)?\s*[:.]?\s*\d+",
        r"\b(?:парол|код|пин|pin|логин)\w*(?:\s+[а-яёa-z]+){0,3}\s*[:\-]?\s*\d+",
        # Network addresses.
        r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b",
        r"\b[0-9a-f]{2}(?:[:-][0-9a-f]{2}){5}\b",
        # Model numbers glued to letters (Archer C6, AX1500, ZTE F670).
        r"\b[a-z]+[-]?\d+[a-z\d]*\b",
        # Tariffs named with numbers.
        r"тариф\w*\s*[«\"']?[а-яa-z]*\s*\d+",
    )
)


# Numbers whose unit leaves no doubt (percent, speed, money signs): never part of an address. Looser
# units ("к", "час") are left out: "д.71 к.1" is a building, "17, частный дом" a house.
_MEASURE = re.compile(
    r"\d[\d\s.,\-–]{0,15}?\s*(?:%|процент\w*|[мкг]бит\w*|мб/с|mbps|₽|руб\w*|мс\b|ms\b|dbm|дбм)",
    re.IGNORECASE,
)


def measure_spans(text: str) -> list[Span]:
    """Spans of numbers with an unmistakable unit: percentages, speeds, sums in rubles, milliseconds."""
    return [m.span() for m in _MEASURE.finditer(text)]


def noise_spans(text: str) -> list[Span]:
    """Spans of text that hold numbers with another meaning."""
    return [m.span() for pattern in NOISE_PATTERNS for m in pattern.finditer(text)]


class LazyNoise:
    """The noise spans of one text, found on first use: most messages never need them."""

    __slots__ = ("_spans", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._spans: list[Span] | None = None

    def spans(self) -> list[Span]:
        """The same spans as `noise_spans(text)`."""
        if self._spans is None:
            self._spans = noise_spans(self._text)
        return self._spans
