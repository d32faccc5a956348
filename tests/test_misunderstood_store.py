"""What the bot did not understand is kept for editors, on a real SQLite file and a real PostgreSQL server:
each "not understood" reply and each handoff for failing to understand, with the client's words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from common.messages import IncomingMessage
from dialogs.engine import Engine
from dialogs.service import ConversationService
from storage import SqlStore, connect
from storage.tables import misunderstood

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_not_understood_turns_and_stuck_handoffs_are_kept(database_url: str, engine: Engine) -> None:
    store = SqlStore(connect(database_url))
    service = ConversationService(engine, store)
    lines = ["хочу", "абырвалг квакозябра", "фыва пролдж", "zzz qqq"]
    for number, line in enumerate(["договор 7654321, не работает интернет", *lines]):
        service.handle(
            IncomingMessage("telegram", "5", "u5", line, START + timedelta(minutes=number), str(number))
        )
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(misunderstood.c.reason, misunderstood.c.text).order_by(misunderstood.c.id)
        )
        kept = [(str(row.reason), str(row.text)) for row in rows]
    # The third miss in a row hands the conversation over: kept once, as the handoff's reason; what the
    # client writes while waiting for the person is no misunderstanding.
    assert kept == [
        ("not_understood", "хочу"),
        ("not_understood", "абырвалг квакозябра"),
        ("stuck", "фыва пролдж"),
    ]
