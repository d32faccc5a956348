"""Turns in batches: several chats' turns in one SQLite transaction (group commit), a worker's chat in
one PostgreSQL transaction on one connection, and the same replies as one message at a time."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from bot.channels.outbound import Outbound
from bot.telegram.gateway import TelegramGateway
from common.locks import ChatLocks
from common.messages import Button, IncomingMessage
from dialogs.engine import Engine, Turn
from dialogs.service import ConversationService
from storage import SqlStore, connect
from storage.database import sqlite_url
from storage.locks import chat_locks_for

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DIALOG = ["не работает интернет", "договор 1234567", "все горят", "нет, не помогло"]


def message(text: str, number: int, chat: str = "42") -> IncomingMessage:
    return IncomingMessage(
        "telegram", chat, "u" + chat, text, START + timedelta(seconds=30 * number), f"msg:{number}"
    )


def replies_one_by_one(url: str, engine: Engine, chats: list[str]) -> dict[str, list[str]]:
    service = ConversationService(engine, SqlStore(connect(url)))
    said: dict[str, list[str]] = {chat: [] for chat in chats}
    for number, text in enumerate(DIALOG):
        for chat in chats:
            said[chat] += [reply.text for reply in service.handle(message(text, number, chat)).replies]
    return said


def test_a_batch_of_chats_answers_as_one_by_one_and_stores_all_or_nothing(
    tmp_path: Path, engine: Engine
) -> None:
    chats = ["1", "2", "3"]
    expected = replies_one_by_one(sqlite_url(str(tmp_path / "one.db")), engine, chats)
    store = SqlStore(connect(sqlite_url(str(tmp_path / "batch.db"))))
    service = ConversationService(engine, store)
    assert service.batches
    said: dict[str, list[str]] = {chat: [] for chat in chats}
    real_write = store.writer.write_turn
    for number, text in enumerate(DIALOG):
        batch = [message(text, number, chat) for chat in chats]
        if number == 1:
            # The last chat's turn cannot be stored: the whole batch is rolled back, then stored again.
            calls = 0

            def failing(*args: object, **kwargs: object) -> None:
                nonlocal calls
                calls += 1
                if calls == len(chats):
                    raise OSError("disk went away")
                real_write(*args, **kwargs)  # type: ignore[arg-type]

            store.writer.write_turn = failing  # type: ignore[method-assign]
            with pytest.raises(OSError):
                service.handle_all(batch)
            store.writer.write_turn = real_write  # type: ignore[method-assign]
            assert [m.text for m in store.messages(1) if m.direction == "in"] == [DIALOG[0]]
        for chat, turn in zip(chats, service.handle_all(batch), strict=True):
            said[chat] += [reply.text for reply in turn.replies]
    assert said == expected
    assert service.handle_all([message(DIALOG[0], 0, "1")]) == [Turn()], "a duplicate is not run again"


def test_chats_sharing_a_lock_stripe_are_held_together() -> None:
    locks = ChatLocks(stripes=1)
    done = threading.Event()

    def hold() -> None:
        with locks.hold_all([("telegram", "1"), ("telegram", "2"), ("telegram", "1")]):
            done.set()

    worker = threading.Thread(target=hold)
    worker.start()
    worker.join(5)
    assert done.is_set(), "a stripe taken twice by one batch would deadlock"


def test_a_worker_handles_a_chat_on_one_connection_in_one_transaction(tmp_path: Path, engine: Engine) -> None:
    """Before: the advisory lock on a connection of its own, then a read of the messages, a read of the
    state and a transaction per message, each on a connection of its own."""
    from tests.support.databases import fresh_postgres

    with fresh_postgres() as url:
        store = SqlStore(connect(url))
        service = ConversationService(engine, store, chat_locks_for(store.engine))
        for number, text in enumerate(DIALOG):
            assert service.accept(message(text, number))
        checkouts = []
        event.listen(store.engine.pool, "checkout", lambda *args: checkouts.append(1))
        assert service.process_pending("telegram", "42") == len(DIALOG)
        assert len(checkouts) == 1
        assert service.process_pending("telegram", "42") == 0
        said = [m.text for m in store.messages(1) if m.direction == "out"]
        store.engine.dispose()
    sqlite = replies_one_by_one(sqlite_url(str(tmp_path / "one.db")), engine, ["42"])
    assert said == sqlite["42"], "the state carries from one message of the batch to the next"


class Recorder(Outbound):
    """Records what the gateway sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send_text(self, chat_id: str, text: str, buttons: Sequence[Button], *, key: str = "") -> None:
        self.sent.append((chat_id, text))

    async def typing(self, chat_id: str) -> None:
        pass

    async def answer_callback(self, callback_id: str) -> None:
        pass


