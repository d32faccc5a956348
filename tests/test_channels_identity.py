"""One client across channels, at storage and desk level on a real SQLite file and on PostgreSQL: numbers a
messenger vouches for (WhatsApp's sender, a Telegram contact) and the company's confirmation make one
person, claims never do; the operator's reply goes to the chat the client wrote in last, and WhatsApp's
24-hour window is kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select

from common.channels import CHANNELS, source_title, title, window_closes
from common.messages import AttachmentKind, IncomingMessage
from common.names import Channel, Delivery, Direction, ReceiptStatus, company_source
from operators.desk import DeskError, closed_window
from storage.identity import same_person
from storage.tables import actions, conversations, messages, verified
from tests.support.webserver import always_open, web_runtime
from web.console import RECEIPT_TITLES, route_notes
from wiring.runtime import Runtime

PHONE = "+79135551234"
NOW = datetime.now(UTC).replace(microsecond=0)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path, database_url: str) -> Runtime:
    built = web_runtime(tmp_path, always_open(content_copy), database_url)
    built.desk.clock = Clock(NOW)
    return built


_count = iter(range(1_000_000))


def say(runtime: Runtime, channel: str, user: str, text: str, at: datetime, **extra: Any) -> None:
    """A client's message through the conversation service, as every adapter sends it."""
    runtime.service.handle(
        IncomingMessage(channel, user, user, text, at, f"{channel}-{user}-{next(_count)}", **extra)
    )


def whatsapp(runtime: Runtime, user: str, text: str, at: datetime, phone: str = PHONE) -> None:
    """A WhatsApp message: the Cloud API names the sender's own number (wa_id, no "+") on every one."""
    say(runtime, "whatsapp", user, text, at, sender_phone=phone.lstrip("+"))


def telegram_contact(runtime: Runtime, user: str, phone: str, at: datetime, *, own: bool = True) -> None:
    say(
        runtime,
        "telegram",
        user,
        "",
        at,
        attachment=AttachmentKind.CONTACT,
        contact_phone=phone,
        contact_verified=own,
    )


def conversation(runtime: Runtime, channel: str, chat: str) -> int:
    with runtime.store.engine.connect() as connection:
        return int(
            connection.execute(
                select(conversations.c.id)
                .where(conversations.c.channel == channel, conversations.c.chat_id == chat)
                .order_by(conversations.c.id.desc())
                .limit(1)
            ).scalar_one()
        )


def client(runtime: Runtime, channel: str, chat: str) -> int:
    view = runtime.desk_store.conversation(conversation(runtime, channel, chat))
    assert view is not None
    return int(view.conversation.client_id)


def person(runtime: Runtime, channel: str, chat: str) -> list[int]:
    with runtime.store.engine.connect() as connection:
        return same_person(connection, client(runtime, channel, chat))


def vouched(runtime: Runtime) -> list[tuple[int, str, str]]:
    with runtime.store.engine.connect() as connection:
        rows = connection.execute(
            select(verified.c.client_id, verified.c.value, verified.c.source).order_by(verified.c.id)
        )
        return [(int(r.client_id), str(r.value), str(r.source)) for r in rows]


def pending(runtime: Runtime) -> list[tuple[str, str, str]]:
    """(channel, chat, text) of every message waiting in the outbox."""
    with runtime.store.engine.connect() as connection:
        rows = connection.execute(
            select(conversations.c.channel, conversations.c.chat_id, messages.c.text)
            .join(conversations, conversations.c.id == messages.c.conversation_id)
            .where(messages.c.delivery == Delivery.PENDING)
            .order_by(messages.c.id)
        )
        return [(str(r.channel), str(r.chat_id), str(r.text)) for r in rows]


# --- verified by the messenger ------------------------------------------------------------------------


def test_whatsapps_sender_number_and_a_telegram_contact_make_one_person(runtime: Runtime) -> None:
    whatsapp(runtime, "79135551234", "здравствуйте, не работает интернет, договор 7654321", NOW)
    whatsapp(runtime, "79135551234", "вы тут?", NOW + timedelta(seconds=30))
    wa = client(runtime, "whatsapp", "79135551234")
    assert vouched(runtime) == [(wa, PHONE, "whatsapp")], "one identity, recorded once"
    say(runtime, "telegram", "501", "позовите оператора", NOW + timedelta(minutes=1))
    assert person(runtime, "telegram", "501") == [client(runtime, "telegram", "501")], "not yet one person"

    telegram_contact(runtime, "501", "79135551234", NOW + timedelta(minutes=2))
    tg = client(runtime, "telegram", "501")
    assert person(runtime, "telegram", "501") == sorted([wa, tg])
    view = runtime.desk_store.conversation(conversation(runtime, "telegram", "501"))
    assert view is not None
    # All the person's channels, each with its messenger's mark, and one history that names the channel.
    listed = {(c.channel, c.user_id): (c.vouched, c.linked) for c in view.channels}
    assert listed == {
        ("telegram", "501"): (("telegram_contact",), False),
        ("whatsapp", "79135551234"): (("whatsapp",), True),
    }
    said = [(row.channel, row.text) for row in view.history if row.direction == Direction.IN]
    assert ("whatsapp", "вы тут?") in said and ("telegram", "позовите оператора") in said
    assert "7654321" in view.details.get("contract", "")
    assert source_title("whatsapp") == "аккаунтом WhatsApp"
    assert source_title("telegram_contact") == "контактом Telegram"


