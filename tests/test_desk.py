"""The operators' desk over a real SQLite file and a real PostgreSQL server: queue order, targets and
breaches, silence, ratings."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from common.messages import Button, IncomingMessage, Reply
from common.names import Author, Delivery, Direction
from common.state import ConversationState
from operators.desk import DeskError
from operators.passwords import hash_password, verify_password
from storage import connect
from storage.database import SchemaError
from storage.desk import DeskConflict, OutboxItem
from storage.tables import conversations
from tests.support.webserver import always_open, web_runtime
from wiring.runtime import Runtime

T0 = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path, database_url: str) -> Runtime:
    return web_runtime(tmp_path, always_open(content_copy), database_url)


def say(runtime: Runtime, chat: str, text: str, at: datetime, payload: str | None = None) -> list[str]:
    message = IncomingMessage(
        channel="telegram",
        chat_id=chat,
        user_id=chat,
        text=text,
        at=at,
        message_id=f"{chat}:{at.timestamp()}:{text}",
        button_payload=payload,
    )
    return [reply.text for reply in runtime.service.handle(message).replies]


def conversation_of(runtime: Runtime, chat: str) -> int:
    for item in runtime.desk_store.queue(T0 + timedelta(days=1)):
        row = runtime.desk_store.conversation(item.conversation_id)
        assert row is not None
        if row.conversation.chat_id == chat:
            return item.conversation_id
    raise AssertionError(f"chat {chat} is not in the queue")


def test_queue_puts_urgent_then_overdue_then_oldest(runtime: Runtime) -> None:
    say(runtime, "calm-old", "позовите оператора", T0)
    say(runtime, "calm-new", "позовите оператора", T0 + timedelta(minutes=3))
    say(
        runtime,
        "angry",
        "вы там совсем охренели?! третий день нет интернета, буду судиться",
        T0 + timedelta(minutes=4),
    )
    order = [runtime.desk_store.conversation(i.conversation_id).conversation.chat_id  # type: ignore[union-attr]
             for i in runtime.desk_store.queue(T0 + timedelta(minutes=4, seconds=30))]  # fmt: skip
    assert order == ["angry", "calm-old", "calm-new"]
    items = runtime.desk_store.queue(T0 + timedelta(minutes=4, seconds=30))
    assert items[0].priority == "high" and items[0].persona == "aggressor"
    assert [i.breached for i in items] == [False, True, False]


def test_breaches_are_recorded_and_a_timely_reply_is_not_one(runtime: Runtime) -> None:
    clock = Clock(T0)
    runtime.desk.clock = clock
    say(runtime, "late", "позовите оператора", T0)
    say(runtime, "quick", "позовите оператора", T0)
    late, quick = conversation_of(runtime, "late"), conversation_of(runtime, "quick")
    clock.now = T0 + timedelta(minutes=1)
    runtime.desk.reply(quick, "anna", "Анна", "Здравствуйте!")
    assert runtime.desk_store.mark_breaches(T0 + timedelta(minutes=1, seconds=59)) == 0
    assert runtime.desk_store.mark_breaches(T0 + timedelta(minutes=2, seconds=1)) == 1
    handoff = runtime.desk_store.conversation(late).handoff  # type: ignore[union-attr]
    assert handoff is not None and handoff.breached_at is not None
    quick_handoff = runtime.desk_store.conversation(quick).handoff  # type: ignore[union-attr]
    assert quick_handoff is not None and quick_handoff.breached_at is None
    assert quick_handoff.first_response_at is not None


def test_a_late_first_reply_records_the_breach(runtime: Runtime) -> None:
    clock = Clock(T0 + timedelta(minutes=5))
    runtime.desk.clock = clock
    say(runtime, "c", "позовите оператора", T0)
    conversation = conversation_of(runtime, "c")
    runtime.desk.reply(conversation, "anna", "Анна", "Простите за ожидание")
    handoff = runtime.desk_store.conversation(conversation).handoff  # type: ignore[union-attr]
    assert handoff is not None and handoff.breached_at is not None and handoff.taken_by == "anna"


def test_with_an_operator_the_bot_is_silent_but_keeps_listening(runtime: Runtime) -> None:
    say(runtime, "c", "позовите оператора", T0)
    conversation = conversation_of(runtime, "c")
    runtime.desk.take(conversation, "anna", "Анна")
    assert say(runtime, "c", "мой договор 7654321, телефон +7 913 123-45-67", T0 + timedelta(minutes=1)) == []
    view = runtime.desk_store.conversation(conversation)
    assert view is not None
    assert view.details == {"contract": "7654321", "phone": "+79131234567"}
    assert view.conversation.status == "with_operator"
    assert view.history[-1].text.startswith("мой договор")
    runtime.desk.hand_back(conversation, "anna")
    assert say(runtime, "c", "спасибо", T0 + timedelta(minutes=2)) != []


def test_close_asks_for_a_rating_and_a_low_one_flags_a_follow_up(runtime: Runtime) -> None:
    say(runtime, "c", "позовите оператора", T0)
    conversation = conversation_of(runtime, "c")
    runtime.desk.reply(conversation, "anna", "Анна", "Готово")
    runtime.desk.close(conversation, "anna")
    pending = runtime.desk_store.claim_pending("telegram", T0)
    authors = {row.id: row.author for row in runtime.desk_store.chat_messages("telegram", "c", 0)}
    assert [authors[item.id] for item in pending] == ["bot", "anna", "bot"]
    assert pending[1].reply == Reply("Готово")
    assert [b.payload for b in pending[-1].reply.buttons] == [f"rate:{n}" for n in range(1, 6)]
    assert say(runtime, "c", "", T0 + timedelta(minutes=3), payload="rate:2")
    handoff = runtime.desk_store.conversation(conversation).handoff  # type: ignore[union-attr]
    assert handoff is not None and (handoff.rating, handoff.follow_up, handoff.status) == (2, True, "closed")


def test_a_good_rating_needs_no_follow_up(runtime: Runtime) -> None:
    say(runtime, "c", "позовите оператора", T0)
    conversation = conversation_of(runtime, "c")
    runtime.desk.close(conversation, "anna")
    say(runtime, "c", "5", T0 + timedelta(minutes=1))
    handoff = runtime.desk_store.conversation(conversation).handoff  # type: ignore[union-attr]
    assert handoff is not None and (handoff.rating, handoff.follow_up) == (5, False)


def test_two_operators_cannot_take_one_conversation(runtime: Runtime) -> None:
    say(runtime, "c", "позовите оператора", T0)
    conversation = conversation_of(runtime, "c")
    runtime.desk.take(conversation, "anna", "Анна")
    with pytest.raises(DeskConflict):
        runtime.desk.take(conversation, "boris", "Борис")
    with pytest.raises(DeskError, match="anna is answering"):
        runtime.desk.reply(conversation, "boris", "Борис", "Я тоже тут")
    audit = [(row.operator, row.action) for row in runtime.desk_store.audit(conversation)]
    assert audit == [("anna", "take")]


def test_transfer_returns_the_conversation_to_the_queue_of_another_category(runtime: Runtime) -> None:
    say(runtime, "c", "позовите оператора", T0)
    conversation = conversation_of(runtime, "c")
    runtime.desk.take(conversation, "anna", "Анна")
    runtime.desk.transfer(conversation, "anna", "billing")
    item = next(i for i in runtime.desk_store.queue(T0) if i.conversation_id == conversation)
    assert (item.category, item.status, item.taken_by) == ("billing", "waiting", "")
    with pytest.raises(DeskError, match="unknown category"):
        runtime.desk.transfer(conversation, "anna", "nowhere")


def test_replies_are_checked(runtime: Runtime) -> None:
    say(runtime, "c", "позовите оператора", T0)
    conversation = conversation_of(runtime, "c")
    with pytest.raises(DeskError, match="empty"):
        runtime.desk.reply(conversation, "anna", "Анна", "   ")
    with pytest.raises(DeskError, match="4000"):
        runtime.desk.reply(conversation, "anna", "Анна", "х" * 4001)


def test_suggestions_are_phrased_for_the_clients_persona(runtime: Runtime) -> None:
    say(runtime, "angry", "вы там совсем охренели?! третий день нет интернета, буду судиться", T0)
    view = runtime.desk_store.conversation(conversation_of(runtime, "angry"))
    assert view is not None and view.state.persona == "aggressor"
    suggestions = runtime.desk.suggestions(view, "Анна")
    guide_lines = (Path(runtime.content.directory).parent / "common" / "guides" / "aggressor.yaml").read_text(
        encoding="utf-8"
    )
    greeting = next(s.text for s in suggestions if s.moment == "operator.greeting")
    assert "Анна" in greeting and greeting.replace("Анна", "{operator}") in guide_lines
    assert view.state.persona_cues, "operators see why the client reads as an aggressor"


def test_passwords_are_salted_hashes() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and "correct horse" not in first
    assert verify_password("correct horse", first) and not verify_password("correct hors", first)
    assert not verify_password("x", "not-a-hash")


def test_an_older_database_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE handoffs (id INTEGER PRIMARY KEY, conversation_id INTEGER, reason TEXT)")
    with pytest.raises(SchemaError, match=r"holds tables but no migration record"):
        connect(f"sqlite:///{path}")


def test_a_contract_ties_no_one_but_an_operators_merge_does(runtime: Runtime) -> None:
    """A typed contract number is a claim: it pulls in nobody's history until an operator merges."""
    say(runtime, "tg-user", "не работает интернет, договор 7654321", T0)
    web = IncomingMessage("web", "visitor-abcdefghijklmnop", "visitor-abcdefghijklmnop", "", T0)
    for minute, text in enumerate(["договор 7654321, позовите оператора"]):
        runtime.service.handle(
            IncomingMessage(
                web.channel, web.chat_id, web.user_id, text, T0 + timedelta(minutes=minute + 1), "w1"
            )
        )
    say(runtime, "stranger", "договор 1111111, позовите оператора", T0)
    web_conversation = next(
        i.conversation_id for i in runtime.desk_store.queue(T0 + timedelta(minutes=5)) if i.channel == "web"
    )
    view = runtime.desk_store.conversation(web_conversation)
    assert view is not None
    assert {(i.channel, i.external_id) for i in view.identities} == {("web", "visitor-abcdefghijklmnop")}
    assert "не работает интернет, договор 7654321" not in [row.text for row in view.history]
    assert view.claimed == ["contract"]

    runtime.desk_store.add_operator("anna", hash_password("anna-pass-1234"), "Анна", "operator", T0)
    with runtime.store.engine.connect() as connection:
        telegram_client = connection.execute(
            select(conversations.c.client_id).where(conversations.c.chat_id == "tg-user")
        ).scalar_one()
    runtime.desk_store.merge_clients(telegram_client, view.conversation.client_id, "anna", T0)
    merged = runtime.desk_store.conversation(web_conversation)
    assert merged is not None
    assert {(i.channel, i.external_id) for i in merged.identities} == {
        ("telegram", "tg-user"),
        ("web", "visitor-abcdefghijklmnop"),
    }
    texts = [row.text for row in merged.history]
    assert "не работает интернет, договор 7654321" in texts
    assert not any("1111111" in text for text in texts)
    assert [row.action for row in runtime.desk_store.audit(web_conversation)] == ["merge"]


