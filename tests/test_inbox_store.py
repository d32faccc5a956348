"""The misunderstood inbox's reads on a real SQLite file and a real PostgreSQL server: the period's newest
messages first, the limit and the total, and a conversation's messages only when something in it was
misunderstood."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Engine

from storage import connect
from storage.inbox import SqlInbox
from storage.tables import clients, conversations, messages, misunderstood

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    built = connect(database_url)
    try:
        yield built
    finally:
        built.dispose()


def conversation(engine: Engine, chat: str) -> int:
    with engine.begin() as connection:
        client = connection.execute(
            insert(clients).values(created_at=NOW, display_name="")
        ).inserted_primary_key
        assert client is not None
        row = connection.execute(
            insert(conversations).values(
                client_id=client[0],
                channel="vk",
                chat_id=chat,
                state_json="{}",
                created_at=NOW,
                updated_at=NOW,
            )
        ).inserted_primary_key
    assert row is not None
    return int(row[0])


def misheard(
    engine: Engine, conversation_id: int, text: str, at: datetime, reason: str = "not_understood"
) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(misunderstood).values(conversation_id=conversation_id, reason=reason, text=text, at=at)
        )


def message(
    engine: Engine, conversation_id: int, direction: str, text: str, at: datetime, author: str
) -> None:
    with engine.begin() as connection:
        connection.execute(
            insert(messages).values(
                conversation_id=conversation_id, direction=direction, text=text, author=author, at=at
            )
        )


def test_the_period_newest_first_with_its_total(engine: Engine) -> None:
    cid = conversation(engine, "1")
    for days in (40, 29, 10, 2, 1):
        misheard(engine, cid, f"{days} дней назад", NOW - timedelta(days=days))
    misheard(engine, cid, "только что", NOW - timedelta(minutes=1), "stuck")
    inbox = SqlInbox(engine)
    found = inbox.misheard(NOW - timedelta(days=30), NOW, 100)
    assert [m.text for m in found.messages] == [
        "только что",
        "1 дней назад",
        "2 дней назад",
        "10 дней назад",
        "29 дней назад",
    ]
    assert found.total == 5
    assert found.messages[0].reason == "stuck" and found.messages[0].at == NOW - timedelta(minutes=1)
    assert found.messages[0].conversation_id == cid
    limited = inbox.misheard(NOW - timedelta(days=30), NOW, 2)
    assert [m.text for m in limited.messages] == ["только что", "1 дней назад"] and limited.total == 5
    assert inbox.misheard(NOW - timedelta(days=60), NOW - timedelta(days=35), 10).total == 1


def test_a_transcript_only_of_a_conversation_with_something_misunderstood(engine: Engine) -> None:
    plain, confused = conversation(engine, "2"), conversation(engine, "3")
    message(engine, plain, "in", "нет интернета", NOW, "client")
    for minute, (direction, text, author) in enumerate(
        [
            ("in", "абырвалг", "client"),
            ("out", "Простите, не разобрал.", "bot"),
            ("in", "договор 7654321", "client"),
        ]
    ):
        message(engine, confused, direction, text, NOW + timedelta(minutes=minute), author)
    misheard(engine, confused, "абырвалг", NOW)
    inbox = SqlInbox(engine)
    assert inbox.transcript(plain) is None
    assert inbox.transcript(10**9) is None
    found = inbox.transcript(confused)
    assert found is not None
    assert found.channel == "vk" and found.total == 3
    assert [(line.direction, line.text, line.author) for line in found.lines] == [
        ("in", "абырвалг", "client"),
        ("out", "Простите, не разобрал.", "bot"),
        ("in", "договор 7654321", "client"),
    ]
    assert [m.text for m in found.misheard] == ["абырвалг"]
