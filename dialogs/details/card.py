"""Bank cards: the last four digits are a detail; a full card number or a CVV is recognised only to be
refused (never taken, never repeated back: the client is told not to send them)."""

from __future__ import annotations

import re

from dialogs.details.base import Found, Invalid, Span, overlaps

# 13-19 digits, in groups separated by single spaces or dashes ("4276 3801 2345 6789", "4276-3801-..."),
# not part of a longer run (a 20-digit account written in groups is no card).
_CARD_RUN = re.compile(r"(?<!\d)(?<!\d[ \-])\d(?:[ \-]?\d){12,18}(?![ \-]?\d)")
_CVV = re.compile(
    r"(?i)(?:cvv2?|cvc2?|cvp|кв[вш]|код\s+(?:на\s+)?(?:оборот\w*|обратн\w*|сзади)|тр[её]хзначн\w*\s+код)"
    r"\D{0,15}?(?<!\d)(\d{3})(?!\d)"
)
_LAST4_CUE = re.compile(
    r"(?i)(?:карт\w*|оканчива\w*|заканчива\w*|(?:последни\w*|посл\.?)(?:\s+(?:4|четыре))?\s+ц[иы]фр\w*|\*|х{4}|x{4}|"
    r"номер\w*\s+карт\w*)[^\d\n]{0,25}?(?<!\d)(\d{4})(?![\d])"
)
# "3390... нет, 3309": a number taken back in favour of the next one.
_TAKEN_BACK = re.compile(r"(?i)(?:\bнет\b|\bточнее\b|\bвернее\b|\bто есть\b|\bой\b)")
CARD_DIGITS = 16
_CVV_CUE = re.compile(r"(?i)cv|кв[вш]|код|тр[её]хзнач")
_BARE_FOUR = re.compile(r"(?<![\d])(\d{4})(?![\d])")
_ANY_DIGITS = re.compile(r"\d+")
# What stands in a stored message for a full card number and a CVV: the last four digits stay (they name
# the card to an operator and are no secret); readers treat the marks as the refused data they replace.
REDACTED_CARD = "[карта ••••{last4}]"
REDACTED_CVV = "[код CVV скрыт]"
_REDACTED_CARD_RE = re.compile(r"\[карта ••••\d{4}\]")
_REDACTED_CVV_RE = re.compile(re.escape(REDACTED_CVV))


def luhn_valid(digits: str) -> bool:
    """Whether a digit string passes the Luhn check that card numbers carry."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def full_card_spans(text: str) -> list[Span]:
    """Where a text holds full card numbers: Luhn-valid 13-19 digits in any grouping, or 16 digits (a card
    number with a typo is still one: it is refused just the same)."""
    spans = [match.span() for match in _REDACTED_CARD_RE.finditer(text)]
    for match in _CARD_RUN.finditer(text):
        digits = re.sub(r"\D", "", match.group())
        if len(digits) == CARD_DIGITS or luhn_valid(digits):
            spans.append(match.span())
    return sorted(spans)


def cvv_spans(text: str) -> list[Span]:
    """Where a text holds a CVV/CVC code (three digits announced as such)."""
    if _CVV_CUE.search(text) is None:
        return []
    marks = [match.span() for match in _REDACTED_CVV_RE.finditer(text)]
    return sorted([*marks, *(match.span(1) for match in _CVV.finditer(text))])


def redact_card_data(text: str) -> str:
    """The text with every full card number and CVV replaced by a mark, before it is stored or logged."""
    cards = [span for span in full_card_spans(text) if not _REDACTED_CARD_RE.fullmatch(text[slice(*span)])]
    codes = [
        span for span in cvv_spans(text) if not overlaps(span, cards) and text[slice(*span)] != REDACTED_CVV
    ]
    if not cards and not codes:
        return text
    pieces = []
    position = 0
    for start, end in sorted([*cards, *codes]):
        if start < position:
            continue
        chunk = text[start:end]
        digits = re.sub(r"\D", "", chunk)
        pieces.append(text[position:start])
        pieces.append(REDACTED_CARD.format(last4=digits[-4:]) if (start, end) in cards else REDACTED_CVV)
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


class CardFinder:
    """Finds the last four digits of a card; refuses full numbers and CVV codes."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find(self, text: str, taken: list[Span], *, asked: bool) -> Found | Invalid | None:
        """The card's last four digits: announced ("карта *1234", "заканчивается на 5678"), or alone when
        asked. A full card number is never a value: the client is asked for the last four digits only."""
        refused = full_card_spans(text)
        if refused:
            # The full number is refused (and never kept), but its last four digits are what was asked.
            start, end = refused[0]
            last4 = re.sub(r"\D", "", text[start:end])[-4:]
            return Found(self.name, last4, last4, end - 4, end)
        for match in _LAST4_CUE.finditer(text):
            span = match.span(1)
            if not overlaps(span, [*taken, *refused]):
                return Found(self.name, match.group(1), match.group(1), *span)
        if not asked:
            return None
        numbers = [m for m in _ANY_DIGITS.finditer(text) if not overlaps(m.span(), [*taken, *refused])]
        if len(numbers) > 1 and _TAKEN_BACK.search(text[numbers[0].end() : numbers[-1].start()]):
            numbers = numbers[-1:]
        if len(numbers) == 1 and _BARE_FOUR.fullmatch(numbers[0].group()):
            return Found(self.name, numbers[0].group(), numbers[0].group(), *numbers[0].span())
        if numbers:
            return Invalid(self.name, "card_last4_pattern")
        return None