def test_the_sender_number_is_written_when_a_conversation_starts_not_with_every_message(
    runtime: Runtime,
) -> None:
    whatsapp(runtime, "79135551234", "здравствуйте", NOW)
    with runtime.store.engine.begin() as connection:
        connection.execute(delete(verified))
    # Later messages of the open conversation carry the same number: nothing is written for them.
    for n in range(3):
        whatsapp(runtime, "79135551234", f"ещё вопрос {n}", NOW + timedelta(seconds=10 * (n + 1)))
    assert vouched(runtime) == []
    # Through the webhook workers' path (stored and handled in one transaction) too.
    runtime.service.receive(
        IncomingMessage(
            "whatsapp",
            "79001112233",
            "79001112233",
            "привет",
            NOW,
            "wa-receive-1",
            sender_phone="79001112233",
        )
    )
    assert [value for _client, value, _source in vouched(runtime)] == ["+79001112233"]


def test_claimed_numbers_never_make_one_person(runtime: Runtime) -> None:
    whatsapp(runtime, "79135551234", "здравствуйте", NOW)
    # Typed numbers, someone else's card, and a number from a channel that vouches for no sender.
    say(runtime, "telegram", "601", "мой телефон +7 913 555-12-34", NOW)
    telegram_contact(runtime, "602", PHONE, NOW, own=False)
    say(runtime, "vk", "603", "мой номер 89135551234", NOW, sender_phone="79135551234")
    say(runtime, "max", "604", "привет", NOW, sender_phone="79135551234")
    say(runtime, "web", "605", "привет", NOW, sender_phone="79135551234")
    wa = client(runtime, "whatsapp", "79135551234")
    assert vouched(runtime) == [(wa, PHONE, "whatsapp")]
    for channel, chat in (("telegram", "601"), ("telegram", "602"), ("vk", "603"), ("max", "604")):
        assert person(runtime, channel, chat) == [client(runtime, channel, chat)], (channel, chat)
        view = runtime.desk_store.conversation(conversation(runtime, channel, chat))
        assert view is not None and {c.channel for c in view.channels} == {channel}


# --- a confirmation the company controls --------------------------------------------------------------


def test_the_companys_confirmation_ties_vk_to_telegram_and_is_audited(runtime: Runtime) -> None:
    say(runtime, "vk", "7001", "не работает интернет, договор 7654321", NOW)
    say(runtime, "telegram", "801", "позовите оператора", NOW + timedelta(minutes=1))
    telegram_contact(runtime, "801", PHONE, NOW + timedelta(minutes=2))
    vk, tg = client(runtime, "vk", "7001"), client(runtime, "telegram", "801")
    assert person(runtime, "vk", "7001") == [vk]

    done = runtime.desk_store.verify_identity("vk", "7001", "8 (913) 555-12-34", "crm", NOW)
    assert done.client_id == vk and done.added and done.person == tuple(sorted([vk, tg]))
    again = runtime.desk_store.verify_identity("vk", "7001", PHONE, "crm", NOW)
    assert not again.added
    assert (vk, PHONE, company_source("crm")) in vouched(runtime)
    assert person(runtime, "telegram", "801") == sorted([vk, tg])
    view = runtime.desk_store.conversation(conversation(runtime, "telegram", "801"))
    assert view is not None
    assert {(c.channel, c.linked) for c in view.channels} == {("telegram", False), ("vk", True)}
    assert (("phone", PHONE, "company:crm")) in view.verified
    assert source_title("company:crm") == "компанией (crm)"

    with runtime.store.engine.connect() as connection:
        trail = list(connection.execute(select(actions).where(actions.c.action == "verify")))
    assert trail and all(row.operator == "crm" for row in trail)
    assert {row.conversation_id for row in trail} >= {
        None,
        conversation(runtime, "vk", "7001"),
        conversation(runtime, "telegram", "801"),
    }
    # The audit trail says what was done, never the number itself.
    assert all("555" not in row.detail for row in trail)

    with pytest.raises(LookupError, match="nobody has written"):
        runtime.desk_store.verify_identity("vk", "no-such-user", PHONE, "crm", NOW)
    with pytest.raises(ValueError, match="not a phone"):
        runtime.desk_store.verify_identity("vk", "7001", "zoya@example.ru", "crm", NOW)


