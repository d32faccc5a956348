"""The dialog engine end to end on the shipped scenarios, without storage or messengers."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from common.events import DetailCollected, HandoffRequested, TaskCreated
from common.messages import AttachmentKind
from tests.conftest import Dialog

PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


def test_no_internet_dialog_asks_each_detail_once_and_answers(dialog: Dialog) -> None:
    first = dialog.send("Здравствуйте, не работает интернет")
    assert "договор" in dialog.last_text.lower()
    dialog.send("1234567")
    buttons = dialog.turns[-1].replies[-1].buttons
    assert next(b.payload for b in buttons) == "choice:router_lights:all_on"
    dialog.send(payload=buttons[1].payload, text=buttons[1].text)
    answer = dialog.last_text
    assert "1234567" in answer and "WAN" in answer
    assert dialog.state.awaiting == "solved"
    dialog.send("да, помогло")
    assert not dialog.state.handed_off
    asks = [t for t in dialog.all_bot_text if "номер договора" in t.lower() or "договора —" in t]
    assert len(asks) <= 1
    assert first.explain["match"]["scenario"] == "no_internet"


def test_detail_in_first_message_is_never_asked(dialog: Dialog) -> None:
    dialog.send("не работает интернет, договор 1234567")
    assert dialog.state.details["contract"].value == "1234567"
    assert dialog.state.active is not None and dialog.state.active.asked == "router_lights"
    assert all("договор" not in text.lower() for text in dialog.all_bot_text)


def test_not_solved_hands_off_to_the_scenario_category(dialog: Dialog) -> None:
    dialog.send("нет интернета, лс 7654321")
    dialog.send("все горят")
    turn = dialog.send("нет, не помогло")
    handoffs = [e for e in turn.events if isinstance(e, HandoffRequested)]
    # 09:00 UTC is 16:00 in Novosibirsk: support works, so the first reply is due in 2 minutes.
    due = (dialog.clock + timedelta(minutes=2)).isoformat()
    assert handoffs == [HandoffRequested("not_solved", "tech", "normal", "", due_at=due)]
    assert dialog.state.handed_off


def test_callback_with_correction_and_task(dialog: Dialog) -> None:
    dialog.send("перезвоните мне пожалуйста")
    dialog.send("8 913 123 45 67")
    turn = dialog.send("ой, номер другой: 8 913 000 11 22")
    corrected = [e for e in turn.events if isinstance(e, DetailCollected)]
    assert corrected == [DetailCollected("phone", "+79130001122", "8 913 000 11 22", "+79131234567")]
    assert "+7 913 000-11-22" in dialog.last_text
    turn = dialog.send("завтра после 18")
    tasks = [e for e in turn.events if isinstance(e, TaskCreated)]
    assert tasks and tasks[0].kind == "callback"
    assert tasks[0].details == {"phone": "+79130001122", "callback_time": "2026-11-24 18:00"}


def test_invalid_detail_is_reasked_with_the_reason_then_a_human_is_offered(dialog: Dialog) -> None:
    dialog.send("перезвоните мне")
    dialog.send("8913123")
    assert "не хватает цифр" in dialog.last_text
    dialog.send("8913")
    turn = dialog.send("913")
    assert dialog.state.awaiting == "human_offer"
    assert any(b.payload == "human" for r in turn.replies for b in r.buttons)
    dialog.send("да")
    assert dialog.state.handed_off and dialog.state.handoff_reason == "accepted_offer"


def test_not_understood_twice_offers_a_human(dialog: Dialog) -> None:
    dialog.send("абырвалг")
    assert dialog.state.awaiting is None
    dialog.send("кукареку")
    assert dialog.state.awaiting == "human_offer"
    dialog.send("нет, не надо")
    assert not dialog.state.handed_off


def test_cancel_mid_request(dialog: Dialog) -> None:
    dialog.send("хочу сменить тариф")
    dialog.send("отмена")
    assert dialog.state.active is None
    assert "Смена тарифа" in dialog.last_text or "тариф" in dialog.last_text.lower()


def test_switch_mid_way_and_come_back(dialog: Dialog) -> None:
    dialog.send("хочу сменить тариф")
    assert dialog.state.active and dialog.state.active.scenario_id == "change_tariff"
    dialog.send("а как оплатить интернет?")
    assert "личном кабинете" in dialog.last_text
    # The balance answer needs no details, so the tariff request resumes at once.
    assert dialog.state.active and dialog.state.active.scenario_id == "change_tariff"
    assert "Смена тарифа" in dialog.last_text
    dialog.send("договор 5554433")
    dialog.send("турбо")
    assert dialog.state.details["tariff"].value == "turbo_500"


def test_asking_for_a_person_hands_off_with_the_reason(dialog: Dialog) -> None:
    dialog.send("не работает интернет")
    turn = dialog.send("позовите оператора")
    handoff = next(e for e in turn.events if isinstance(e, HandoffRequested))
    assert handoff.reason == "client_asked" and handoff.category == "tech"
    dialog.send("алло")
    assert dialog.state.handed_off


@pytest.mark.parametrize(
    "text",
    ["", "   ", "😀😀😀", "\x00\x01\x02", "a" * 100_000, "\u202e\u200bтест", "{phone} {{7*7}} ${x}"],
)
def test_bad_input_gets_a_short_polite_answer(dialog: Dialog, text: str) -> None:
    turn = dialog.send(text)
    assert turn.replies, "every message gets an answer"
    for reply in turn.replies:
        assert 0 < len(reply.text) < 600
        assert not PLACEHOLDER.search(reply.text)


@pytest.mark.parametrize("kind", [AttachmentKind.STICKER, AttachmentKind.VOICE, AttachmentKind.PHOTO])
def test_attachment_without_text(dialog: Dialog, kind: AttachmentKind) -> None:
    turn = dialog.send(attachment=kind)
    assert turn.replies and turn.replies[0].text


def test_shared_contact_fills_the_phone(dialog: Dialog) -> None:
    dialog.send("перезвоните мне")
    dialog.send(contact_phone="+79131234567", attachment=AttachmentKind.CONTACT)
    assert dialog.state.details["phone"].value == "+79131234567"


def test_no_phrasing_is_repeated_while_others_remain(dialog: Dialog) -> None:
    texts = []
    for _ in range(2):
        dialog.send("абырвалг")
        texts.append(dialog.turns[-1].replies[0].text)
        dialog.state.not_understood = 0
    assert texts[0] != texts[1]


def test_button_press_without_text_is_understood(dialog: Dialog) -> None:
    dialog.send("не работает интернет, договор 1234567")
    dialog.send(payload="choice:router_lights:wan_off")
    assert dialog.state.details["router_lights"].value == "wan_off"
    assert "WAN" in dialog.last_text
    dialog.send(payload="not_solved")
    assert dialog.state.handed_off


def test_details_in_a_request_for_a_person_reach_the_operator(dialog: Dialog) -> None:
    turn = dialog.send("позовите оператора, мой договор 7654321 и телефон 8 913 123-45-67")
    assert [e for e in turn.events if isinstance(e, HandoffRequested)]
    collected = {e.name: e.value for e in turn.events if isinstance(e, DetailCollected)}
    assert collected == {"contract": "7654321", "phone": "+79131234567"}
