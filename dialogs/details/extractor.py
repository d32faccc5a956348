"""One pass over a message that finds every detail in it, without taking one number for two things."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from common.text import Lemmatizer
from dialogs.details.address import AddressFinder
from dialogs.details.base import DetailKind, DetailSpec, Found, Invalid, Span
from dialogs.details.card import CardFinder, cvv_spans, full_card_spans
from dialogs.details.choice import ChoiceFinder
from dialogs.details.contract import ContractFinder
from dialogs.details.email import email_problem, find_emails
from dialogs.details.money import MoneyFinder
from dialogs.details.newest import NEWER, OLD, newest
from dialogs.details.noise import LazyNoise
from dialogs.details.phone import PhoneFinder
from dialogs.details.when import find_when
from dialogs.lexicon import MatchingLexicon
from dialogs.terms import TermNormaliser, answer_normaliser

_DIGIT = re.compile(r"\d")


@dataclass(slots=True)
class Extraction:
    """Details found in one message, why the asked-for one did not validate (if it did not), and what
    the client should not have sent at all (a full card number, a CVV: never taken)."""

    found: dict[str, Found] = field(default_factory=dict)
    invalid: Invalid | None = None
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Plan:
    """Which detail each kind of value fills, and the details then looked for one by one."""

    email: str | None
    contract: str | None
    phone: str | None
    address: str | None
    card: str | None
    money: str | None
    others: tuple[tuple[str, DetailSpec], ...]  # dates, choices and asked-for free text, in order


_MAX_PLANS = 256
_ONE_BY_ONE = (DetailKind.DATETIME, DetailKind.CHOICE)


class DetailExtractor:
    """Finds details of the kinds a scenario file defines."""

    def __init__(
        self,
        specs: Mapping[str, DetailSpec],
        company_numbers: Sequence[str],
        lemmatizer: Lemmatizer,
        answers: TermNormaliser | None = None,
    ) -> None:
        self.specs = dict(specs)
        self.phones = PhoneFinder(list(company_numbers))
        self.contracts = {n: ContractFinder(n, s) for n, s in specs.items() if s.type is DetailKind.CONTRACT}
        self.addresses = {n: AddressFinder(n) for n, s in specs.items() if s.type is DetailKind.ADDRESS}
        self.cards = {n: CardFinder(n) for n, s in specs.items() if s.type is DetailKind.CARD}
        self.sums = {n: MoneyFinder(n) for n, s in specs.items() if s.type is DetailKind.MONEY}
        answers = answers or answer_normaliser(MatchingLexicon(), lemmatizer)
        self.choices = {
            n: ChoiceFinder(n, s, answers) for n, s in specs.items() if s.type is DetailKind.CHOICE
        }
        answers.add_vocabulary(set().union(*(finder.vocabulary() for finder in self.choices.values())))
        self._plans: dict[tuple[str | None, tuple[str, ...]], _Plan] = {}

    def _name_for(self, kind: DetailKind, asked: str | None, needed: Sequence[str]) -> str | None:
        """Which detail a value of this kind fills: the asked one, a needed one, or the canonical one."""
        if asked and self.specs[asked].type is kind:
            return asked
        for name in needed:
            if self.specs[name].type is kind:
                return name
        if kind.value in self.specs:
            return kind.value
        if kind is DetailKind.CARD:
            # A company's one card detail, whatever its name: a card number given anywhere is read.
            return next((name for name, spec in self.specs.items() if spec.type is kind), None)
        return None

    def _wanted(self, kind: DetailKind, asked: str | None, needed: Sequence[str]) -> str | None:
        """The asked or needed detail of a kind, if any."""
        if asked and self.specs[asked].type is kind:
            return asked
        return next((name for name in needed if self.specs[name].type is kind), None)

    def _plan_for(self, asked: str | None, needed: Sequence[str]) -> _Plan:
        """What to look for given the question: the same few (asked, needed) pairs come again and again."""
        key = (asked, tuple(needed))
        plan = self._plans.get(key)
        if plan is None:
            plan = _Plan(
                email=self._name_for(DetailKind.EMAIL, asked, needed),
                contract=self._name_for(DetailKind.CONTRACT, asked, needed),
                phone=self._name_for(DetailKind.PHONE, asked, needed),
                address=self._name_for(DetailKind.ADDRESS, asked, needed),
                card=self._name_for(DetailKind.CARD, asked, needed),
                # A sum is looked for only where one is wanted: elsewhere numbers with "р" are noise.
                money=self._wanted(DetailKind.MONEY, asked, needed),
                others=tuple(
                    (name, spec)
                    for name in dict.fromkeys([*([asked] if asked else []), *needed])
                    # Only these kinds are looked for one by one; free text only when asked for.
                    if (spec := self.specs[name]).type in _ONE_BY_ONE
                    or (spec.type is DetailKind.TEXT and name == asked)
                ),
            )
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            self._plans[key] = plan
        return plan

    def extract(
        self,
        text: str,
        now: datetime,
        *,
        asked: str | None = None,
        needed: Sequence[str] = (),
        payload: str | None = None,
    ) -> Extraction:
        """Find details in text; `asked` is the detail the bot just asked for, `needed` the request's."""
        plan = self._plan_for(asked, needed)
        result = Extraction()
        # Phones, contracts and addresses all hold a digit: a message without one has none of them.
        has_digit = _DIGIT.search(text) is not None
        noise = LazyNoise(text)
        taken: list[Span] = []

        def keep(found: Found | Invalid | None, is_asked: bool) -> None:
            if isinstance(found, Found) and found.name not in result.found:
                result.found[found.name] = found
                if found.end > found.start:
                    taken.append((found.start, found.end))
            elif isinstance(found, Invalid) and is_asked and result.invalid is None:
                result.invalid = found

        if has_digit:
            # A full card number or a CVV is never a detail: its digits are kept out of every other one.
            refused = full_card_spans(text)
            codes = cvv_spans(text)
            taken.extend([*refused, *codes])
            result.refused = ["card"] * bool(refused) + ["cvv"] * bool(codes)
            if name := plan.card:
                keep(self.cards[name].find(text, taken, asked=asked == name), asked == name)
        if name := plan.email:
            for email in newest(find_emails(name, text, taken), text)[:1]:
                keep(email, False)
            if asked == name and name not in result.found:
                keep(email_problem(name, text), True)
        contract_name = plan.contract
        if contract_name and has_digit:
            keep(self.contracts[contract_name].find_cued(text, taken, noise), asked == contract_name)
        if has_digit and (name := plan.phone):
            phones = (
                self.phones.find(name, text, taken, noise)
                if NEWER.search(text) or OLD.search(text) or " не " in text
                else []
            )
            keep(newest(phones, text)[0] if phones else self.phones.first(name, text, taken, noise), False)
            if asked == name and name not in result.found:
                keep(self.phones.problem(name, text, taken, noise), True)
        if name := plan.address:
            is_asked = asked == name and not result.found
            keep(self.addresses[name].find(text, taken, asked=is_asked), is_asked)
        if (name := plan.money) and (has_digit or asked == name):
            # "Сегодня утром, 4300" to "when?": the sum the request still needs comes with the date.
            beside_a_date = asked is not None and self.specs[asked].type is DetailKind.DATETIME
            keep(self.sums[name].find(text, taken, asked=asked == name, beside=beside_a_date), asked == name)
        # A bare number answers the question asked; it is a contract only if that was the question.
        if (
            has_digit
            and contract_name
            and contract_name not in result.found
            and (asked is None or asked == contract_name)
        ):
            is_asked = asked == contract_name
            keep(self.contracts[contract_name].find_bare(text, taken, noise, asked=is_asked), is_asked)
        for name, spec in plan.others:
            if name in result.found:
                continue
            is_asked = name == asked
            if spec.type is DetailKind.DATETIME:
                keep(find_when(name, text, now, asked=is_asked, past=spec.past), is_asked)
            elif spec.type is DetailKind.CHOICE:
                keep(self.choices[name].find(text, asked=is_asked, payload=payload), is_asked)
            else:  # free text, asked for
                keep(self._free_text(name, spec, text), True)
        return result

    @staticmethod
    def _free_text(name: str, spec: DetailSpec, text: str) -> Found | Invalid:
        stripped = text.strip()
        if len(stripped) < spec.min_length:
            return Invalid(name, "text_too_short", stripped)
        return Found(name, stripped, stripped, 0, len(text))
