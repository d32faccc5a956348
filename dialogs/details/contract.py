"""Contract and account numbers: a configurable pattern, announced by cue words or asked for."""

from __future__ import annotations

import re

from dialogs.details.base import DetailSpec, Found, Invalid, Span, overlaps
from dialogs.details.newest import newest
from dialogs.details.noise import LazyNoise, measure_spans

DEFAULT_PATTERN = r"\d{5,10}"
DEFAULT_CUES = ("договор", "дог.", "лицев", "л/с", "лс", "л.с", "счет", "счёт", "№", "абонентск", "contract")
_DIGITS = re.compile(r"(?<![\d+])\d+(?![\d])")
# Words right before a bare number that make it something other than a contract.
_NOT_CONTRACT_BEFORE = re.compile(
    r"(?:дом|д\.|кв\w*|квартир\w*|подъезд\w*|этаж\w*|офис\w*|индекс\w*|корп\w*|строени\w*|стр\.|"
    r"телефон\w*|тел\.|номер телефона|моб\w*|паспорт\w*|сери\w*|инн|снилс|огрн\w*|кпп|бик|карт\w*|"
    r"к/с|кс|корр?\.?\s*сч\w*|корреспондент\w*(?:\s+сч\w*)?|заказ\w*|трек\w*|накладн\w*|код\w*|"
    r"артикул\w*|банкомат\w*|терминал\w*|адрес\w*|индекс\w*|imei|iccid|puk|пук|заявк\w*|операци\w*|"
    r"обращени\w*|тикет\w*|транзакци\w*|платеж\w*|платёж\w*|перевод\w*|возврат\w*(?:\s+[a-z]+-?)?)"
    r"\s*[:№.]?\s*$",
    re.IGNORECASE,
)
# Words a little further back that make the number theirs: "пароль от wi-fi 12345678".
_NOT_CONTRACT_NEAR = re.compile(
    r"(?i)(?:(?:парол\w*|артикул\w*|банкомат\w*|трек\w*|заявк\w*|операци\w*)[^\d\n]{0,15}"
    # An order or a loyalty card may be named further back: "заказ через приложение, номер ...".$
    r"|(?:заказ\w*|лояльност\w*)[^\d\n]{0,25}"
    # ... and a word or two after "БИК", "ИНН", a receipt: "БИК банка 0445...", "чек № 000456".
    r"|(?<![а-яёa-z])(?:бик|инн|кпп|огрн\w*|снилс|чек\w*|квитанци\w*)[^\d\n]{0,15})$"
)
# A passport's series and number ("4509 112233") anywhere in a message that speaks of a passport.
_PASSPORT_SHAPE = re.compile(r"(?<!\d)\d{2}\s?\d{2}\s\d{6}(?!\d)")
_PASSPORT_WORD = re.compile(r"(?i)паспорт")
# A six-digit postal index opens an address: "644043, г. Омск".
_INDEX_AFTER = re.compile(r"^\s*,?\s*(?:г\.|город|обл|р-н|[А-ЯЁ][а-яё]+(?:ск|бург|град|ово|ево|ино)\b)")
# A mobile number, with or without the 8 or 7: read as a phone, not as a number announced by "номер".
_MOBILE = re.compile(r"^(?:[78]\d{10}|9\d{9})$")
# Without a cue and unasked, a number is taken for a contract only in the lengths contracts usually have.
BARE_DIGITS = range(6, 11)
# "тел.", "моб." as words: "покупателя" has a "тел" of its own.
_PHONE_CUE = re.compile(r"(?i)(?<![а-яё])(?:тел|моб)")
PHONE_CUE_REACH = 20
# A correspondent account (always 301...) and a BIK (04...) are the bank's, never the client's.
_BANKS_OWN = re.compile(r"^(?:30101\d{15}|04\d{7})$")
# A number as written after a cue: digits in groups joined by dashes or slashes ("19-0034567",
# "81-44-920-3", "36-ИП-2021-889", "11/07-Р-552"), or by single spaces ("77 00 12 89 0", an account
# "40817 810 0 1234 5678901") when every group is short.
_GROUPED = re.compile(r"\d+(?:(?:[-–/.]|[-–/]?[A-Za-zА-Яа-яЁё]{1,3}[-–/])\d+)*")
_DOTTED_DATE = re.compile(r"\d{1,2}\.\d{1,2}(?:\.\d{2,4})?")
_SPACED = re.compile(r"\d{1,8}(?: \d{1,8}){1,7}")
# "8 913", "+7 923": where a phone number starts after a contract.
_PHONE_START = re.compile(r"^[78] 9\d\d\b")
ACCOUNT_DIGITS = 20
POSTAL_INDEX_DIGITS = 6
# Passport data come as "серия 4510 номер 123456" or "паспорт 4510 123456": numbers near these are theirs.
_PASSPORT_NEAR = re.compile(r"(?i)(?:паспорт\w*|сери[яи]|выдан\w*)[^\n]{0,20}$")

# Words right after a bare number that say what it is: "551122 — номер заявки".
_NOT_CONTRACT_AFTER = re.compile(
    r"^\s*[-—–,:)]?\s*(?:это\s+|—\s+)?(?:и\s+)?(?:номер\s+|№\s*)?(?:мо[ейя]\w*\s+|ваш\w*\s+)?"
    r"(?:заявк|заказ|обращени|тикет|трек|чек|квитанц|инцидент|наряд|кода?\b|парол|пин)",
    re.IGNORECASE,
)


