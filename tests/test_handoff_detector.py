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