# --- the reply goes to the chat the client wrote in last ----------------------------------------------


def handed_off_in_telegram_then_wrote_in_vk(runtime: Runtime) -> tuple[int, int]:
    say(runtime, "telegram", "901", "позовите оператора", NOW - timedelta(hours=2))
    telegram_contact(runtime, "901", PHONE, NOW - timedelta(hours=2) + timedelta(minutes=1))
    say(runtime, "vk", "9001", "здравствуйте, я писал вам в телеграме", NOW - timedelta(minutes=5))
    runtime.desk_store.verify_identity("vk", "9001", PHONE, "crm", NOW - timedelta(minutes=4))
    return conversation(runtime, "telegram", "901"), conversation(runtime, "vk", "9001")


def test_the_reply_goes_to_the_channel_the_client_last_used(runtime: Runtime) -> None:
    tg, vk = handed_off_in_telegram_then_wrote_in_vk(runtime)
    route = runtime.desk.route(tg)
    assert (route.channel, route.chat_id, route.conversation_id, route.here) == ("vk", "9001", vk, False)
    assert route.title == "ВКонтакте" and route.closes_at is None

    runtime.desk.reply(tg, "anna", "Анна", "Добрый день! Уже смотрю, что с интернетом.")
    # The Telegram chat hears that a person joined; the reply itself waits for VK's gateway.
    vk_items = runtime.desk_store.claim_pending("vk", NOW)
    assert [(item.chat_id, item.reply.text) for item in vk_items] == [
        ("9001", "Добрый день! Уже смотрю, что с интернетом.")
    ]
    tg_items = runtime.desk_store.claim_pending("telegram", NOW)
    assert all("Уже смотрю" not in item.reply.text for item in tg_items)
    # The conversation's page shows it in the one history, in VK, by the operator.
    view = runtime.desk_store.conversation(tg)
    assert view is not None
    sent = [row for row in view.history if row.author == "anna"]
    assert [(row.channel, row.conversation_id) for row in sent] == [("vk", vk)]
    assert view.handoff is not None and view.handoff.first_response_at is not None
    trail = [row.detail for row in runtime.desk_store.audit(tg) if row.action == "reply"]
    assert trail == [
        f"{len('Добрый день! Уже смотрю, что с интернетом.')} characters, sent to vk conversation {vk}"
    ]


def test_a_reply_stays_in_its_chat_when_the_client_wrote_there_last(runtime: Runtime) -> None:
    tg, _vk = handed_off_in_telegram_then_wrote_in_vk(runtime)
    say(runtime, "telegram", "901", "алло", NOW - timedelta(minutes=1))
    route = runtime.desk.route(tg)
    assert (route.channel, route.conversation_id, route.here) == ("telegram", tg, True)
    runtime.desk.reply(tg, "anna", "Анна", "Слушаю вас")
    assert ("telegram", "901", "Слушаю вас") in pending(runtime)
    assert not [row for row in pending(runtime) if row[0] == "vk"]


def test_an_unlinked_client_in_another_channel_gets_nothing(runtime: Runtime) -> None:
    say(runtime, "telegram", "911", "позовите оператора", NOW - timedelta(hours=1))
    say(runtime, "vk", "9111", "позовите оператора", NOW - timedelta(minutes=1))
    tg = conversation(runtime, "telegram", "911")
    assert runtime.desk.route(tg).here
    runtime.desk.reply(tg, "anna", "Анна", "Ответ в телеграм")
    assert ("telegram", "911", "Ответ в телеграм") in pending(runtime)
    assert runtime.desk_store.claim_pending("vk", NOW) == []


# --- WhatsApp's 24-hour window ------------------------------------------------------------------------


def test_a_reply_outside_whatsapps_window_is_refused_and_not_stored(runtime: Runtime) -> None:
    whatsapp(runtime, "79135551234", "позовите оператора", NOW - timedelta(hours=25))
    wa = conversation(runtime, "whatsapp", "79135551234")
    before = pending(runtime)
    route = runtime.desk.route(wa)
    assert route.refusal == closed_window("whatsapp")
    assert route.refusal == (
        "Клиент писал в WhatsApp больше 24 часов назад: WhatsApp разрешает написать только шаблоном. "
        "Ответ не отправлен."
    )
    with pytest.raises(DeskError) as refused:
        runtime.desk.reply(wa, "anna", "Анна", "Добрый день")
    assert str(refused.value) == route.refusal
    assert pending(runtime) == before, "nothing left pending"
    view = runtime.desk_store.conversation(wa)
    assert view is not None and view.handoff is not None and view.handoff.taken_by == "", "not even taken"
    assert route_notes(route, NOW)[0].startswith("Клиент писал в WhatsApp больше 24 часов назад")


