"""Bank cards: the last four digits are a detail; a full card number or a CVV is recognised only to be
refused (never taken, never repeated back: the client is told not to send them)."""

from __future__ import annotations

import re

from dialogs.details.base import Found, Invalid, Span, overlaps

# A whole run of digits in groups separated by a space or a dash ("4276 3801 2345 6789", "3714 496353
# 98431", "4276 - 3801 - ..."); a group that starts an expiry date ("12/27") ends the run, and a run does
# not start after a decimal point (timings such as "0.0038779999123456" are no cards).
_SEP = r"(?:[ \u00a0]?[-–][ \u00a0]?|[ \u00a0])"
_EXPIRY = r"(?:0[1-9]|1[0-2])\s?/\s?\d{2}"
_DIGIT_RUN = re.compile(rf"(?<!\d)(?<!\d[.,])\d(?:\d|{_SEP}(?!{_EXPIRY})\d)*")
# Dotted groups of 3-7 digits ("4276.3801.2345.6789"); dates (2-digit groups) and IP addresses never fit.
_DOTTED_RUN = re.compile(r"(?<![\d.])\d{3,7}(?:\.\d{3,7}){2,5}(?!\.?\d)")
_GROUP = re.compile(r"\d+")
ACCOUNT_DIGITS = 20
_CVV = re.compile(
    r"(?i)(?<![a-zа-яё])(?:cvv2?|cvc2?|cvp2?|cid|свв2?|свс2?|кв[вш]2?|тр[её]хзначн\w*\s+код"
    r"|(?:код\w*|цифр\w*)\s+(?:(?:на|с|со)\s+)?(?:оборот\w*|обратн\w*|задн\w*|сзади))"
    r"\D{0,20}?(?<!\d)(\d{3,4})(?!\d)"
)
_LAST4_CUE = re.compile(
    r"(?i)(?:карт\w*|оканчива\w*|заканчива\w*|(?:последни\w*|посл\.?)(?:\s+(?:4|четыре))?\s+ц[иы]фр\w*|\*|х{4}|x{4}|"
    r"номер\w*\s+карт\w*)[^\d\n]{0,25}?(?<!\d)(\d{4})(?![\d])"
)
# "3390... нет, 3309": a number taken back in favour of the next one.
_TAKEN_BACK = re.compile(r"(?i)(?:\bнет\b|\bточнее\b|\bвернее\b|\bто есть\b|\bой\b)")
CARD_DIGITS = 16
_CVV_CUE = re.compile(r"(?i)cv|cid|св[вс]|кв[вш]|код|цифр|тр[её]хзнач")
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
    for match in [*_DIGIT_RUN.finditer(text), *_DOTTED_RUN.finditer(text)]:
        if (span := _card_in_run(match)) is not None:
            spans.append(span)
    return sorted(spans)


def _card_in_run(run: re.Match[str]) -> Span | None:
    """The card number a run of digits is or starts with: the whole run, or 4x4 groups followed by a short
    group ("4276 3801 2345 6782 123": a code or a date written after the number), never an account."""
    digits = re.sub(r"\D", "", run.group())
    if 13 <= len(digits) <= 19 and (len(digits) == CARD_DIGITS or luhn_valid(digits)):
        return run.span()
    groups = list(_GROUP.finditer(run.group()))
    if len(digits) == ACCOUNT_DIGITS or len(groups) < 5 or len(digits) > CARD_DIGITS + 4:
        return None
    if all(len(group.group()) == 4 for group in groups[:4]) and luhn_valid(digits[:CARD_DIGITS]):
        return run.start(), run.start() + groups[3].end()
    return None


def cvv_spans(text: str) -> list[Span]:
    """Where a text holds a CVV/CVC code (three or four digits announced as such)."""
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