class ContractFinder:
    """Finds contract numbers; `cued` ones are announced by a cue word, bare ones only when plausible."""

    def __init__(self, name: str, spec: DetailSpec) -> None:
        self.name = name
        self.pattern = re.compile(spec.pattern or DEFAULT_PATTERN)
        cues = spec.cues or list(DEFAULT_CUES)
        alternatives = "|".join(re.escape(c.lower()) for c in sorted(cues, key=len, reverse=True))
        self.cued_re = re.compile(
            rf"(?<![а-яёa-z0-9])(?:{alternatives})[^\d\n]{{0,30}}?(?<![\d+])"
            rf"(\d(?:[\d \-–/.]|[A-Za-zА-Яа-яЁё]{{1,3}}(?=[-–/]))*\d|\d)(?!\d)",
            re.IGNORECASE,
        )
        self._generic_cues = re.compile(r"(?i)(?:номер\w*|№|id)[^\d\n]{0,30}$")

    def find_cued(self, text: str, taken: list[Span], noise: LazyNoise) -> Found | Invalid | None:
        """A number announced as a contract or account ("договор 1234567", "л/с: 0012345", "№ 19-0034567",
        "счёт 40817 810 0 1234 5678901"); its value is its digits. Of two ("не 1122-33, а 1122-38") the one
        the client says is right."""
        found: list[Found] = []
        invalid: Invalid | None = None
        for match in self.cued_re.finditer(text):
            start = match.start(1)
            if _PHONE_START.match(match.group(1)):
                continue  # "мой номер 8 913 ..." is a phone
            written = self._number_at(match.group(1))
            if _DOTTED_DATE.fullmatch(written):
                continue  # "договор от 12.03.2021 № 556-12": the date is not the number
            span = (start, start + len(written))
            before = text[:start]
            if (
                overlaps(span, taken)
                or self._is_phone_cue(text, start)
                or _NOT_CONTRACT_BEFORE.search(before)
                or _NOT_CONTRACT_NEAR.search(before)
                or _PASSPORT_NEAR.search(before)
                or _in_passport_data(text, span)
                # Announced as a contract, a number keeps its dashes and letters ("K-3378812", "11/07-Р-552"):
                # only a unit after it ("договор на 500 ₽") makes it something else.
                or overlaps(span, measure_spans(text))
            ):
                continue
            digits = re.sub(r"\D", "", written)
            if _BANKS_OWN.match(digits):
                continue
            if _MOBILE.match(digits) and self._generic_cues.search(before[-40:]):
                continue  # "мой номер 9133331122" is a phone
            if self.pattern.fullmatch(digits):
                found.append(Found(self.name, digits, written, *span))
            elif invalid is None:
                invalid = Invalid(self.name, "contract_pattern", digits)
        if found:
            return newest(found, text)[0]
        return invalid

    def _number_at(self, written: str) -> str:
        """The number a cue announces. Spaced groups are joined while the digits so far make a number of the
        company's pattern ("77 00 12 89 0", "8812 0034 45"); a first group that is a number by itself is
        joined only into a 20-digit account ("40817810 7 55 00 1 000123"), and never with a phone after it."""
        spaced = _SPACED.match(written)
        if spaced:
            groups = spaced.group().split(" ")
            whole = self.pattern.fullmatch(groups[0]) is not None
            best = groups[0]
            for end in range(2, len(groups) + 1):
                if _PHONE_START.match(" ".join(groups[end - 1 : end + 1])):
                    break
                joined = " ".join(groups[:end])
                digits = joined.replace(" ", "")
                if len(digits) == ACCOUNT_DIGITS or (not whole and self.pattern.fullmatch(digits)):
                    best = joined
            if best != groups[0]:
                return best
        grouped = _GROUPED.match(written)
        return grouped.group() if grouped else written

    def find_bare(
        self, text: str, taken: list[Span], noise: LazyNoise, *, asked: bool
    ) -> Found | Invalid | None:
        """A number given without a cue: taken when asked for, or when it can hardly be anything else."""
        for match in _DIGITS.finditer(text):
            digits = match.group()
            usual = len(digits) in BARE_DIGITS or len(digits) == ACCOUNT_DIGITS
            fits = self.pattern.fullmatch(digits) is not None and (asked or usual)
            if not fits and not asked:
                # Unasked, a number that does not fit is passed over whatever surrounds it.
                continue
            span = match.span()
            if (
                overlaps(span, taken)
                or _NOT_CONTRACT_BEFORE.search(text[: span[0]])
                or _PASSPORT_NEAR.search(text[: span[0]])
                or _in_passport_data(text, span)
                or _NOT_CONTRACT_NEAR.search(text[: span[0]])
                or _NOT_CONTRACT_AFTER.search(text[span[1] : span[1] + 40])
                or (len(digits) == POSTAL_INDEX_DIGITS and _INDEX_AFTER.match(text[span[1] : span[1] + 30]))
                or overlaps(span, noise.spans())
            ):
                continue
            if fits:
                return Found(self.name, digits, digits, *span)
            return Invalid(self.name, "contract_pattern", digits)  # only asked gets here
        return None

    @staticmethod
    def _is_phone_cue(text: str, digits_start: int) -> bool:
        # Looked for a little further back, so a word cut by the window ("...тель") is not taken for one.
        start = max(0, digits_start - PHONE_CUE_REACH - 10)
        return any(
            m.start() + start >= digits_start - PHONE_CUE_REACH
            for m in _PHONE_CUE.finditer(text[start:digits_start])
        )


def _in_passport_data(text: str, span: Span) -> bool:
    """Whether a number is part of a passport's series and number in a message about a passport."""
    if _PASSPORT_WORD.search(text) is None:
        return False
    return any(
        match.start() <= span[0] and span[1] <= match.end() for match in _PASSPORT_SHAPE.finditer(text)
    )
