"""Recognising requests through typos, word order and inflection, at a cost bounded by the index."""

from __future__ import annotations

import pytest

from common.text import shared_lemmatizer
from dialogs.content import LiveContent
from dialogs.lexicon import MatchingLexicon
from dialogs.matcher import IntentMatcher
from dialogs.scenarios import MatchSpec, Scenario
from dialogs.terms import TermNormaliser


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


def test_word_weights_are_learned_from_the_examples() -> None:
    """A word the examples of one request keep using weighs more for it than a word every request uses."""
    scenarios = [
        Scenario(
            id="a", title="a", match=MatchSpec(examples=["роутер мигает", "роутер гудит", "опять роутер"])
        ),
        Scenario(id="b", title="b", match=MatchSpec(examples=["баланс опять", "оплата опять", "счёт опять"])),
    ]
    normaliser = TermNormaliser(MatchingLexicon(), shared_lemmatizer())
    matcher = IntentMatcher(scenarios, normaliser)
    weight = matcher.classifier.weight
    assert weight("роутер", "a") > weight("опять", "a")
    assert weight("роутер", "b") < 0 < weight("роутер", "a")
    ranking = matcher.rank("у меня опять роутер")
    assert ranking.scores[0][0] == "a"
    assert ranking.contributions["a"][0][0] == "роутер"


def test_folded_word_splitting_reads_every_character_as_the_ignore_case_pattern_does() -> None:
    # words() uses a case-sensitive pattern with the extra letters IGNORECASE would match listed by hand;
    # a new Unicode version could add some: this test then names them.
    from common.text import FOLDED_WORD_RE, WORD_RE, fold

    differ = [
        f"U+{ord(ch):04X}"
        for ch in map(chr, range(0x110000))
        if bool(WORD_RE.fullmatch(folded := fold(ch))) != bool(FOLDED_WORD_RE.fullmatch(folded))
    ]
    assert differ == []


def test_refined_weights_get_more_of_their_own_examples_right(live_content: LiveContent) -> None:
    from dialogs.matcher import ExampleClassifier

    content = live_content.get()
    examples = [(s.id, text) for s in content.scenarios.scenarios for text in s.match.examples]
    normaliser = content.matcher.normaliser

    def right(classifier: ExampleClassifier) -> int:
        return sum(
            bool(scores := classifier.rank(text).scores) and scores[0][0] == label for label, text in examples
        )

    counted = ExampleClassifier(examples, normaliser, pairs=True)
    refined = ExampleClassifier(
        examples, normaliser, pairs=True, refine=[s.id for s in content.scenarios.scenarios]
    )
    assert right(refined) > right(counted)


def test_surnames_and_places_are_not_evidence(live_content: LiveContent) -> None:
    normaliser = live_content.get().matcher.normaliser
    terms = normaliser.terms("подключите интернет на улице Кирова в Бердске")
    assert "киров" not in terms and "бердск" not in terms
    assert "подключить" in terms and "интернет" in terms


def test_a_trie_of_needles_finds_what_the_plain_alternation_finds() -> None:
    import random
    import re

    from common.text import AnyOf, trie_pattern

    needles = ["не работа", "не пришел", "нет интернет", "не", "абв", "абвгд", "ё-моё", "a.b"]
    plain = re.compile("|".join(re.escape(n) for n in needles))
    found = AnyOf(needles)
    letters = "абвгденрпиотё-.ab "
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(letters) for _ in range(rng.randint(0, 25)))
        assert found(text) == (plain.search(text) is not None), text
    assert trie_pattern([]) == "(?!x)x" and not AnyOf([])("что угодно")
