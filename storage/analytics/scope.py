"""What a dashboard looks at: whole local days of the company's time zone, a channel, handoff categories;
and the conditions that keep a query's rows inside it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, select

from storage.tables import conversations, handoffs


@dataclass(frozen=True, slots=True)
class Day:
    """One local day, as the UTC moments it starts and ends at (a day of a clock change has 23 or 25 h)."""

    day: date
    start: datetime
    stop: datetime


@dataclass(frozen=True, slots=True)
class Scope:
    """The days (oldest first, at least one), a channel ("" for all) and the handoff categories (None for
    all): a category narrows everything to conversations handed to people of that category."""

    days: tuple[Day, ...]
    channel: str = ""
    categories: tuple[str, ...] | None = None

    @classmethod
    def local(
        cls,
        first: date,
        last: date,
        zone: str,
        channel: str = "",
        categories: Sequence[str] | None = None,
    ) -> Scope:
        """The days from `first` to `last` (both included) in the time zone `zone`."""
        if last < first:
            raise ValueError("the period ends before it starts")
        tz = ZoneInfo(zone)

        def moment(day: date) -> datetime:
            return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)

        dates = [first + timedelta(days=n) for n in range((last - first).days + 2)]
        days = tuple(Day(day, moment(day), moment(after)) for day, after in pairwise(dates))
        return cls(days, channel, None if categories is None else tuple(categories))

    @property
    def start(self) -> datetime:
        """When the first day starts."""
        return self.days[0].start

    @property
    def stop(self) -> datetime:
        """When the last day ends."""
        return self.days[-1].stop


def kept(scope: Scope, conversation_id: ColumnElement[int], *, sqlite: bool) -> list[ColumnElement[bool]]:
    """Conditions keeping rows whose conversation (`conversation_id`) is of the scope's channel and was
    handed to its categories. On SQLite the id is wrapped (`+ 0`): otherwise the planner drives the query
    from the id's index, once per conversation of the list, instead of by the time range."""
    probe = conversation_id + 0 if sqlite else conversation_id
    conditions: list[ColumnElement[bool]] = []
    if scope.channel:
        # Conversations that started after the scope cannot have rows in it.
        of_channel = select(conversations.c.id).where(
            conversations.c.created_at < scope.stop, conversations.c.channel == scope.channel
        )
        conditions.append(probe.in_(of_channel))
    if scope.categories is not None:
        conditions.append(probe.in_(handed_to(scope.categories)))
    return conditions


def own(scope: Scope, *, sqlite: bool) -> list[ColumnElement[bool]]:
    """The same conditions for rows of the conversations table itself."""
    conditions: list[ColumnElement[bool]] = []
    if scope.channel:
        conditions.append(conversations.c.channel == scope.channel)
    if scope.categories is not None:
        probe = conversations.c.id + 0 if sqlite else conversations.c.id
        conditions.append(probe.in_(handed_to(scope.categories)))
    return conditions


def handed_to(categories: Sequence[str]) -> Select[tuple[int]]:
    """The conversations handed to people of any of these categories."""
    return select(handoffs.c.conversation_id).where(handoffs.c.category.in_(list(categories)))
