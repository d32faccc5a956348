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
    r"телефон\w*|тел\.|номер телефона|моб\w*|паспорт\w*|сери\w*|инн|снилс|карт\w*)\s*[:№.]?\s*$",
    re.IGNORECASE,
)

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
        self.cued_re = re.compile(rf"(?:{alternatives})[^\d\n]{{0,30}}?(?<![\d+])(\d+)(?!\d)", re.IGNORECASE)

    def find_cued(self, text: str, taken: list[Span], noise: LazyNoise) -> Found | Invalid | None:
        """A number announced as a contract ("договор 1234567", "л/с: 0012345")."""
        for match in self.cued_re.finditer(text):
            span = match.span(1)
            if (
                overlaps(span, taken)
                or self._is_phone_cue(text, match.start(1))
                or overlaps(span, noise.spans())
            ):
                continue
            digits = match.group(1)
            if self.pattern.fullmatch(digits):
                return Found(self.name, digits, digits, *span)
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
