"""Phone numbers in every way Russians type them, normalised to E.164 with phonenumbers."""

from __future__ import annotations

import re

import phonenumbers

from dialogs.details.base import Found, Invalid, Span, overlaps
from dialogs.details.noise import LazyNoise

_E164 = phonenumbers.PhoneNumberFormat.E164
_DIGIT_RUN = re.compile(r"\+?\d[\d\s()\-.]{4,}\d")


def to_e164(raw: str, region: str = "RU") -> str | None:
    """Normalise one phone number, or None when it is not a valid number."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, _E164))


class PhoneFinder:
    """Finds client phone numbers, skipping the company's own lines and numbers with other meanings."""

    def __init__(self, company_numbers: list[str], region: str = "RU") -> None:
        self.region = region
        self.company_numbers = {n for n in (to_e164(raw, region) for raw in company_numbers) if n}

    def find(self, name: str, text: str, taken: list[Span], noise: LazyNoise) -> list[Found]:
        """Every client phone number in text outside the taken and noise spans."""
        found = []
        for match in phonenumbers.PhoneNumberMatcher(text, self.region, leniency=phonenumbers.Leniency.VALID):
            span = (match.start, match.end)
            if overlaps(span, taken) or overlaps(span, noise.spans()):
                continue
            value = str(phonenumbers.format_number(match.number, _E164))
            if value in self.company_numbers:
                continue
            found.append(Found(name, value, match.raw_string, *span))
        return found

    def problem(self, name: str, text: str, taken: list[Span], noise: LazyNoise) -> Invalid | None:
        """Why a message that looks like an attempt at a phone number is not one."""
        for match in _DIGIT_RUN.finditer(text):
            if overlaps(match.span(), taken) or overlaps(match.span(), noise.spans()):
                continue
            digits = re.sub(r"\D", "", match.group())
            if to_e164(match.group(), self.region) in self.company_numbers:
                return Invalid(name, "phone_is_ours", match.group())
            if len(digits) < 10:
                return Invalid(name, "phone_too_short", match.group())
            if len(digits) > 12:
                return Invalid(name, "phone_too_long", match.group())
            return Invalid(name, "phone_invalid", match.group())
        return None


def phone_for_display(e164: str) -> str:
    """An E.164 number as people read it: +7 913 123-45-67."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL))