def test_the_outbox_hands_out_replies_with_their_buttons_not_rows(runtime: Runtime) -> None:
    say(runtime, "o", "позовите оператора", T0)
    conversation = conversation_of(runtime, "o")
    runtime.desk.reply(conversation, "anna", "Анна", "Готово")
    runtime.desk.close(conversation, "anna")
    items = runtime.desk_store.claim_pending("telegram", T0)
    assert all(isinstance(item, OutboxItem) and item.channel == "telegram" for item in items)
    assert {item.chat_id for item in items} == {"o"}
    rating = items[-1].reply
    assert all(isinstance(button, Button) for button in rating.buttons)
    assert [(b.text, b.payload) for b in rating.buttons] == [(str(n), f"rate:{n}") for n in range(1, 6)]
    # Claimed: a second look finds nothing until they are sent or released.
    assert runtime.desk_store.claim_pending("telegram", T0) == []


def test_an_operators_reply_and_the_bots_are_written_by_the_same_statements(runtime: Runtime) -> None:
    say(runtime, "w", "позовите оператора", T0)
    conversation = conversation_of(runtime, "w")
    runtime.desk.reply(conversation, "anna", "Анна", "Здравствуйте")
    rows = runtime.store.messages(conversation)
    bot = next(row for row in rows if row.author == Author.BOT)
    person = next(row for row in rows if row.author == "anna")
    same = ("direction", "attachment", "external_id", "handled", "raw_json")
    assert [getattr(person, name) for name in same] == [getattr(bot, name) for name in same]
    assert (person.direction, person.delivery, person.buttons_json) == (Direction.OUT, Delivery.PENDING, "[]")
    # The state an operator's action stores is the turn path's JSON (orjson), byte for byte.
    with runtime.store.engine.connect() as connection:
        state_json = connection.execute(
            select(conversations.c.state_json).where(conversations.c.id == conversation)
        ).scalar_one()
    assert state_json == ConversationState.from_json(state_json).to_json()
