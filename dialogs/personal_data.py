"""What personal data looks like in a client's text, and the two ways it is hidden: partly for logs (a
developer may still tell two numbers apart: `+7913***4567`), wholly for editors' pages (a placeholder that
groups alike: «[телефон]»).

Full card numbers and CVV codes are found by dialogs/details/card.py (Luhn, cues); phones, emails, contract
and account numbers and addresses by the patterns here, which the log masking (bot/logmask.py) and the
misunderstood inbox share.
"""

from __future__ import annotations

import functools
import re

from dialogs.details.card import REDACTED_CVV, redact_card_data

# Logged texts are often repr()s: a "\n" escape before a number is a line break, not a letter.
_NOT_AFTER_WORD = r"(?:(?<![\w*])|(?<=\\[nt]))"
EMAIL = re.compile(r"(?<![\w.+-])([\w.+-])[\w.+-]{0,63}@([\w-]{1,63}(?:\.[\w-]{1,63}){1,8})")
# A phone: 10-15 digits, maybe with +, spaces, dashes, dots or brackets between them.
PHONE = re.compile(r"(?:(?<![\w+])|(?<=\\[nt]))\+?\d(?:[\s\-.()]{0,3}\d){9,14}(?!\w)")
# Contract and account numbers and other long digit runs: 5-9 digits standing alone.
NUMBER = re.compile(rf"{_NOT_AFTER_WORD}\d{{5,9}}(?![\w*])")
# Accounts (20 digits) and other runs too long for a phone, in groups or not ("40817 810 0 9999 1234567"):
# masked whole before the phone and number rules could leave most of their groups readable. Not the
# fraction of a timing ("0.0038779999123456").
LONG_NUMBER = re.compile(rf"{_NOT_AFTER_WORD}(?<!\d[.,])\d(?:[ \u00a0]?[-–]?[ \u00a0]?\d){{15,}}(?![\w*])")

# Addresses. Hiding is no place to weigh whether "Ленина 5" is a street: a street marker, a house or flat
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

# Names, where a client's words give them away: a full name with a patronymic ("Иванов Иван Иванович",
# "Анна Сергеевна Смирнова"), a surname with initials ("Петров И.И."), and whatever follows "меня зовут"
# and the like (the first word in any case, then up to two more that are no everyday word). The whole
# names go first: the cue's rule would take "Петров" and leave "И.И.".
_CAPITAL = r"[А-ЯЁ][а-яё\-]+"
_EVERYDAY = (
    r"и|а|но|или|у|я|мне|меня|мой|моя|мои|не|нет|да|это|вот|по|в|во|на|с|со|к|о|об|из|за|что|как|когда|уже"
    r"|тут|здесь|хочу|можно|подскажите|пожалуйста|договор|номер|телефон|карта|счёт|счет|интернет"
)
_NAME_WORD = rf"(?!(?i:{_EVERYDAY})(?![а-яёa-z]))[А-ЯЁA-Zа-яёa-z][а-яёa-z\-]*"
_NAME_CUE = (
    r"(?<![а-яёА-ЯЁ])(?i:меня\s+зовут|зовут\s+меня|мо[её]\s+имя|моя\s+фамилия|фио|с\s+уважением|на\s+имя)"
)
_NAME_PATTERNS = (
    rf"(?P<name>(?:{_CAPITAL}\s+){{1,2}}[А-ЯЁ][а-яё]+(?:ович|евич|ьич|овна|евна|ична|инична)(?![а-яё])(?:\s+{_CAPITAL})?)",
    rf"(?P<name>{_CAPITAL}\s+[А-ЯЁ]\.\s?[А-ЯЁ]\.?|[А-ЯЁ]\.\s?[А-ЯЁ]\.\s?{_CAPITAL})",
    rf"{_NAME_CUE}\s*[:,\-—–]?\s*(?P<name>{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,2}})",
)

# What editors' pages show instead (the inbox groups "позвоните на [телефон]" from every number alike).
HIDDEN_CARD = "[карта]"
HIDDEN_CODE = "[код]"
HIDDEN_EMAIL = "[почта]"
HIDDEN_ADDRESS = "[адрес]"
HIDDEN_NUMBER = "[номер]"
HIDDEN_PHONE = "[телефон]"
HIDDEN_NAME = "[имя]"
_REDACTED_CARD = re.compile(r"\[карта ••••\d{4}\]")


@functools.cache
def address_patterns() -> tuple[re.Pattern[str], ...]:
    """The address patterns, compiled at the first use rather than at import: they take ~5 ms, which a
    `tonebot chat` that logs nothing would spend on every start."""
    return tuple(re.compile(pattern) for pattern in _ADDRESS_PATTERNS)


@functools.cache
def _name_patterns() -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(pattern) for pattern in _NAME_PATTERNS)


def _hide_name(found: re.Match[str]) -> str:
    start, end = found.span("name")
    whole = found.group(0)
    offset = found.start()
    return whole[: start - offset] + HIDDEN_NAME + whole[end - offset :]


def hide_personal_data(text: str) -> str:
    """The text with every piece of personal data it can find replaced by a placeholder: card numbers and
    CVV codes, emails, addresses, account, contract and other long numbers, phones, names.

    For pages people other than the client's operator read (the editors' misunderstood inbox): nothing of
    the value is left, not even the last digits."""
    text = redact_card_data(text)
    text = _REDACTED_CARD.sub(HIDDEN_CARD, text).replace(REDACTED_CVV, HIDDEN_CODE)
    text = EMAIL.sub(HIDDEN_EMAIL, text)
    for address in address_patterns():
        text = address.sub(HIDDEN_ADDRESS, text)
    text = LONG_NUMBER.sub(HIDDEN_NUMBER, text)
    text = PHONE.sub(HIDDEN_PHONE, text)
    text = NUMBER.sub(HIDDEN_NUMBER, text)
    for name in _name_patterns():
        text = name.sub(_hide_name, text)
    return text
