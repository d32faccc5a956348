"""Requests for a person, told apart from mere mentions."""

from __future__ import annotations

import pytest

from dialogs.content import LiveContent


@pytest.mark.parametrize(
    "text",
    [
        "позовите оператора",
        "можно живого человека?",
        "оператора!!!",
        "хочу поговорить с человеком",
        "а есть кто живой?",
        "дайте менеджера",
        "соедините со специалистом",
        "переключите на сотрудника",
        "бот, дай человека",
        "апиратора пазавите",
        "надоел бот, нужен оператор",
        "думал без оператора справлюсь, но нет. позовите кого-нибудь",
        "переключите на отдел продаж",
        "можно с кем-то поговорить?",
    ],
)
def test_requests(live_content: LiveContent, text: str) -> None:
    assert live_content.get().human_requests.detect(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "не надо оператора, сам разберусь",
        "оператор связи у вас хороший",
        "вчера ваш оператор мне помог, спасибо",
        "спасибо, человек вы хороший",
        "мой сотовый оператор мтс",
        "специалист приходил вчера, всё работает",
        "без оператора справлюсь",
        "оператора не зовите, просто напомните когда списание",
        "соседка говорит у вас операторы грубые",
        "отдел продаж у вас хороший",
    ],
)
def test_mentions(live_content: LiveContent, text: str) -> None:
    assert live_content.get().human_requests.detect(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "у вас есть живые растения в каталоге?",
        "мне нужен человеческий размер, а не эти маломерки! есть L?",
        "оператор, от которого я перенёс номер, до сих пор списывает абонентку",
        "у вас есть тариф для человека, который только звонит?",
    ],
)
def test_things_and_people_spoken_about_are_no_request(live_content: LiveContent, text: str) -> None:
    assert live_content.get().human_requests.detect(text) is None, text


@pytest.mark.parametrize(
    "text",
    [
        "Пожалуйста, соедините с оператором-человеком",
        "в сотый раз объясняю: деньги списали, верните",
        "Нужен специалист, который поможет с настройкой оборудования",
        "есть живые люди?",
    ],
)
def test_hyphenated_and_stuck_requests_for_a_person(live_content: LiveContent, text: str) -> None:
    assert live_content.get().human_requests.detect(text) is not None, text


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("чилавека пазавите пж", True),
        ("хачу гаварить с аператором", True),
        ("передайте меня сотруднику пожалуйста", True),
        ("сотрудник передал мне не то", False),
        ("а меня переключат на оператора, если захочу? пока не надо", False),
        ("это живой человек пишет или программа?", False),
    ],
)
def test_requests_written_by_ear_and_hypothetical_ones(
    live_content: LiveContent, text: str, wanted: bool
) -> None:
    assert (live_content.get().human_requests.detect(text) is not None) == wanted


@pytest.mark.parametrize(
    "text",
    [
        "Хочу поговорить с тем, кто у вас решает вопросы, а не с программой",
        "хочу говорить с кем-то, кто принимает решения",
        "дайте спеца",
        "Мы по кругу ходим. Я пишу одно, а мне опять присылают то же самое меню",
        "я уже всё попробовала что вы советовали",
    ],
)
def test_someone_who_decides_circles_and_advice_tried_ask_for_a_person(
    live_content: LiveContent, text: str
) -> None:
    assert live_content.get().human_requests.detect(text) is not None, text
