"""Phone numbers in every way Russians type them, normalised to E.164 with phonenumbers."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

import phonenumbers

from dialogs.details.base import Found, Invalid, Span, overlaps
from dialogs.details.noise import LazyNoise

# Texts whose numbers are kept: one turn's message, with room for a few chats in between.
_RECENT_TEXTS = 16

_E164 = phonenumbers.PhoneNumberFormat.E164
_DIGIT_RUN = re.compile(r"\+?\d[\d\s()\-.]{4,}\d")
# Stretches of text a phone number could be read from. phonenumbers takes a number from digits joined
# by at most four punctuation marks (and up to two leading brackets or pluses); the only letter it lets
# into a number is "x", which it may read as a digit. So every digit (or "x") of a number lies in one
# such stretch, where letters break a stretch and up to nine other characters may sit between digits.
_PHONE_STRETCH = re.compile(r"[\dxX](?:[^\dA-Za-zА-Яа-яЁё]{0,9}[\dxX])*")
_DIGITISH = re.compile(r"[\dxX]")
# 8 800 numbers are free lines of companies, never a client's own.
_TOLL_FREE = re.compile(r"^\+7800")
# Words right before a number that make it someone else's.
_SOMEONE_ELSES = re.compile(
    r"(?i)(?:(?:звонил\w*|звонят|позвонил\w*)\s+(?:мне\s+)?с(?:\s+номера)?|курьер\w*(?:\s+\w+){0,2}\s+с"
    r"|горяч\w*\s+лини\w*|дозвониться\s+до"
    # A loyalty or bonus card's number is no phone: "карта лояльности 7788990011".
    r"|карт\w*(?:\s+\w+){0,2})\s*[:\-№]?\s*$"
)
_PLUS_CHARS = ("+", "\uff0b")
# How far before its first digit a number may start: two leading marks with four punctuation each.
_LEAD_REACH = 10


def _shortest(metadata: phonenumbers.PhoneMetadata | None) -> int | None:
    desc = metadata.general_desc if metadata is not None else None
    return min(desc.possible_length) if desc is not None and desc.possible_length else None


@dataclass(frozen=True, slots=True)
class DigitBounds:
    """The fewest digits (counting "x") a valid number has, by how it is written."""

    with_plus: int  # "+49 30 1234": a country code and the shortest number of any country
    without_plus: int  # national ("8 913 ...") or after the region's international prefix ("810 49 ...")


@functools.lru_cache(maxsize=8)
def digit_bounds(region: str) -> DigitBounds:
    """Digit bounds for numbers read with `region` as default, from phonenumbers' own metadata."""
    lengths = [
        len(str(data.country_code)) + shortest
        for data in (
            *(phonenumbers.PhoneMetadata.metadata_for_region(r) for r in phonenumbers.SUPPORTED_REGIONS),
            *(
                phonenumbers.PhoneMetadata.metadata_for_nongeo_region(code)
                for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS
            ),
        )
        if data is not None and (shortest := _shortest(data)) is not None
    ]
    with_plus = min(lengths, default=1)
    home = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if home is None or home.country_code is None or home.national_prefix_transform_rule:
        return DigitBounds(1, 1)  # numbers may gain digits when parsed: no safe bound
    # A national number is valid in a region sharing the home country code.
    national = min(
        (
            shortest
            for r in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(home.country_code, ())
            if (shortest := _shortest(phonenumbers.PhoneMetadata.metadata_for_region(r))) is not None
        ),
        default=1,
    )
    prefix = home.international_prefix or ""
    through_prefix = len(prefix) + with_plus if prefix.isdigit() else with_plus
    return DigitBounds(with_plus, min(national, through_prefix))


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
        self._bounds = digit_bounds(region)
        # One turn looks for phones in the same text more than once (the question asked, then a new
        # request's details); the library's matcher is the costly part and depends on the text alone.
        self._matches = functools.lru_cache(maxsize=_RECENT_TEXTS)(self._matches_uncached)

    def _may_hold_number(self, text: str) -> bool:
        """False when text certainly holds no valid number: PhoneNumberMatcher is costly even on none."""
        for stretch in _PHONE_STRETCH.finditer(text):
            digits = len(_DIGITISH.findall(stretch.group()))
            if digits >= self._bounds.without_plus:
                return True
            if digits >= self._bounds.with_plus:
                lead = text[max(0, stretch.start() - _LEAD_REACH) : stretch.end()]
                if any(plus in lead for plus in _PLUS_CHARS):
                    return True
        return False

    def find(self, name: str, text: str, taken: list[Span], noise: LazyNoise) -> list[Found]:
        """Every client phone number in text outside the taken and noise spans."""
        return list(self._client_numbers(name, text, taken, noise))

    def first(self, name: str, text: str, taken: list[Span], noise: LazyNoise) -> Found | None:
        """The first client phone number in text, as `find` would list it first."""
        return next(self._client_numbers(name, text, taken, noise), None)

    def _matches_uncached(self, text: str) -> tuple[tuple[Span, str, str], ...]:
        """Every valid number in text: (span, E.164 value, as written)."""
        if not self._may_hold_number(text):
            return ()
        return tuple(
            ((match.start, match.end), str(phonenumbers.format_number(match.number, _E164)), match.raw_string)
            for match in phonenumbers.PhoneNumberMatcher(
                text, self.region, leniency=phonenumbers.Leniency.VALID
            )
        )

    def _client_numbers(self, name: str, text: str, taken: list[Span], noise: LazyNoise) -> Iterator[Found]:
        for span, value, raw in self._matches(text):
            if overlaps(span, taken):
                continue
            # Noise last: most messages with a number need no noise spans at all.
            if value in self.company_numbers or _TOLL_FREE.match(value) or overlaps(span, noise.spans()):
                continue
            if _SOMEONE_ELSES.search(text[max(0, span[0] - 30) : span[0]]):
                continue  # "курьер звонил с ...", "звонили с номера ...": not the client's number
            yield Found(name, value, raw, *span)

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
