"""Handoffs made in a scope's days: by reason, first human replies and breaches by category, ratings (also
by the conversation's persona), and the follow-ups low ratings asked for.

Counts are grouped in SQL; the medians and 90th percentiles of first replies need the waits themselves,
so one query returns (category, seconds) of each answered handoff, and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, extract, func, or_, select
from sqlalchemy.engine import Connection

from common.names import ACTIVE_HANDOFF_STATUSES, TaskKind, TaskStatus
from storage.analytics.results import RATINGS, ResponseTimes
from storage.analytics.scope import Scope, kept
from storage.tables import conversations, handoffs, tasks


@dataclass(frozen=True, slots=True)
class HandoffFigures:
    """What the handoff queries found."""

    handoffs: int
    reasons: dict[str, int]
    response: dict[str, ResponseTimes]
    ratings: dict[int, int]
    # persona → (rated handoffs, sum of their ratings)
    ratings_by_persona: dict[str, tuple[int, int]]
    follow_ups_due: int
    follow_up_tasks: int
    follow_ups_done: int


def breached(now: datetime) -> ColumnElement[bool]:
    """A handoff whose first reply missed its target: marked by the breach sweep, answered after it was
    due, or still unanswered past it (the sweep may not have run yet)."""
    return or_(
        handoffs.c.breached_at.is_not(None),
        handoffs.c.first_response_at > handoffs.c.due_at,
        and_(
            handoffs.c.first_response_at.is_(None),
            handoffs.c.status.in_(ACTIVE_HANDOFF_STATUSES),
            handoffs.c.due_at < now,
        ),
    )


def wait_seconds(connection: Connection) -> ColumnElement[Any]:
    """Seconds from a handoff to its first human reply, in the database's own date arithmetic."""
    if connection.dialect.name == "sqlite":
        days = func.julianday(handoffs.c.first_response_at) - func.julianday(handoffs.c.created_at)
        return days * 86400.0
    return extract("epoch", handoffs.c.first_response_at - handoffs.c.created_at)


def handoff_figures(connection: Connection, scope: Scope, now: datetime) -> HandoffFigures:
    """Every handoff figure of the scope."""
    sqlite = connection.dialect.name == "sqlite"
    conditions = [
        handoffs.c.created_at >= scope.start,
        handoffs.c.created_at < scope.stop,
        *kept(Scope(scope.days, scope.channel), handoffs.c.conversation_id, sqlite=sqlite),
    ]
    if scope.categories is not None:
        conditions.append(handoffs.c.category.in_(scope.categories))
    chosen = and_(*conditions)

    reasons = {
        str(reason): int(count)
        for reason, count in connection.execute(
            select(handoffs.c.reason, func.count()).where(chosen).group_by(handoffs.c.reason)
        )
    }
    counts = connection.execute(
        select(
            handoffs.c.category,
            func.count(),
            func.count(handoffs.c.first_response_at),
            func.sum(case((breached(now), 1), else_=0)),
            func.sum(case((handoffs.c.follow_up.is_(True), 1), else_=0)),
        )
        .where(chosen)
        .group_by(handoffs.c.category)
    ).all()
    waits: dict[str, list[float]] = {}
    for category, seconds in connection.execute(
        select(handoffs.c.category, wait_seconds(connection)).where(
            chosen, handoffs.c.first_response_at.is_not(None)
        )
    ):
        # Julian days carry about a millisecond of rounding: waits are kept to the millisecond.
        waits.setdefault(str(category), []).append(round(max(float(seconds), 0.0), 3))
    response = {
        str(category): ResponseTimes(
            int(total), int(answered), int(late or 0), tuple(sorted(waits.get(str(category), [])))
        )
        for category, total, answered, late, _due in counts
    }
    ratings = dict.fromkeys(RATINGS, 0)
    by_persona: dict[str, tuple[int, int]] = {}
    for persona, rating, count in connection.execute(
        select(conversations.c.persona, handoffs.c.rating, func.count())
        .join(conversations, conversations.c.id == handoffs.c.conversation_id)
        .where(chosen, handoffs.c.rating.is_not(None))
        .group_by(conversations.c.persona, handoffs.c.rating)
    ):
        if int(rating) in ratings:
            ratings[int(rating)] += int(count)
            rated, total = by_persona.get(str(persona), (0, 0))
            by_persona[str(persona)] = (rated + int(count), total + int(rating) * int(count))
    made, done = _follow_up_tasks(connection, scope)
    return HandoffFigures(
        handoffs=sum(int(row[1]) for row in counts),
        reasons=reasons,
        response=response,
        ratings=ratings,
        ratings_by_persona=by_persona,
        follow_ups_due=sum(int(row[4] or 0) for row in counts),
        follow_up_tasks=made,
        follow_ups_done=done,
    )


def _follow_up_tasks(connection: Connection, scope: Scope) -> tuple[int, int]:
    """Follow-up tasks (after a rating under 4) set up in the scope's days, and how many are done."""
    sqlite = connection.dialect.name == "sqlite"
    conditions = [
        tasks.c.kind == TaskKind.FOLLOW_UP,
        tasks.c.created_at >= scope.start,
        tasks.c.created_at < scope.stop,
        *kept(Scope(scope.days, scope.channel), tasks.c.conversation_id, sqlite=sqlite),
    ]
    if scope.categories is not None:
        conditions.append(tasks.c.category.in_(scope.categories))
    made, done = connection.execute(
        select(func.count(), func.sum(case((tasks.c.status == TaskStatus.DONE, 1), else_=0))).where(
            *conditions
        )
    ).one()
    return int(made), int(done or 0)
