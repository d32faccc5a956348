"""Sums of money as clients write them: "1500 р", "1 500,50 ₽", "15 тыс", "2к", "полторы тысячи"."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from dialogs.details.base import Found, Invalid, Span, overlaps

_NUMBER = r"\d{1,3}(?:[ \u00a0]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_UNIT = (
    r"(?P<unit>₽|руб\w*|р\b\.?|р\.|rub\b|тыс\w*\.?|т\.?\s?р\.?|тр\b|к\b|k\b|млн\w*|\$|usd|долл\w*|eur|евро)"
)
_AMOUNT = re.compile(rf"(?<![\d.,])(?P<number>{_NUMBER})\s*{_UNIT}", re.IGNORECASE)
# A sum announced by what was done with it: "перевёл 5000", "на сумму 1 500", "перевод на 3000".
_CUED = re.compile(
    rf"(?i)(?:перев[её]\w*|перевод\w*|заплатил\w*|оплатил\w*|отправил\w*|скинул\w*|закинул\w*|внес\w*"
    rf"|сумм\w*|списал\w*|сняли|пришло|пришли)[\s,]+(?:на\s+|в\s+размере\s+)?"
    # A few words may stand between: "перевёл сестре 15 000", "скинул маме 3000", "переводом, 12 000".
    rf"(?:[а-яё]+[\s,]+){{0,3}}?(?P<number>{_NUMBER})(?![\d:/\-]|[.,]\d|\s*(?:%|мин|час|дн|недел|месяц|раз|числ|шт|г\b|год))"
)
_BARE = re.compile(rf"(?<![\d.,:/\-])(?P<number>{_NUMBER})(?![\d,:/\-]|[.]\d|\s*(?:%|мин|час|дн|руб))")
_THOUSANDS = ("т.р", "тр", "к", "k", "т")
_WORDS = {"полторы тысячи": "1500", "тысячу": "1000", "тысяча": "1000", "сотку": "100", "пятихатку": "500"}
MAX_AMOUNT = Decimal("1000000000")
_YEAR = re.compile(r"(?:19|20)\d\d")


def _value(number: str, unit: str) -> Decimal | None:
    try:
        amount = Decimal(number.replace(" ", "").replace("\u00a0", "").replace(",", "."))
    except InvalidOperation:
        return None
    unit = unit.lower().replace(" ", "").rstrip(".")
    if unit.startswith("тыс") or unit in _THOUSANDS:
        amount *= 1000
    elif unit.startswith("млн"):
        amount *= 1_000_000
    return amount


def _text(amount: Decimal) -> str:
    normal = amount.quantize(Decimal("0.01"))
    return str(int(normal)) if normal == normal.to_integral() else str(normal)


class MoneyFinder:
    """Finds an amount of money; when asked, a bare number is taken as the sum."""

    def __init__(self, name: str) -> None:
        self.name = name

    def find(
        self, text: str, taken: list[Span], *, asked: bool, beside: bool = False
    ) -> Found | Invalid | None:
        """The first sum in text (with a currency or unit), or a bare number when the sum was asked; `beside`
        another answer, a bare number of three digits or more that is no year or time."""
        for match in _AMOUNT.finditer(text):
            if overlaps(match.span(), taken):
                continue
            amount = _value(match.group("number"), match.group("unit"))
            if amount is not None and 0 < amount <= MAX_AMOUNT:
                return Found(self.name, _text(amount), match.group().strip(), *match.span())
        for match in _CUED.finditer(text):
            span = match.span("number")
            if overlaps(span, taken):
                continue
            amount = _value(match.group("number"), "")
            if amount is not None and 0 < amount <= MAX_AMOUNT:
                return Found(self.name, _text(amount), match.group("number"), *span)
        lowered = text.lower()
        for words, value in _WORDS.items():
            if words in lowered and asked:
                return Found(self.name, value, words)
        if beside and not asked:
            for match in _BARE.finditer(text):
                digits = match.group("number").replace(" ", "").replace("\u00a0", "")
                if overlaps(match.span(), taken) or len(digits) < 3 or _YEAR.fullmatch(digits):
                    continue
                amount = _value(match.group("number"), "")
                if amount is not None and 100 <= amount <= MAX_AMOUNT:
                    return Found(self.name, _text(amount), match.group().strip(), *match.span())
        if not asked:
            return None
        for match in _BARE.finditer(text):
            if overlaps(match.span(), taken):
                continue
            amount = _value(match.group("number"), "")
            if amount is not None and 0 < amount <= MAX_AMOUNT:
                return Found(self.name, _text(amount), match.group().strip(), *match.span())
        return Invalid(self.name, "money_unclear")
