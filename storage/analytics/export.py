"""One line per conversation started in a scope, for the CSV export: read in batches of conversations,
each in a short read of its own, so a long download never holds a read transaction open (on SQLite that
would keep the write-ahead log from being checkpointed while it lasts)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from common.names import Direction
from storage.analytics.handoffs import breached, wait_seconds
from storage.analytics.scope import Scope, own
from storage.tables import as_utc, conversations, handoffs, messages

BATCH = 500


@dataclass(frozen=True, slots=True)
class ExportLine:
    """A conversation as the export writes it; the handoff columns are its latest handoff's."""

    conversation_id: int
    channel: str
    started: datetime
    status: str
    persona: str
    handoffs: int
    reason: str
    category: str
    first_response_s: float | None
    breached: bool | None
    rating: int | None
    incoming: int
    outgoing: int


def export_lines(engine: Engine, scope: Scope, now: datetime, batch: int = BATCH) -> Iterator[ExportLine]:
    """The scope's conversations in the order they started."""
    with engine.connect() as connection:
        ids = [
            int(row[0])
            for row in connection.execute(
                select(conversations.c.id)
                .where(
                    conversations.c.created_at >= scope.start,
                    conversations.c.created_at < scope.stop,
                    *own(scope, sqlite=connection.dialect.name == "sqlite"),
                )
                .order_by(conversations.c.created_at, conversations.c.id)
            )
        ]
    for first in range(0, len(ids), batch):
        yield from _batch(engine, ids[first : first + batch], now)


def _batch(engine: Engine, ids: list[int], now: datetime) -> Iterator[ExportLine]:
    with engine.connect() as connection:
        found = {
            int(row.id): row
            for row in connection.execute(
                select(
                    conversations.c.id,
                    conversations.c.channel,
                    conversations.c.status,
                    conversations.c.persona,
                    conversations.c.created_at,
                ).where(conversations.c.id.in_(ids))
            )
        }
        latest: dict[int, Any] = {}
        counted: dict[int, int] = {}
        for row in connection.execute(
            select(
                handoffs.c.conversation_id,
                handoffs.c.reason,
                handoffs.c.category,
                wait_seconds(connection).label("wait"),
                breached(now).label("late"),
                handoffs.c.rating,
            )
            .where(handoffs.c.conversation_id.in_(ids))
            .order_by(handoffs.c.id)
        ):
            cid = int(row.conversation_id)
            latest[cid] = row
            counted[cid] = counted.get(cid, 0) + 1
        ways: dict[tuple[int, str], int] = {
            (int(cid), str(direction)): int(count)
            for cid, direction, count in connection.execute(
                select(messages.c.conversation_id, messages.c.direction, func.count())
                .where(messages.c.conversation_id.in_(ids))
                .group_by(messages.c.conversation_id, messages.c.direction)
            )
        }
    for cid in ids:
        if cid not in found:  # erased meanwhile
            continue
        row = found[cid]
        handoff = latest.get(cid)
        wait = None if handoff is None or handoff.wait is None else round(max(float(handoff.wait), 0.0), 3)
        yield ExportLine(
            conversation_id=cid,
            channel=str(row.channel),
            started=as_utc(row.created_at) or now,
            status=str(row.status),
            persona=str(row.persona),
            handoffs=counted.get(cid, 0),
            reason="" if handoff is None else str(handoff.reason),
            category="" if handoff is None else str(handoff.category),
            first_response_s=wait,
            breached=None if handoff is None else bool(handoff.late),
            rating=None if handoff is None or handoff.rating is None else int(handoff.rating),
            incoming=ways.get((cid, Direction.IN), 0),
            outgoing=ways.get((cid, Direction.OUT), 0),
        )
