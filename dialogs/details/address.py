"""Postal addresses: a street marker or a "Street 12" shape, expanded to the surrounding address words."""

from __future__ import annotations

import re
from collections.abc import Iterator

from common.text import shared_lemmatizer
from dialogs.details.base import Found, Invalid, Span, overlaps
from dialogs.details.noise import measure_spans
from dialogs.details.when import when_spans

_STREET_MARKERS = (
    r"ул\.?|улиц[аеуы]|пр-?т\.?|пр\.|просп\.?|проспект\w*|пер\.?|переул\w*|б-р|бул\.?|бульвар\w*|ш\.|шоссе|"
    r"пл\.|площад\w*|наб\.?|набережн\w*|мкр\.?|мкрн\.?|микрорайон\w*|тракт\w*|проезд\w*|туп\.?|тупик\w*|"
    r"пр-д|аллея|аллее|снт|жк|кп|ст\.|станиц\w*|пос\.|п\.|посел\w*|с\.|село|дер\.|деревн\w*"
)
_HOUSE = r"\d{1,4}(?:\s?[а-яa-z](?![а-яa-z])\d{0,2})?(?:\s?[/\\]\s?\d{1,4}[а-я]?)?"
_FLAT = r"(?:\s*[-–]\s*\d{1,4}|,?\s*(?:кв\.?|квартира|кв-ра|оф\.?|офис)\s*\d{1,4})?"
_PARTS = r"(?:,?\s*(?:корп\.?|корпус|к\.|стр\.?|строение|под\.?|подъезд|этаж)\s*\d{1,3})*"
_HOUSE_WORD = r"(?:,?\s*(?:д\.?|дом|участок|уч\.)\s*)?"
_NAME = r"[А-ЯЁA-Z0-9][а-яёa-z0-9\-]{0,40}(?:\s+[А-ЯЁа-яё][а-яё\-]{0,40}){0,2}"
_CITY = (
    r"(?:(?:г\.?|город)\s*[А-ЯЁа-яё][а-яё\-]{1,40},?\s*"
    r"|[А-ЯЁ][а-яё\-]{1,40}(?:ск|ов|ин|град|бург|поль|ь),\s*)?"
)

_MARKER = rf"(?<![а-яёa-z])(?:{_STREET_MARKERS})(?![а-яёa-z])"
ADDRESS_RE = re.compile(
    rf"{_CITY}(?:(?:д\.?|дом[ае]?)\s*\d{{1,4}}[а-я]?\s*(?:по|на)?\s*,?\s*)?"
    rf"(?:{_MARKER}\s*{_NAME}|{_NAME}\s+{_MARKER})"
    rf"(?:,?\s*{_HOUSE_WORD}{_HOUSE})?{_PARTS}{_FLAT}{_PARTS}",
    re.IGNORECASE,
)
# "Кирова 86-15", "Ленина, 5": a capitalised street name straight before a house number.
BARE_RE = re.compile(
    rf"{_CITY}(?<![а-яёa-z])[А-ЯЁ][а-яё]{{2,40}}(?:\s+[А-ЯЁ]?[а-яё]{{1,40}})?,?\s*{_HOUSE_WORD}"
    rf"\d{{1,4}}(?:\s?[а-я](?![а-я]))?(?:\s?/\s?\d{{1,4}})?{_PARTS}{_FLAT}",
)
# "гоголя 15 кв 9": a lower-case street counts only with a flat number after the house.
LOWER_RE = re.compile(
    rf"(?<![а-яёa-z])[а-яё]{{3,40}}(?:\s+[а-яё]{{1,40}})?,?\s*{_HOUSE_WORD}"
    rf"\d{{1,4}}(?:\s?[а-я](?![а-я]))?(?:/\d{{1,4}})?"
    rf"{_PARTS}(?:,?\s*(?:кв\.?|квартира|кв-ра)\s*\d{{1,4}}|\s*-\s*\d{{1,4}}(?![\d.:]|\s*-\s*\d))"
)
_NOT_STREET = re.compile(
    # Words in any form ("заказа 4567-1234", "звонки на 8-800") ...
    r"^(?:(?:тариф|договор|номер|сч[её]т|заявк|заказ|скорост|интернет|оплат|баланс|телефон|пинг|звон|цифр|"
    r"последн|код|перев[её]л|заплатил|оплатил|списал|пришл|стоил|чек|квитанц|посылк|трек|артикул)[а-яё]*"
    # ... and these exactly.
    r"|до|после|в|на|с|к|по|от|около|примерно|уже|было|дом|кв|квартира|пришел|стоит|всего|итого|минус|плюс)"
    r"(?![а-яё])",
    re.IGNORECASE,
)
# A capitalised word after these is a tariff, a device or a brand, not a street.
_NOT_STREET_BEFORE = re.compile(
    r"(?:тариф\w*|модел\w*|роутер\w*|приставк\w*|пакет\w*|скорост\w*|опци\w*|услуг\w*|версии|прошивк\w*)"
    r"\s*[«\"']?\s*$",
    re.IGNORECASE,
)
_LEADING_FILLER = re.compile(
    r"^\s*(?:(?:мой|наш|новый|вот|это|мы|я)\s+)*(?:адрес\w*|живу|живём|живем|переезжаю|переезжаем)?"
    r"\s*(?:на|по|в|:|-|—)?\s*",
    re.IGNORECASE,
)
_HAS_NUMBER = re.compile(r"\d")
_FLAT_OR_HOUSE_WORD = re.compile(
    r"(?:кв|квартира|кв-ра|оф|офис|д\.|дом|корп|стр)|\d\s*[-–/]\s*\d|\d[а-я]\b", re.IGNORECASE
)
_FIRST_NUMBER = re.compile(r"\d+")
# The street name of a bare "Name 12": the last capitalised word before the number.
_NAME_WORD = re.compile(r"[А-ЯЁ][а-яё]{2,40}(?=[^А-ЯЁа-яё\d]*(?:[а-яё]+\s+)?\d)")
# "20 декабря на ул. ...": a date before a street marker is no street name.
_MONTH = re.compile(r"(?i)\d\s*(?:январ|феврал|март|апрел|ма[яй]|июн|июл|август|сентябр|октябр|ноябр|декабр)")
_ENDS_WITH_MARKER = re.compile(rf"(?:{_STREET_MARKERS})\.?$", re.IGNORECASE)
# Case endings of ordinary nouns ("в конце 35-35"); street names come in the genitive or as adjectives.
_NOT_STREET_ENDINGS = ("е", "у", "ю", "ом", "ем", "ах", "ях", "ми", "ии")
BARE_MAX_HOUSE = 400
_PUNCT_EDGES = " ,.;:!?-—()\"'«»\n\t"


