"""Generated support history with a known shape, for the analytics benchmark and its tests.

A year (or any span) of conversations across channels and personas, their messages in both directions,
handoffs with first responses, breaches, ratings and follow-ups, tasks, and the messages the bot did not
understand. Rows are written in bulk: executemany on SQLite, COPY on PostgreSQL (generation is not the
figure). The same seed gives the same rows; `Generated` keeps what a test needs to know the answers.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from common.names import (
    NOT_UNDERSTOOD,
    NOT_UNDERSTOOD_HANDOFFS,
    Author,
    ConversationStatus,
    Direction,
    HandoffReason,
    HandoffStatus,
    Priority,
    TaskKind,
    TaskStatus,
)

CHANNELS = {"telegram": 40, "whatsapp": 25, "vk": 15, "web": 15, "max": 5}
PERSONAS = {"neutral": 40, "unsure": 15, "talker": 12, "positive": 13, "aggressor": 10, "sysadmin": 10}
# How often each persona ends with people: the aggressive ones far more often.
HANDED_OFF = {
    "aggressor": 0.6,
    "sysadmin": 0.35,
    "unsure": 0.3,
    "talker": 0.25,
    "positive": 0.2,
    "neutral": 0.2,
}
REASONS = {
    HandoffReason.CLIENT_ASKED: 30,
    HandoffReason.SCENARIO: 25,
    HandoffReason.NOT_SOLVED: 15,
    HandoffReason.ESCALATION: 10,
    HandoffReason.STUCK: 8,
    HandoffReason.MISSED_POINT: 5,
    HandoffReason.ACCEPTED_OFFER: 5,
    HandoffReason.TRIED_BASICS: 2,
}
CATEGORIES = {"tech": 50, "billing": 25, "sales": 15, "general": 10}
SCENARIOS = {
    "no_internet": ("tech", 30),
    "slow_internet": ("tech", 15),
    "balance": ("billing", 15),
    "payment_missing": ("billing", 10),
    "change_tariff": ("sales", 10),
    "new_connection": ("sales", 5),
    "moving": ("sales", 5),
    "callback": ("general", 5),
}
MISUNDERSTOOD_SHARE = 0.04
CHUNK = 20_000
LINES = [
    "здравствуйте, не работает интернет уже второй день",
    "договор 7654321, проверьте пожалуйста",
    "роутер перезагружал, не помогло",
    "спасибо большое!",
    "когда почините?",
    "сколько можно ждать, третий раз пишу",
]
REPLIES = [
    "Здравствуйте! Сейчас проверю линию по вашему договору.",
    "Подскажите, пожалуйста, номер договора.",
    "Вижу проблему на нашей стороне, специалисты уже работают.",
    "Передаю разговор специалисту, он ответит в течение двух минут.",
]


@dataclass(frozen=True, slots=True)
class Shape:
    """How much history, over which span of days ending when."""

    conversations: int = 50_000
    messages: int = 1_000_000
    days: int = 365
    end: datetime = datetime(2026, 12, 1, tzinfo=UTC)
    seed: int = 20


@dataclass(slots=True)
class Generated:
    """The rows written, as tuples in table column order (tests compute the expected answers from them)."""

    conversations: list[tuple[Any, ...]] = field(default_factory=list)
    messages: list[tuple[Any, ...]] = field(default_factory=list)
    handoffs: list[tuple[Any, ...]] = field(default_factory=list)
    tasks: list[tuple[Any, ...]] = field(default_factory=list)
    misunderstood: list[tuple[Any, ...]] = field(default_factory=list)


COLUMNS = {
    "clients": ("id", "created_at", "display_name"),
    "conversations": (
        "id", "client_id", "channel", "chat_id", "status", "persona", "state_json", "created_at",
        "updated_at",
    ),
    "messages": (
        "id", "conversation_id", "direction", "text", "external_id", "buttons_json", "author", "delivery",
        "handled", "raw_json", "at",
    ),
    "handoffs": (
        "id", "conversation_id", "reason", "category", "priority", "note", "status", "created_at", "due_at",
        "taken_by", "taken_at", "first_response_at", "breached_at", "closed_at", "rating", "follow_up",
    ),
    "tasks": (
        "id", "conversation_id", "kind", "category", "scenario_id", "payload_json", "status", "created_at",
        "due_at", "taken_by", "taken_at", "done_at", "outcome",
    ),
    "misunderstood": ("id", "conversation_id", "reason", "text", "at"),
}  # fmt: skip


def _pick(rng: random.Random, weights: dict[Any, int]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _state(rng: random.Random, persona: str, scenario: str | None, turns: int) -> str:
    """A conversation's stored state as common/state.py writes it (compact, its keys in its order): about
    2 KB of collected details, cues, phrases heard and persona memory."""
    details = {
        "contract": {"value": f"{rng.randrange(10**6, 10**7)}", "raw": "договор 7654321", "display": ""},
        "phone": {"value": "+79131234567", "raw": "8 913 123-45-67", "display": "+7 913 123-45-67"},
    }
    if rng.random() < 0.5:
        details["address"] = {"value": "ул. Ленина, д. 5, кв. 12", "raw": "Ленина 5-12", "display": ""}
    state: dict[str, Any] = {"persona": persona, "details": details, "not_understood": rng.randrange(3)}
    if scenario is not None:
        state["last_scenario"] = scenario
    state.update(
        flood_tokens=7.0,
        flood_at="2026-11-23T09:01:00+00:00",
        persona_cues=[f"{persona}: word «пример{n}» (+0.{n})" for n in range(8)],
        used_phrases=[f"{persona}:ask.contract:{rng.getrandbits(32):08x}" for _ in range(12)],
        turns=turns,
        persona_memory={
            "count": turns,
            "history": [
                {"aggressor": 0.1 * n, "unsure": 0, "talker": 0, "positive": 0.2, "sysadmin": 0}
                for n in range(min(turns, 10))
            ],
        },
    )
    return orjson.dumps(state).decode()


def generate(shape: Shape) -> Generated:
    """Every row of the history, in memory (moments as aware UTC datetimes). Ids follow time, as in a
    database that stored the history as it happened."""
    rng = random.Random(shape.seed)
    rows = Generated()
    start = shape.end - timedelta(days=shape.days)
    span_s = shape.days * 86400
    base, extra = divmod(shape.messages, shape.conversations)
    offsets = sorted(rng.randrange(span_s - 3600) for _ in range(shape.conversations))
    messages: list[tuple[Any, ...]] = []
    missed: list[tuple[Any, ...]] = []
    handed: list[tuple[Any, ...]] = []
    tasks: list[tuple[Any, ...]] = []
    for number, offset in enumerate(offsets, 1):
        created = start + timedelta(seconds=offset)
        channel, persona = _pick(rng, CHANNELS), _pick(rng, PERSONAS)
        scenario = _pick(rng, {name: weight for name, (_c, weight) in SCENARIOS.items()})
        if rng.random() < 0.15:
            scenario = None
        count = base + (1 if number <= extra else 0)
        at = created
        for index in range(count):
            incoming = index % 2 == 0
            messages.append(
                (
                    number, Direction.IN if incoming else Direction.OUT,
                    LINES[index % len(LINES)] if incoming else REPLIES[index % len(REPLIES)],
                    f"m{index}" if incoming else "", "[]", Author.CLIENT if incoming else Author.BOT, "",
                    True, "", at,
                )
            )  # fmt: skip
            if incoming and rng.random() < MISUNDERSTOOD_SHARE:
                missed.append((number, NOT_UNDERSTOOD, LINES[index % len(LINES)], at))
            at += timedelta(seconds=rng.randint(15, 90))
        status = ConversationStatus.CLOSED
        if rng.random() < HANDED_OFF[persona]:
            handoff, follow_ups = _handoff(rng, number, created + timedelta(seconds=90), scenario)
            handed.append(handoff)
            tasks.extend(follow_ups)
            if handoff[1] in NOT_UNDERSTOOD_HANDOFFS:
                missed.append((number, handoff[1], LINES[5], handoff[6]))
            if handoff[5] == HandoffStatus.WAITING:
                status = ConversationStatus.HANDED_OFF
        elif scenario == "callback":
            due = created + timedelta(hours=2)
            tasks.append(
                (number, TaskKind.CALLBACK, "general", "callback", "{}", TaskStatus.DONE, created, due,
                 "anna", due, due, "")
            )  # fmt: skip
        state = _state(rng, persona, scenario, count // 2)
        rows.conversations.append(
            (number, number, channel, f"chat{number}", status, persona, state, created, at)
        )
    rows.messages = _numbered(messages, 9)
    rows.misunderstood = _numbered(missed, 3)
    rows.handoffs = _numbered(handed, 6)
    rows.tasks = _numbered(tasks, 6)
    return rows


def _numbered(found: list[tuple[Any, ...]], moment: int) -> list[tuple[Any, ...]]:
    """Rows in the order of their moment (field `moment`), each with its id first."""
    found.sort(key=lambda row: row[moment])
    return [(number, *row) for number, row in enumerate(found, 1)]


def _handoff(
    rng: random.Random, conversation: int, created: datetime, scenario: str | None
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One handoff (answered, breached, rated as a real desk would) and the tasks it led to."""
    reason = _pick(rng, REASONS)
    category = SCENARIOS[scenario][0] if scenario else _pick(rng, CATEGORIES)
    due = created + timedelta(minutes=2)
    answered = rng.random() < 0.93
    # Most answers come within the target, some long after: a long tail, as desks have.
    wait = timedelta(seconds=rng.lognormvariate(4.0, 1.0)) if answered else None
    first = created + wait if wait is not None else None
    breached = due if first is None or first > due else None
    rating = rng.choice([1, 2, 3, 4, 4, 5, 5, 5, 5]) if answered and rng.random() < 0.6 else None
    follow_up = rating is not None and rating < 4
    closed = (first or created) + timedelta(minutes=rng.randint(3, 40))
    handoff = (
        conversation, reason, category,
        Priority.HIGH if reason == HandoffReason.ESCALATION else Priority.NORMAL, "",
        HandoffStatus.CLOSED if answered else HandoffStatus.WAITING, created, due, "anna" if answered else "",
        first, first, breached, closed if answered else None, rating, follow_up,
    )  # fmt: skip
    tasks = []
    if follow_up:
        done = rng.random() < 0.7
        tasks.append(
            (conversation, TaskKind.FOLLOW_UP, category, scenario or "", "{}",
             TaskStatus.DONE if done else TaskStatus.OPEN, closed, closed, "olga" if done else "",
             closed if done else None, closed + timedelta(hours=1) if done else None, "")
        )  # fmt: skip
    return handoff, tasks


