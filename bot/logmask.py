"""Personal data never reaches the logs in the clear: phones, emails, contract and account numbers and
addresses are masked, full card numbers and CVV codes removed, in every log record (message, arguments and
tracebacks) before any handler sees it."""

from __future__ import annotations

import functools
import logging
import re
import traceback
from typing import Any

from dialogs.details.card import redact_card_data

# Logged texts are often repr()s: a "\n" escape before a number is a line break, not a letter.
_NOT_AFTER_WORD = r"(?:(?<![\w*])|(?<=\\[nt]))"
_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]{0,63}@([\w-]{1,63}(?:\.[\w-]{1,63}){1,8})")
# A phone: 10-15 digits, maybe with +, spaces, dashes, dots or brackets between them.
_PHONE = re.compile(r"(?:(?<![\w+])|(?<=\\[nt]))\+?\d(?:[\s\-.()]{0,3}\d){9,14}(?!\w)")
# Contract and account numbers and other long digit runs: 5-9 digits standing alone.
_NUMBER = re.compile(rf"{_NOT_AFTER_WORD}\d{{5,9}}(?![\w*])")
# Accounts (20 digits) and other runs too long for a phone, in groups or not ("40817 810 0 9999 1234567"):
# masked whole before the phone and number rules could leave most of their groups readable. Not the
# fraction of a timing ("0.0038779999123456").
_LONG_NUMBER = re.compile(rf"{_NOT_AFTER_WORD}(?<!\d[.,])\d(?:[ \u00a0]?[-–]?[ \u00a0]?\d){{15,}}(?![\w*])")

# Addresses. A log is no place to weigh whether "Ленина 5" is a street: a street marker, a house or flat
# word, or a "Name 7-12" shape is enough, and the city before it goes too.
_MARKER = (
    r"(?<![а-яёa-z])(?:ул(?:иц\w*)?|пр(?:-?к?т|осп(?:ект\w*)?|-д|оезд\w*)?|пер(?:еул\w*)?|б-р|бул(?:ьвар\w*)?"
    r"|ш(?:оссе)?|наб(?:ережн\w*)?|мкрн?|микрорайон\w*|пл(?:ощад\w*)?|туп(?:ик\w*)?|тракт[а-я]?|алле[яие]"
    r"|кв-л|квартал[а-я]?|пос(?:[её]л\w*)?|снт|жк)(?![а-яёa-z])\.?"
)
_CITY = r"(?:(?<![а-яё])(?:г|гор|город)\.?\s*[А-ЯЁ][а-яё\-]+,?\s*)?"
_HOUSE_WORD = r"(?:(?:д|дом)\.?\s*)"
_HOUSE = r"\d{1,4}(?:\s?[а-яa-z](?![а-яёa-z]))?(?:\s?[/\\]\s?\d{1,4}[а-я]?)?"
_PARTS = r"(?:,?\s*(?:к|корп(?:ус)?|стр(?:оение)?|под(?:ъезд)?|эт(?:аж)?)\.?\s*\d{1,3}(?!\d))*"
# A flat after a dash must not be a count or a span of time ("3-4 дня", "9-18 ч").
_NOT_FLAT = r"(?![\d.:,]\d|\s*(?:дн|дей|раз|час|ч\b|мин|сек|руб|р\.|₽|тыс|недел|мес|лет|год|%))"
_DASH_FLAT = rf"\s*[-–]\s*\d{{1,4}}{_NOT_FLAT}"
_WORD_FLAT = r",?\s*(?:кв(?:артир\w*)?|оф(?:ис)?|комн(?:ат\w*)?)\.?\s*\d{1,4}"
_ADDRESS_PATTERNS = (
    # "ул. Ленина, д. 15, кв. 42", "пр-т Мира 10", "мкр. Северный 3/1"
    (
        rf"(?i){_CITY}{_MARKER}\s*[^\n,;\d'\"]{{1,60}}?,?\s*{_HOUSE_WORD}?{_HOUSE}{_PARTS}"
        rf"(?:{_WORD_FLAT}|{_DASH_FLAT})?{_PARTS}"
    ),
    # "г. Москва, Тверская 7-12", "Москва Тверская д 7 кв 12", "Ленина, д. 5"
    (
        rf"{_CITY}[А-ЯЁ][а-яё\-]{{2,40}}(?:,?\s+[А-ЯЁ][а-яё\-]{{2,40}}){{0,2}}(?![а-яё]),?\s*"
        rf"(?:{_HOUSE_WORD}{_HOUSE}{_PARTS}(?:{_WORD_FLAT}|{_DASH_FLAT})?|{_HOUSE}{_PARTS}(?:{_WORD_FLAT}|{_DASH_FLAT}))"
        rf"{_PARTS}"
    ),
    # "москва тверская д 7 кв 12", "гоголя 15 кв 9": lower case only with a house or flat word.
    (
        rf"(?i)(?<![а-яё])[а-яё]{{3,40}}(?:,?\s+[а-яё]{{3,40}}){{0,2}}(?![а-яё]),?\s*"
        rf"(?:{_HOUSE_WORD}{_HOUSE}{_PARTS}(?:{_WORD_FLAT}|{_DASH_FLAT})?|{_HOUSE}{_PARTS}{_WORD_FLAT}){_PARTS}"
    ),
    # What is left of one: a house or flat number named as such ("дом 7", "кв. 12").
    rf"(?i)(?<![а-яё])(?:{_HOUSE_WORD}{_HOUSE}|{_WORD_FLAT.removeprefix(',?')}){_PARTS}",
)