# Cheap tests that a text can hold a match at all, each a part every match of its regex must contain.
_HAS_MARKER = re.compile(_MARKER, re.IGNORECASE)  # ADDRESS_RE: a street marker
_HAS_CAPITAL_WORD = re.compile(r"[А-ЯЁ][а-яё]{2}")  # BARE_RE: a capitalised street name
_HAS_FLAT = re.compile(r"кв|-\s*\d")  # LOWER_RE: a flat number, "кв 9" or "-9"
_PREFILTERS = ((ADDRESS_RE, _HAS_MARKER), (BARE_RE, _HAS_CAPITAL_WORD), (LOWER_RE, _HAS_FLAT))


def _overlapping(regex: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Matches that may start inside a rejected one ("живём на ул. Гоголя": not "живём на ул")."""
    position = 0
    while (match := regex.search(text, position)) is not None:
        yield match
        position = match.start() + 1


# Readings of a capitalised word that a street name can have: a surname, a name, a place, an adjective
# ("Советская"), a noun in the genitive ("Победы", "Мира"). A verb ("Обещали"), an adverb ("Почему") or a
# common noun in the nominative ("Возврат", "Кредит") is the start of a sentence, not a street.
_STREET_READINGS = frozenset({"Surn", "Name", "Patr", "Geox", "Orgn", "Fixd", "ADJF", "gent", "UNKN"})


def _street_like(word: str) -> bool:
    readings = shared_lemmatizer().analyses(word.lower())
    return any(reading & _STREET_READINGS for reading in readings)


def _plausible_bare(raw: str) -> bool:
    """A bare "Name 12" needs a name that can be a street's, and a flat, a house word, or a modest house
    number to be an address."""
    first = _NAME_WORD.match(raw)
    if first is not None and not _street_like(first.group()):
        return False
    if _FLAT_OR_HOUSE_WORD.search(raw):
        return True
    number = _FIRST_NUMBER.search(raw)
    # Length first: int() refuses over 4,300 digits (and a number that long is no house anyway).
    return number is not None and len(number.group()) <= 9 and int(number.group()) <= BARE_MAX_HOUSE


class AddressFinder:
    """Finds a postal address in free text; when asked, accepts the message itself as the address."""

    def __init__(self, name: str) -> None:
        self.name = name

    @staticmethod
    def _plausible(regex: re.Pattern[str], raw: str) -> bool:
        if regex is BARE_RE:
            return _plausible_bare(raw)
        if regex is LOWER_RE:
            first = raw.split()[0].strip(",").lower()
            return not first.endswith(_NOT_STREET_ENDINGS)
        return True

    def find(self, text: str, taken: list[Span], *, asked: bool) -> Found | Invalid | None:
        """The first address in text, or (when asked) the text itself if it reads as one. Numbers with a
        unit (percentages, speeds, sums) and dates are never part of an address."""
        blocked: list[Span] | None = None  # found when first needed: most texts hold no candidate
        # Every address found in text holds a digit, so text without one needs no regex passes.
        for regex, prefilter in _PREFILTERS if _HAS_NUMBER.search(text) else ():
            if prefilter.search(text) is None:
                continue
            for match in _overlapping(regex, text):
                raw = match.group().strip(_PUNCT_EDGES)
                if blocked is None:
                    blocked = [*measure_spans(text), *when_spans(text)]
                if (
                    overlaps(match.span(), taken)
                    or overlaps(match.span(), blocked)
                    or _MONTH.search(raw)
                    or _ENDS_WITH_MARKER.search(raw)
                    or _NOT_STREET.match(raw)
                    or _NOT_STREET_BEFORE.search(text[: match.start()])
                    or not _HAS_NUMBER.search(raw)
                    or not self._plausible(regex, raw)
                ):
                    continue
                return Found(self.name, raw, raw, *match.span())
        if not asked:
            return None
        if blocked is None:
            blocked = [*measure_spans(text), *when_spans(text)]
        if blocked:
            return None
        candidate = _LEADING_FILLER.sub("", text, count=1).strip(_PUNCT_EDGES)
        if len(candidate) < 4:
            return None
        if not _HAS_NUMBER.search(candidate):
            return Invalid(self.name, "address_no_house", candidate)
        return Found(self.name, candidate, candidate, 0, len(text))