@pytest.mark.anyio
async def test_a_batch_that_cannot_be_stored_is_handled_one_by_one(tmp_path: Path, engine: Engine) -> None:
    service = ConversationService(engine, SqlStore(connect(sqlite_url(str(tmp_path / "gw.db")))))

    def broken(arrived: object) -> list[Turn]:
        raise OSError("database is locked")

    service.handle_all = broken  # type: ignore[method-assign,assignment]
    outbound = Recorder()
    gateway = TelegramGateway(service, outbound)
    assert gateway.turns_on == "loop"
    for chat in ("1", "2"):
        await gateway.submit(message(DIALOG[0], 0, chat))
    await gateway.drain()
    assert sorted(chat for chat, _ in outbound.sent) == ["1", "2"]


def test_a_worker_stores_and_handles_a_message_of_an_idle_chat_in_one_transaction(
    tmp_path: Path, engine: Engine
) -> None:
    """Before: `accept` in one transaction, then `process_pending` in another (4.4 round trips)."""
    from tests.support.databases import fresh_postgres

    with fresh_postgres() as url:
        store = SqlStore(connect(url))
        service = ConversationService(engine, store, chat_locks_for(store.engine))
        checkouts = []
        event.listen(store.engine.pool, "checkout", lambda *args: checkouts.append(1))
        for number, text in enumerate(DIALOG):
            checkouts.clear()
            assert service.receive(message(text, number)) == 1
            assert len(checkouts) == 1
        assert service.receive(message(DIALOG[0], 0)) == 0, "a duplicate is neither stored nor run again"
        assert service.process_pending("telegram", "42") == 0
        stored = store.messages(1)
        store.engine.dispose()
    assert [m.text for m in stored if m.direction == "in"] == DIALOG
    assert all(m.handled for m in stored)
    assert {m.delivery for m in stored if m.direction == "out"} == {"pending"}, "replies go to the outbox"
    sqlite = replies_one_by_one(sqlite_url(str(tmp_path / "one.db")), engine, ["42"])
    assert [m.text for m in stored if m.direction == "out"] == sqlite["42"]


def test_a_message_behind_waiting_ones_waits_its_turn(
    tmp_path: Path, engine: Engine, database_url: str
) -> None:
    store = SqlStore(connect(database_url))
    service = ConversationService(engine, store, chat_locks_for(store.engine))
    assert service.accept(message(DIALOG[0], 0))
    assert service.receive(message(DIALOG[1], 1)) == 0, "handled before the one waiting: out of order"
    assert [m.text for _, _, m in store.unhandled("telegram", "42")] == DIALOG[:2], "the sweeper sees both"
    assert service.process_pending("telegram", "42") == 2
    assert service.receive(message(DIALOG[2], 2)) == 1
    assert service.receive(message(DIALOG[3], 3)) == 1
    said = [m.text for m in store.messages(1) if m.direction == "out"]
    store.engine.dispose()
    sqlite = replies_one_by_one(sqlite_url(str(tmp_path / "one.db")), engine, ["42"])
    assert said == sqlite["42"]


def test_a_turn_that_cannot_be_stored_leaves_no_message_behind(engine: Engine) -> None:
    """Stored and handled together or not at all: Telegram, not answered, sends the update again."""
    from tests.support.databases import fresh_postgres

    with fresh_postgres() as url:
        store = SqlStore(connect(url))
        service = ConversationService(engine, store, chat_locks_for(store.engine))
        assert service.receive(message(DIALOG[0], 0)) == 1
        original = store.writer.write_turn

        def failing(*args: object, **kwargs: object) -> None:
            raise RuntimeError("the database went away")

        store.writer.write_turn = failing  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            service.receive(message(DIALOG[1], 1))
        assert [m.text for m in store.messages(1) if m.direction == "in"] == DIALOG[:1]
        store.writer.write_turn = original  # type: ignore[method-assign]
        assert service.receive(message(DIALOG[1], 1)) == 1, "the update sent again is handled"
        assert [m.text for m in store.messages(1) if m.direction == "in"] == DIALOG[:2]
        store.engine.dispose()
