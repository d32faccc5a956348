"""A small support history with known answers, for the analytics tests (storage and the console page).

Three local days in Novosibirsk (UTC+7), 2026-11-20..22, and rows just outside them. Every row is written
with Core inserts, so the numbers below follow from the rows alone, without the engine:

    conversation  channel   persona    started (local)   last request  messages in/out by local day
    c1            telegram  aggressor  20.11 00:30       no_internet   20: 3/2
    c2            telegram  neutral    20.11 23:50       —             20: 2/0, 21: 1/2
    c3            vk        unsure     21.11 10:00       balance       21: 4/4
    c4            web       aggressor  22.11 12:00       no_internet   22: 1/1
    c5            telegram  neutral    23.11 00:10       balance       23: 5/0 (after the period)
    c6            vk        talker     19.11 23:59       moving        19: 2/0, 20: 1/0 (started before)

    handoff  conversation  reason        category  made (local)  first reply  rating  late?
    h1       c1            escalation    tech      20.11 00:35   60 s         2       no (asks a follow-up)
    h6       c1            client_asked  billing   20.11 01:00   120 s        —       no (just at the target)
    h2       c3            client_asked  billing   21.11 10:05   300 s        5       yes (marked)
    h3       c4            scenario      tech      22.11 12:01   none yet     —       yes (past due)
    h4       c6            stuck         sales     20.11 00:10   30 s         4       no
    h5       c5            client_asked  tech      23.11 00:15   10 s         1       no (after the period)

Tasks: a done follow-up for c1 (tech, no_internet, 20.11), an open call-back for c3 (general, callback,
21.11), an open follow-up for c4 (tech, no request, 22.11). Not understood: c1 20.11 00:40 (not_understood),
c2 21.11 00:06 (not_understood), c6 20.11 00:10 (stuck), c5 23.11 (after the period).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import insert
from sqlalchemy.engine import Connection, Engine

from storage.tables import clients, conversations, handoffs, messages, misunderstood, tasks

ZONE = "Asia/Novosibirsk"
FIRST, LAST = date(2026, 11, 20), date(2026, 11, 22)
# When the numbers are read: after everything, so the waiting handoff h3 is past its target.
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TARGET = timedelta(minutes=2)

_ZONE = ZoneInfo(ZONE)


def local(day: int, hour: int, minute: int, second: int = 0) -> datetime:
    """A moment of November 2026 in Novosibirsk, in UTC."""
    return datetime(2026, 11, day, hour, minute, second, tzinfo=_ZONE).astimezone(UTC)


CONVERSATIONS = {
    # name: (channel, persona, started, last request or None, [(day, hour, minute, incoming, outgoing)])
    "c1": ("telegram", "aggressor", local(20, 0, 30), "no_internet", [(20, 0, 30, 3, 2)]),
    "c2": ("telegram", "neutral", local(20, 23, 50), None, [(20, 23, 50, 2, 0), (21, 0, 5, 1, 2)]),
    "c3": ("vk", "unsure", local(21, 10, 0), "balance", [(21, 10, 0, 4, 4)]),
    "c4": ("web", "aggressor", local(22, 12, 0), "no_internet", [(22, 12, 0, 1, 1)]),
    "c5": ("telegram", "neutral", local(23, 0, 10), "balance", [(23, 0, 10, 5, 0)]),
    "c6": ("vk", "talker", local(19, 23, 59), "moving", [(19, 23, 59, 2, 0), (20, 0, 5, 1, 0)]),
}
HANDOFFS = [
    # (conversation, reason, category, made, first reply after seconds or None, rating, breach marked)
    ("c1", "escalation", "tech", local(20, 0, 35), 60, 2, False),
    ("c1", "client_asked", "billing", local(20, 1, 0), 120, None, False),
    ("c3", "client_asked", "billing", local(21, 10, 5), 300, 5, True),
    ("c4", "scenario", "tech", local(22, 12, 1), None, None, False),
    ("c6", "stuck", "sales", local(20, 0, 10), 30, 4, False),
    ("c5", "client_asked", "tech", local(23, 0, 15), 10, 1, False),
]
TASKS = [
    # (conversation, kind, category, scenario, status, created)
    ("c1", "follow_up", "tech", "no_internet", "done", local(20, 2, 0)),
    ("c3", "callback", "general", "callback", "open", local(21, 10, 10)),
    ("c4", "follow_up", "tech", "", "open", local(22, 13, 0)),
]
MISUNDERSTOOD = [
    ("c1", "not_understood", local(20, 0, 40)),
    ("c2", "not_understood", local(21, 0, 6)),
    ("c6", "stuck", local(20, 0, 10)),
    ("c5", "not_understood", local(23, 0, 20)),
]


def write_history(engine: Engine) -> dict[str, int]:
    """Write every row above; the ids of the conversations by name."""
    ids: dict[str, int] = {}
    with engine.begin() as connection:
        for name, (channel, persona, started, scenario, days) in CONVERSATIONS.items():
            ids[name] = _conversation(connection, name, channel, persona, started, scenario, days)
        for name, reason, category, made, reply_s, rating, marked in HANDOFFS:
            first = None if reply_s is None else made + timedelta(seconds=reply_s)
            connection.execute(
                insert(handoffs).values(
                    conversation_id=ids[name],
                    reason=reason,
                    category=category,
                    priority="normal",
                    note="",
                    status="waiting" if first is None else "closed",
                    created_at=made,
                    due_at=made + TARGET,
                    taken_by="" if first is None else "anna",
                    taken_at=first,
                    first_response_at=first,
                    breached_at=made + TARGET if marked else None,
                    closed_at=None if first is None else first + timedelta(minutes=5),
                    rating=rating,
                    follow_up=rating is not None and rating < 4,
                )
            )
        for name, kind, category, scenario, status, created in TASKS:
            connection.execute(
                insert(tasks).values(
                    conversation_id=ids[name],
                    kind=kind,
                    category=category,
                    scenario_id=scenario,
                    payload_json="{}",
                    status=status,
                    created_at=created,
                    due_at=created,
                    taken_by="",
                    outcome="",
                )
            )
        for name, reason, at in MISUNDERSTOOD:
            connection.execute(
                insert(misunderstood).values(conversation_id=ids[name], reason=reason, text="что?", at=at)
            )
    return ids


def _conversation(
    connection: Connection,
    name: str,
    channel: str,
    persona: str,
    started: datetime,
    scenario: str | None,
    days: list[tuple[int, int, int, int, int]],
) -> int:
    client = connection.execute(
        insert(clients).values(created_at=started, display_name=name)
    ).inserted_primary_key
    assert client is not None
    state = {"persona": persona, "details": {"phone": {"value": "+79131234567", "raw": "", "display": ""}}}
    if scenario is not None:
        state["last_scenario"] = scenario
    done = connection.execute(
        insert(conversations).values(
            client_id=client[0],
            channel=channel,
            chat_id=f"chat-{name}",
            status="closed",
            persona=persona,
            state_json=orjson.dumps(state).decode(),
            created_at=started,
            updated_at=started,
        )
    ).inserted_primary_key
    assert done is not None
    cid = int(done[0])
    for day, hour, minute, incoming, outgoing in days:
        at = local(day, hour, minute)
        for n in range(incoming + outgoing):
            way = "in" if n < incoming else "out"
            connection.execute(
                insert(messages).values(
                    conversation_id=cid,
                    direction=way,
                    text="привет" if way == "in" else "здравствуйте",
                    external_id=f"{name}-{day}-{n}" if way == "in" else "",
                    buttons_json="[]",
                    author="client" if way == "in" else "bot",
                    delivery="",
                    handled=True,
                    raw_json="",
                    at=at + timedelta(seconds=n),
                )
            )
    return cid
