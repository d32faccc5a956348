"""Recognising requests through typos, word order and inflection, at a cost bounded by the index."""

from __future__ import annotations

import pytest

from dialogs.content import LiveContent
from dialogs.lexicon import MatchingLexicon
from dialogs.matcher import CANDIDATES, IntentMatcher, TermNormaliser
from dialogs.scenarios import MatchSpec, Scenario
from dialogs.text import shared_lemmatizer


@pytest.mark.parametrize(
    ("text", "scenario"),
    [
        ("инет не работаит", "no_internet"),
        ("интернет у меня не работает", "no_internet"),
        ("не работают интернеты", "no_internet"),
        ("тормозит интернет вечером", "slow_internet"),
        ("скорость упала сильно", "slow_internet"),
        ("как мне пополнить баланс", "balance"),
        ("хочу поменять тариф на подешевле", "change_tariff"),
        ("мы переезжаем", "moving"),
        ("перезвоните пожалуйста", "callback"),
        ("привет", "greeting"),
        ("спасибо большое", "thanks"),
    ],
)
def test_shipped_scenarios_are_recognised(live_content: LiveContent, text: str, scenario: str) -> None:
    match = live_content.get().matcher.match(text)
    assert match is not None and match.scenario_id == scenario


@pytest.mark.parametrize("text", ["погода сегодня хорошая", "дело в том что", "абырвалг"])
def test_unrelated_text_is_not_matched(live_content: LiveContent, text: str) -> None:
    assert live_content.get().matcher.match(text) is None


def test_candidates_are_bounded_whatever_the_number_of_examples() -> None:
    scenarios = [
        Scenario(id=f"s{i}", title="t", match=MatchSpec(examples=[f"слово{i} запрос{i % 50} интернет"]))
        for i in range(3000)
    ]
    normaliser = TermNormaliser(MatchingLexicon(), shared_lemmatizer())
    matcher = IntentMatcher(scenarios, normaliser)
    compared = matcher._candidates(frozenset(normaliser.terms("интернет запрос7")))
    assert len(compared) <= CANDIDATES


def test_folded_word_splitting_reads_every_character_as_the_ignore_case_pattern_does() -> None:
    # words() uses a case-sensitive pattern with the extra letters IGNORECASE would match listed by hand;
    # a new Unicode version could add some: this test then names them.
    from dialogs.text import _FOLDED_WORD_RE, WORD_RE, fold

    differ = [
        f"U+{ord(ch):04X}"
        for ch in map(chr, range(0x110000))
        if bool(WORD_RE.fullmatch(folded := fold(ch))) != bool(_FOLDED_WORD_RE.fullmatch(folded))
    ]
    assert differ == []
