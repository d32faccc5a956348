"""Hearing every turn: answers to the bot's own questions by meaning, dialogue acts, questions inside a flow,
closings, out of scope, capabilities, complaints about the bot, and steps the client already took."""

from __future__ import annotations

import pytest

from common.events import HandoffRequested, TaskCreated
from dialogs.content import LiveContent
from tests.conftest import Dialog


def acts(live_content: LiveContent, text: str) -> set[str]:
    return set(live_content.get().hearing.hear(text).acts)


@pytest.mark.parametrize(
    ("text", "act"),
    [
        ("да, заработало, спасибо!", "helped"),
        ("переткнул кабель, ни хрена не помогло", "not_helped"),
        ("всё так же", "not_helped"),
        ("стало чуть лучше но всё равно тормозит", "partly"),
        ("до свидания", "goodbye"),
        ("А когда почините?", "q_when"),
        ("это надолго?", "q_when"),
        ("а мастер бесплатно?", "q_free"),
        ("что с деньгами за дни без связи?", "q_compensation"),
        ("А вы вообще что умеете?", "capabilities"),
        ("вы опять про тарифы", "bot_complaint"),
        ("патчкорд менял, роутер перезагружал", "tried"),
        ("минутку, гляну", "wait"),
    ],
)
def test_dialogue_acts(live_content: LiveContent, text: str, act: str) -> None:
    assert act in acts(live_content, text)


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("спасибо, буду ждать", "q_wait_person"),  # no question asked
        ("муж говорит звони провайдеру вот пишу", "bot_complaint"),
        ("с ноута через провод", "tried"),  # no step taken
        ("ты бот?", "bot_complaint"),
    ],
)
def test_acts_that_are_not_there(live_content: LiveContent, text: str, absent: str) -> None:
    assert absent not in acts(live_content, text)


def test_free_answers_to_the_router_question(dialog: Dialog) -> None:
    dialog.send("интернета нет с утра, договор 1234567")
    dialog.send("горит красный значок")
    assert dialog.state.details["router_lights"].value == "wan_off"
    turn = dialog.send("переткнул кабель, ни хрена не помогло")
    assert any(isinstance(e, HandoffRequested) and e.category == "tech" for e in turn.events)


def test_a_question_inside_the_flow_is_answered_and_the_flow_resumes(dialog: Dialog) -> None:
    dialog.send("не работает интернет")
    turn = dialog.send("а когда почините?")
    assert turn.explain["layer"] == "question" and not turn.explain.get("fallback")
    assert "договор" in dialog.last_text.lower()  # the open question is put again
    dialog.send("1234567")
    assert dialog.state.active is not None and dialog.state.active.asked == "router_lights"


def test_goodbye_while_waiting_for_a_person_closes_politely(dialog: Dialog) -> None:
    dialog.send("позовите оператора")
    turn = dialog.send("До свидания")
    assert turn.explain["moments"] == ["closing_waiting"]


def test_thanks_after_a_booked_call_back_is_no_new_request(dialog: Dialog) -> None:
    dialog.send("перезвоните мне завтра после 18, номер 89131234567")
    turn = dialog.send("Хорошо, спасибо, ждём звонка")
    assert not [e for e in turn.events if isinstance(e, TaskCreated)]
    assert dialog.state.active is None and not turn.explain.get("fallback")


def test_a_bank_question_to_the_provider_is_out_of_scope(dialog: Dialog) -> None:
    turn = dialog.send("у меня заблокировали банковскую карту, как её разблокировать?")
    assert turn.explain["layer"] == "out_of_scope" and not dialog.state.handed_off
    assert "не работает интернет" in dialog.last_text.lower()  # what the bot does help with


def test_what_can_you_do(dialog: Dialog) -> None:
    turn = dialog.send("А вы вообще что умеете?")
    assert turn.explain["layer"] == "capabilities" and not dialog.state.handed_off


def test_a_client_saying_the_bot_misses_the_point_gets_a_person(dialog: Dialog) -> None:
    dialog.send("хочу сменить тариф")
    turn = dialog.send("вы опять про тарифы, я в третий раз объясняю что интернет не работает")
    assert dialog.state.handed_off and dialog.state.handoff_reason in ("missed_point", "client_asked")
    assert turn.replies


def test_a_sysadmin_who_did_the_first_steps_is_not_told_to_repeat_them(dialog: Dialog) -> None:
    dialog.send("патчкорд менял, роутер перезагружал, PPPoE не поднимается, договор 5550123")
    assert dialog.state.handed_off and dialog.state.handoff_reason == "tried_basics"
    assert "кабель" not in dialog.all_bot_text[0].lower() or "не буду" in dialog.all_bot_text[0].lower()


def test_a_correction_while_another_question_is_open(dialog: Dialog) -> None:
    dialog.send("медленный интернет, договор 3030405")
    turn = dialog.send("то есть 3030406, опечатался")
    assert dialog.state.details["contract"].value == "3030406"
    assert not turn.explain.get("fallback")
    assert dialog.state.active is not None and dialog.state.active.asked == "connection"


def test_anger_is_not_promised_a_fix_now_beside_an_out_of_hours_wait(dialog: Dialog) -> None:
    from datetime import timedelta

    dialog.clock += timedelta(hours=12)  # 21:00 UTC is 04:00 in Novosibirsk: support is closed
    turn = dialog.send("да вы охренели, третий день нет интернета, позовите человека немедленно")
    moments = turn.explain["moments"]
    assert "out_of_hours" in moments and "anger_heard" not in moments