@functools.cache
def _addresses() -> tuple[re.Pattern[str], ...]:
    # Compiled at the first record masked, not at import: they take ~5 ms, which a `tonebot chat` that
    # logs nothing would spend on every start.
    return tuple(re.compile(pattern) for pattern in _ADDRESS_PATTERNS)


# An address the engine recognised, as the turn log shows it ("'new_address': 'Тверская 7'"): its value
# is masked wherever it stands in the record, whatever its form.
_ADDRESS_DETAIL = re.compile(r"""(['"])\w*address\w*\1\s*:\s*(['"])((?:(?!\2)[^\n\\]|\\.){1,300})\2""")
_MASKED_ADDRESS = "[адрес скрыт]"


def _mask_phone(found: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", found.group(0))
    plus = "+" if found.group(0).startswith("+") else ""
    return f"{plus}{digits[:4]}***{digits[-4:]}"


def _mask_number(found: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", found.group(0))
    return f"{digits[:2]}***{digits[-2:]}"


def _mask_addresses(text: str) -> str:
    recognised = {match.group(3) for match in _ADDRESS_DETAIL.finditer(text)}
    for value in sorted(recognised, key=len, reverse=True):
        # A value too short to be an address ("12") would mask every such digit pair in the record.
        if len(value.strip()) >= 4 and value != _MASKED_ADDRESS:
            text = text.replace(value, _MASKED_ADDRESS)
    for address in _addresses():
        text = address.sub(_MASKED_ADDRESS, text)
    return text


def mask(text: str) -> str:
    """The text with personal data masked: `+7913***4567`, `i***@mail.ru`, `12***67`, `[адрес скрыт]`,
    `[карта ••••5432]`, `[код CVV скрыт]`."""
    text = redact_card_data(text)
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    text = _mask_addresses(text)
    text = _LONG_NUMBER.sub(_mask_number, text)
    text = _PHONE.sub(_mask_phone, text)
    return _NUMBER.sub(_mask_number, text)


class _MaskingRecordFactory:
    """Wraps the logging record factory: the record's text is masked once, at creation."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.original(*args, **kwargs)
        try:
            record.msg, record.args = mask(record.getMessage()), None
            if record.exc_info and record.exc_info[0] is not None:
                record.exc_text = mask("".join(traceback.format_exception(*record.exc_info)).rstrip())
                record.exc_info = None
            if record.stack_info:
                record.stack_info = mask(record.stack_info)
        except Exception:  # a record that cannot be formatted is left to logging's own error report
            pass
        return record


def install_masking() -> None:
    """Mask personal data in every log record of this process, whatever handler writes it."""
    current = logging.getLogRecordFactory()
    if not isinstance(current, _MaskingRecordFactory):
        logging.setLogRecordFactory(_MaskingRecordFactory(current))
