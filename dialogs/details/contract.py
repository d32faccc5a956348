"""Contract and account numbers: a configurable pattern, announced by cue words or asked for."""

from __future__ import annotations

import re

from dialogs.details.base import DetailSpec, Found, Invalid, Span, overlaps
from dialogs.details.noise import LazyNoise

DEFAULT_PATTERN = r"\d{5,10}"
DEFAULT_CUES = ("договор", "дог.", "лицев", "л/с", "лс", "л.с", "счет", "счёт", "№", "абонентск", "contract")
_DIGITS = re.compile(r"(?<![\d+])\d+(?![\d])")
# Words right before a bare number that make it something other than a contract.
_NOT_CONTRACT_BEFORE = re.compile(
    r"(?:дом|д\.|кв\w*|квартир\w*|подъезд\w*|этаж\w*|офис\w*|индекс\w*|корп\w*|строени\w*|стр\.|"
    r"телефон\w*|тел\.|номер телефона|моб\w*|паспорт\w*|сери\w*|инн|снилс|огрн\w*|кпп|бик|карт\w*|"
    r"к/с|кс|корр?\.?\s*сч\w*|корреспондент\w*(?:\s+сч\w*)?|заказ\w*|трек\w*|накладн\w*|код\w*)"
    r"\s*[:№.]?\s*$",
    re.IGNORECASE,
)
# A correspondent account (always 301...) and a BIK (04...) are the bank's, never the client's.
_BANKS_OWN = re.compile(r"^(?:30101\d{15}|04\d{7})$")
# A number as written after a cue: digits in groups joined by dashes or slashes ("19-0034567",
# "81-44-920-3"), or by single spaces when together they make a 20-digit account.
_GROUPED = re.compile(r"\d+(?:[-–/]\d+)*")
_SPACED = re.compile(r"\d+(?: \d+){1,6}")
ACCOUNT_DIGITS = 20
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
            rf"(?:{alternatives})[^\d\n]{{0,30}}?(?<![\d+])(\d[\d \-–/]*\d|\d)(?!\d)", re.IGNORECASE
        )

    def find_cued(self, text: str, taken: list[Span], noise: LazyNoise) -> Found | Invalid | None:
        """A number announced as a contract or account ("договор 1234567", "л/с: 0012345", "№ 19-0034567",
        "счёт 40817 810 0 1234 5678901"); its value is its digits."""
        for match in self.cued_re.finditer(text):
            start = match.start(1)
            written = _number_at(match.group(1))
            span = (start, start + len(written))
            if (
                overlaps(span, taken)
                or self._is_phone_cue(text, start)
                or _NOT_CONTRACT_BEFORE.search(text[:start])
                or _PASSPORT_NEAR.search(text[:start])
                or overlaps(span, noise.spans())
            ):
                continue
            digits = re.sub(r"\D", "", written)
            if _BANKS_OWN.match(digits):
                continue
            if self.pattern.fullmatch(digits):
                return Found(self.name, digits, written, *span)
            return Invalid(self.name, "contract_pattern", digits)
        return None

    def find_bare(
        self, text: str, taken: list[Span], noise: LazyNoise, *, asked: bool
    ) -> Found | Invalid | None:
        """A number given without a cue: taken when asked for, or when it can hardly be anything else."""
        for match in _DIGITS.finditer(text):
            digits = match.group()
            fits = self.pattern.fullmatch(digits) is not None and (asked or len(digits) >= 6)
            if not fits and not asked:
                # Unasked, a number that does not fit is passed over whatever surrounds it.
                continue
            span = match.span()
            if (
                overlaps(span, taken)
                or _NOT_CONTRACT_BEFORE.search(text[: span[0]])
                or _PASSPORT_NEAR.search(text[: span[0]])
                or _NOT_CONTRACT_AFTER.search(text[span[1] : span[1] + 40])
                or overlaps(span, noise.spans())
            ):
                continue
            if fits:
                return Found(self.name, digits, digits, *span)
            return Invalid(self.name, "contract_pattern", digits)  # only asked gets here
        return None

    @staticmethod
    def _is_phone_cue(text: str, digits_start: int) -> bool:
        before = text[max(0, digits_start - 20) : digits_start].lower()
        return "тел" in before or "моб" in before


def _number_at(written: str) -> str:
    """The number a cue announces, from the digits after it: spaced groups only when they make an account."""
    spaced = _SPACED.match(written)
    if spaced and len(re.sub(r"\D", "", spaced.group())) == ACCOUNT_DIGITS:
        return spaced.group()
    grouped = _GROUPED.match(written)
    return grouped.group() if grouped else written
