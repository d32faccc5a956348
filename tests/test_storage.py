"""Storage on a real SQLite file and a real PostgreSQL server: everything said both ways, details,
handoffs, tasks, duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session, select

from dialogs.engine import Engine
from dialogs.messages import IncomingMessage
from dialogs.service import ConversationService
from storage import SqlStore, connect
from storage.database import sqlite_url
from storage.models import ChannelIdentity, Conversation, DetailRecord, HandoffRecord, TaskRecord

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def service_on(url: str, engine: Engine) -> tuple[ConversationService, SqlStore]:
    store = SqlStore(connect(url))
    return ConversationService(engine, store), store


def message(text: str, number: int, chat: str = "42") -> IncomingMessage:
    return IncomingMessage(
        "telegram", chat, "u" + chat, text, START + timedelta(seconds=10 * number), str(number)
    )


def test_sqlite_file_runs_in_wal_mode(tmp_path: Path) -> None:
    db = connect(sqlite_url(str(tmp_path / "t.db")))
    with db.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_a_dialog_is_stored_in_full(database_url: str, engine: Engine) -> None:
    service, store = service_on(database_url, engine)
    lines = ["перезвоните мне", "8 913 123 45 67", "ой, номер другой: 8 913 000 11 22", "завтра после 18"]
    for number, line in enumerate(lines):
        service.handle(message(line, number))
    with Session(store.engine) as session:
        conversation = session.exec(select(Conversation)).one()
        identity = session.exec(select(ChannelIdentity)).one()
        assert (identity.channel, identity.external_id) == ("telegram", "u42")
        details = session.exec(select(DetailRecord).order_by(DetailRecord.id)).all()  # type: ignore[arg-type]
        tasks = session.exec(select(TaskRecord)).all()
    assert conversation.id is not None
    stored = store.messages(conversation.id)
    assert [m.text for m in stored if m.direction == "in"] == lines
    assert sum(m.direction == "out" for m in stored) >= len(lines)
    assert [(d.name, d.value, d.superseded) for d in details] == [
        ("phone", "+79131234567", True),
        ("phone", "+79130001122", False),
        ("callback_time", "2026-11-24 18:00", False),
    ]
    assert store.details(conversation.id) == {"phone": "+79130001122", "callback_time": "2026-11-24 18:00"}
    assert [t.kind for t in tasks] == ["callback"]


def test_handoff_is_stored_with_reason_and_category(database_url: str, engine: Engine) -> None:
    service, store = service_on(database_url, engine)
    service.handle(message("нет интернета, договор 1234567", 0))
    service.handle(message("позовите оператора", 1))
    with Session(store.engine) as session:
        handoff = session.exec(select(HandoffRecord)).one()
        conversation = session.exec(select(Conversation)).one()
    assert (handoff.reason, handoff.category) == ("client_asked", "tech")
    assert conversation.status == "handed_off"


def test_a_message_seen_twice_is_processed_once(database_url: str, engine: Engine) -> None:
    service, store = service_on(database_url, engine)
    first = service.handle(message("не работает интернет", 0))
    again = service.handle(message("не работает интернет", 0))
    assert first.replies and not again.replies
    assert len(store.messages(1)) == 2


def test_chats_are_kept_apart(database_url: str, engine: Engine) -> None:
    service, store = service_on(database_url, engine)
    service.handle(message("не работает интернет", 0, chat="1"))
    service.handle(message("привет", 1, chat="2"))
    service.handle(message("7654321", 2, chat="1"))
    assert store.details(1) == {"contract": "7654321"}
    assert store.details(2) == {}


def test_huge_message_is_stored_whole_and_answered(database_url: str, engine: Engine) -> None:
    service, store = service_on(database_url, engine)
    huge = "интернет " * 12_000
    turn = service.handle(message(huge, 0))
    assert turn.replies
    stored = store.messages(1)
    assert stored[0].text == huge