def write(engine: Engine, rows: Generated) -> None:
    """Write the rows into an empty, migrated database in bulk."""
    tables: list[tuple[str, Sequence[tuple[Any, ...]]]] = [
        ("clients", [(c[1], c[7], "") for c in rows.conversations]),
        ("conversations", rows.conversations),
        ("messages", rows.messages),
        ("handoffs", rows.handoffs),
        ("tasks", rows.tasks),
        ("misunderstood", rows.misunderstood),
    ]
    if engine.dialect.name == "sqlite":
        _write_sqlite(engine, tables)
    else:
        _write_postgres(engine, tables)


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


def _write_sqlite(engine: Engine, tables: Iterable[tuple[str, Sequence[tuple[Any, ...]]]]) -> None:
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        assert connection is not None
        cursor = connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        for name, table_rows in tables:
            columns = COLUMNS[name]
            sql = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            for first in range(0, len(table_rows), CHUNK):
                chunk = table_rows[first : first + CHUNK]
                cursor.executemany(sql, [tuple(_sqlite_value(v) for v in row) for row in chunk])
        connection.commit()
        cursor.execute("ANALYZE")
        cursor.close()
    finally:
        raw.close()


def _write_postgres(engine: Engine, tables: Iterable[tuple[str, Sequence[tuple[Any, ...]]]]) -> None:
    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        assert connection is not None
        with connection.cursor() as cursor:
            for name, table_rows in tables:
                columns = COLUMNS[name]
                with cursor.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in table_rows:
                        copy.write_row(row)
                # Ids were given: the next row a test or the bot adds must not collide with them.
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {name}), false)"
                )
        connection.commit()
        # What autovacuum does for a table that grew over a year: statistics and the visibility map (so
        # counts over an index need not visit the table).
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        connection.autocommit = False
    finally:
        raw.close()
