"""Storage on a real SQLite file and a real PostgreSQL server: everything said both ways, details,
handoffs, tasks, duplicates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlmodel import Session, select

from common.messages import IncomingMessage
from dialogs.engine import Engine
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


def test_a_turn_that_cannot_be_stored_leaves_nothing_and_runs_again(
    database_url: str, engine: Engine
) -> None:
    """Message, turn and replies are one transaction: a failure stores none of them, a retry all."""
    service, store = service_on(database_url, engine)
    service.handle(message("не работает интернет", 0))
    broken = SqlStore(store.engine)
    real_write = broken.writer.write_turn

    def failing(*args: object, **kwargs: object) -> None:
        raise OSError("disk went away")

    broken.writer.write_turn = failing  # type: ignore[method-assign]
    flaky = ConversationService(engine, broken)
    try:
        flaky.handle(message("договор 1234567", 1))
    except OSError:
        pass
    else:
        raise AssertionError("the failure was swallowed")
    stored = store.messages(1)
    assert [m.text for m in stored if m.direction == "in"] == ["не работает интернет"]
    broken.writer.write_turn = real_write  # type: ignore[method-assign]
    turn = flaky.handle(message("договор 1234567", 1))
    assert turn.replies
    assert [m.text for m in store.messages(1) if m.direction == "in"] == [
        "не работает интернет",
        "договор 1234567",
    ]
    assert store.details(1) == {"contract": "1234567"}
    # Delivered again (a retried update), it is not run twice.
    assert flaky.handle(message("договор 1234567", 1)).replies == []


def test_a_message_stored_for_later_is_run_once_by_handle(database_url: str, engine: Engine) -> None:
    service, store = service_on(database_url, engine)
    assert store.accept(message("позовите оператора", 0))
    turn = service.handle(message("позовите оператора", 0))
    assert turn.replies
    assert [m.direction for m in store.messages(1)].count("in") == 1
    assert store.unhandled("telegram", "42") == []


def test_an_sqlite_file_of_the_first_schema_is_migrated_on_open(tmp_path: Path, engine: Engine) -> None:
    from storage.schema import current_revision, head_revision, upgrade

    path = tmp_path / "old.db"
    old = create_engine(sqlite_url(str(path)))
    upgrade(old, "0001")
    with old.begin() as connection:
        connection.execute(
            text("INSERT INTO clients (created_at, display_name) VALUES ('2026-11-23 09:00:00.000000', '');")
        )
    old.dispose()
    service, store = service_on(sqlite_url(str(path)), engine)
    assert current_revision(store.engine) == head_revision()
    service.handle(message("не работает интернет", 0))
    with store.engine.connect() as connection:
        plan = connection.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT id FROM messages "
                "WHERE conversation_id = 1 AND direction = 'in' AND external_id = '0'"
            )
        ).all()
    assert "ix_messages_conversation" in str(plan)


def _wal_frames(path: Path) -> tuple[int, int]:
    """(frames in the log, frames copied into the file), read from the WAL index as sqlite.org/walformat
    documents it: mxFrame at byte 16 of the header, nBackfill at byte 96."""
    import struct

    shm = Path(f"{path}-shm").read_bytes()
    return struct.unpack_from("=I", shm, 16)[0], struct.unpack_from("=I", shm, 96)[0]


def test_sqlite_checkpoints_run_beside_the_turns(tmp_path: Path, engine: Engine) -> None:
    """Commits do not checkpoint (a checkpoint syncs the disk twice); a thread of the store does."""
    import time

    path = tmp_path / "ck.db"
    service, store = service_on(sqlite_url(str(path)), engine)
    with store.engine.connect() as connection:
        assert connection.execute(text("PRAGMA wal_autocheckpoint")).scalar() == 0
    for number in range(40):
        service.handle(message("не работает интернет" if number % 2 else "договор 1234567", number))
    deadline = time.monotonic() + 10
    frames, copied = _wal_frames(path)
    while copied < frames and time.monotonic() < deadline:
        time.sleep(0.05)
        frames, copied = _wal_frames(path)
    assert frames > 0 and copied == frames, (frames, copied)


def test_turn_times_are_written_as_the_models_write_them(database_url: str) -> None:
    from storage.models import Moment
    from storage.turns import TurnWriter

    store_engine = connect(database_url)
    writer = TurnWriter(store_engine)
    dialect = store_engine.dialect
    process = Moment.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)
    for at in (
        datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 9, 0, 5, 123, tzinfo=UTC),
        datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
    ):
        assert writer.moment(at) == process(at)
    moscow = datetime(2026, 11, 23, 12, 0, tzinfo=timezone(timedelta(hours=3)))
    assert writer.moment(moscow) == process(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))
