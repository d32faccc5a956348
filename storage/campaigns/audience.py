"""A campaign's audience as a query over known clients: the chats they wrote from, narrowed by the requests
their conversations served, the details they gave, their persona and how recently they wrote."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, cast, exists, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from common.names import Direction
from storage.campaigns.part import StorePart
from storage.campaigns.values import Target
from storage.tables import conversations, details, messages, tasks


class SqlAudience(StorePart):
    """The audience query (the filters of a campaign's `audience.query`, as plain values)."""

    def audience(
        self,
        now: datetime,
        *,
        channels: Sequence[str],
        scenarios: Sequence[str] = (),
        detail_names: Sequence[str] = (),
        personas: Sequence[str] = (),
        active_within_days: int | None = None,
    ) -> list[Target]:
        """Every chat in `channels` whose client's conversations served one of `scenarios` (a task of it,
        or the request served last or in progress), who gave all of `detail_names`, whose latest
        conversation's persona is one of `personas`, and who wrote within `active_within_days`; an empty
        filter does not narrow."""
        if not channels:
            return []
        latest = (
            select(func.max(conversations.c.id).label("id"))
            .where(conversations.c.channel.in_(list(channels)))
            .group_by(conversations.c.channel, conversations.c.chat_id)
            .subquery()
        )
        query = select(conversations.c.channel, conversations.c.chat_id).join(
            latest, latest.c.id == conversations.c.id
        )
        with self.engine.connect() as connection:
            if personas:
                query = query.where(conversations.c.persona.in_(list(personas)))
            if scenarios:
                query = query.where(conversations.c.client_id.in_(_served(connection, list(scenarios))))
            if detail_names:
                names = sorted(set(detail_names))
                gave = (
                    select(details.c.client_id)
                    .where(details.c.name.in_(names), details.c.superseded.is_(False))
                    .group_by(details.c.client_id)
                    .having(func.count(func.distinct(details.c.name)) == len(names))
                )
                query = query.where(conversations.c.client_id.in_(gave))
            if active_within_days is not None:
                query = query.where(_wrote_since(now - timedelta(days=active_within_days)))
            rows = connection.execute(query.order_by(conversations.c.channel, conversations.c.chat_id))
            return [Target(str(row.channel), str(row.chat_id)) for row in rows]


def _served(connection: Connection, scenarios: list[str]) -> Any:
    """Clients with a conversation that served any of `scenarios`."""
    mine = conversations.alias("served")
    by_task = (
        select(mine.c.client_id)
        .join(tasks, tasks.c.conversation_id == mine.c.id)
        .where(tasks.c.scenario_id.in_(scenarios))
    )
    by_state = select(mine.c.client_id).where(
        or_(
            _state_field(connection, mine.c.state_json, "last_scenario").in_(scenarios),
            _state_field(connection, mine.c.state_json, "active", "scenario_id").in_(scenarios),
        )
    )
    return by_task.union(by_state)


def _state_field(connection: Connection, column: Any, *path: str) -> ColumnElement[Any]:
    """A text field of a conversation's state JSON, in the database's own JSON functions."""
    if connection.dialect.name == "postgresql":
        return func.jsonb_extract_path_text(cast(column, JSONB), *path)
    return cast(func.json_extract(column, "$." + ".".join(path)), Text)


def _wrote_since(since: datetime) -> ColumnElement[bool]:
    """The chat has an incoming message from `since` on."""
    chat = conversations.alias("wrote")
    return exists(
        select(messages.c.id)
        .join(chat, chat.c.id == messages.c.conversation_id)
        .where(
            and_(
                chat.c.channel == conversations.c.channel,
                chat.c.chat_id == conversations.c.chat_id,
                messages.c.direction == Direction.IN,
                messages.c.at >= since,
            )
        )
    )
