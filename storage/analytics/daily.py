"""Counts by local day: conversations started, messages each way, messages the bot did not understand.

The days are rows of a VALUES list and each count a correlated subquery over one day's range of a time
index: every day is an index range counted in place, with no sort of a year's rows by a computed day, and
day boundaries come from the time zone database (clock changes included) instead of SQL date arithmetic.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, column, func, select, values
from sqlalchemy.engine import Connection

from common.names import Direction
from storage.analytics.results import DayCounts
from storage.analytics.scope import Scope, kept, own
from storage.models import Moment
from storage.tables import conversations, messages, misunderstood

# Messages of a day are counted both ways in one pass over the index: each incoming message adds 1 and
# each outgoing one OUT_WEIGHT, and the sum is split again (no day has 2**32 messages).
OUT_WEIGHT = 2**32


def day_counts(connection: Connection, scope: Scope) -> list[DayCounts]:
    """One line per day of the scope, oldest first."""
    sqlite = connection.dialect.name == "sqlite"
    days = (
        values(column("start", Moment), column("stop", Moment), name="days")
        .data([(day.start, day.stop) for day in scope.days])
        .cte("days")
    )

    def within(moment: ColumnElement[Any]) -> list[ColumnElement[bool]]:
        return [moment >= days.c.start, moment < days.c.stop]

    started = (
        select(func.count())
        .select_from(conversations)
        .where(*within(conversations.c.created_at), *own(scope, sqlite=sqlite))
        .scalar_subquery()
    )
    weighted = case((messages.c.direction == Direction.IN, 1), else_=OUT_WEIGHT)
    both_ways = (
        select(func.coalesce(func.sum(weighted), 0))
        .select_from(messages)
        .where(*within(messages.c.at), *kept(scope, messages.c.conversation_id, sqlite=sqlite))
        .scalar_subquery()
    )
    missed = (
        select(func.count())
        .select_from(misunderstood)
        .where(*within(misunderstood.c.at), *kept(scope, misunderstood.c.conversation_id, sqlite=sqlite))
        .scalar_subquery()
    )
    rows = connection.execute(select(days.c.start, started, both_ways, missed).order_by(days.c.start)).all()
    lines = []
    for day, row in zip(scope.days, rows, strict=True):
        outgoing, incoming = divmod(int(row[2]), OUT_WEIGHT)
        lines.append(DayCounts(day.day, int(row[1]), incoming, outgoing, int(row[3])))
    return lines


def misunderstood_reasons(connection: Connection, scope: Scope) -> dict[str, int]:
    """Messages the bot did not understand in the scope's days, by reason."""
    sqlite = connection.dialect.name == "sqlite"
    rows = connection.execute(
        select(misunderstood.c.reason, func.count())
        .where(
            misunderstood.c.at >= scope.start,
            misunderstood.c.at < scope.stop,
            *kept(scope, misunderstood.c.conversation_id, sqlite=sqlite),
        )
        .group_by(misunderstood.c.reason)
    )
    return {str(reason): int(count) for reason, count in rows}