def test_inside_the_window_the_reply_is_sent_and_the_form_warns_in_the_last_hour(runtime: Runtime) -> None:
    wrote = NOW - timedelta(hours=23, minutes=30)
    whatsapp(runtime, "79135551234", "позовите оператора", wrote)
    wa = conversation(runtime, "whatsapp", "79135551234")
    route = runtime.desk.route(wa)
    assert route.here and not route.refusal and route.closes_at == window_closes("whatsapp", wrote)
    assert route_notes(route, NOW) == [
        "Окно WhatsApp закроется через 30 мин: после этого написать можно будет только шаблоном."
    ]
    assert route_notes(route, NOW - timedelta(hours=2)) == []
    runtime.desk.reply(wa, "anna", "Анна", "Добрый день")
    assert [item.reply.text for item in runtime.desk_store.claim_pending("whatsapp", NOW)][
        -1
    ] == "Добрый день"


def test_a_closed_whatsapp_window_sends_the_reply_to_the_persons_other_chat(runtime: Runtime) -> None:
    say(runtime, "telegram", "921", "позовите оператора", NOW - timedelta(hours=30))
    telegram_contact(runtime, "921", PHONE, NOW - timedelta(hours=30) + timedelta(minutes=1))
    whatsapp(runtime, "79135551234", "ну что там?", NOW - timedelta(hours=26))
    tg = conversation(runtime, "telegram", "921")
    route = runtime.desk.route(tg)
    assert (route.channel, route.here, route.passed_over, route.refusal) == (
        "telegram",
        True,
        ("whatsapp",),
        "",
    )
    assert route_notes(route, NOW) == ["Позже клиент писал в WhatsApp, но там окно для ответа уже закрыто."]
    runtime.desk.reply(tg, "anna", "Анна", "Отвечаю здесь")
    assert ("telegram", "921", "Отвечаю здесь") in pending(runtime)
    assert not [row for row in pending(runtime) if row[0] == "whatsapp"]


def test_when_the_client_last_wrote_in_a_chat(runtime: Runtime) -> None:
    assert runtime.desk_store.last_in("whatsapp", "79135551234") is None
    whatsapp(runtime, "79135551234", "первое", NOW - timedelta(hours=3))
    whatsapp(runtime, "79135551234", "второе", NOW - timedelta(hours=1))
    assert runtime.desk_store.last_in("whatsapp", "79135551234") == NOW - timedelta(hours=1)
    assert runtime.desk_store.last_in("telegram", "79135551234") is None


def test_channel_facts() -> None:
    assert [title(c) for c in ("telegram", "vk", "max", "whatsapp", "web")] == [
        "Telegram",
        "ВКонтакте",
        "MAX",
        "WhatsApp",
        "веб-чат",
    ]
    # Every stored channel name has its facts, and every reported status a title for operators.
    assert set(CHANNELS) == set(Channel) and set(RECEIPT_TITLES) == set(ReceiptStatus)
    assert window_closes("telegram", NOW) is None and window_closes("golden", NOW) is None
    assert window_closes("whatsapp", NOW) == NOW + timedelta(hours=24)
    assert window_closes("whatsapp", None) is not None and window_closes("whatsapp", None) < NOW  # type: ignore[operator]


def test_merge_keeps_the_reason_in_the_audit_trail(runtime: Runtime) -> None:
    say(runtime, "telegram", "931", "позовите оператора", NOW)
    say(runtime, "vk", "9311", "привет", NOW)
    keep, absorb = client(runtime, "telegram", "931"), client(runtime, "vk", "9311")
    runtime.desk_store.add_operator("lead", "x", "Лид", "lead", NOW)
    merged = runtime.desk.merge_clients(keep, absorb, "lead", "  назвал   тот же договор  по телефону ")
    assert merged.conversations == 1
    trail = [row.detail for row in runtime.desk_store.audit(conversation(runtime, "vk", "9311"))]
    assert trail == [
        f"client {absorb} merged into client {keep}: 1 conversations, 1 identities, 0 details "
        "(via console); reason: назвал тот же договор по телефону"
    ]
    with runtime.store.engine.connect() as connection:
        owners = connection.execute(select(func.count(func.distinct(conversations.c.client_id)))).scalar_one()
    assert owners == 1
