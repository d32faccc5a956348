"""What the trigger API (POST /api/events) needs of storage: who an event names, the chats to reach them in,
and the `consent` and `converted` events recorded once by their id.

A phone names a client only when it is verified (storage/identity.py): a messenger or the company vouched
for it. A number a client typed into a chat is a claim anyone can make and names no one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from common.names import Direction, FunnelStatus, funnel_rank
from storage.campaigns.enqueue import record_consent
from storage.identity import PHONE, same_person
from storage.tables import (
    WriteLock,
    as_utc,
    conversations,
    messages,
    recipients,
    trigger_events,
    verified,
)

# Who recorded a consent that came through the API (`client_preferences.advertising_consent_source`).
API_SOURCE = "api"


@dataclass(frozen=True, slots=True)
class ChatTarget:
    """A chat a client could be written to in, and when they last wrote there (None: never)."""

    client_id: int
    channel: str
    chat_id: str
    last_in: datetime | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a `consent` or `converted` event did: stored (or a repeat), and the recipient it moved."""

    duplicate: bool = False
    # The campaign recipient whose funnel status the event concerned, if any.
    recipient_id: int | None = None
    # Its status afterwards (unchanged when it already stood there or further).
    status: str = ""
    moved: bool = False
    # Clients whose advertising consent was recorded now (not before).
    consented: int = 0


class TriggerStore:
    """Lookups and writes of the trigger API over one database."""

    def __init__(self, engine: Engine, write_lock: WriteLock) -> None:
        self.engine = engine
        self.write_lock = write_lock

    def seen(self, event_id: str) -> bool:
        """Whether an event with this id is stored already."""
        with self.engine.connect() as connection:
            return _seen(connection, event_id)

    def reasons(self, recipient_ids: Sequence[int | None]) -> dict[int, str]:
        """Why each of these recipients is not messaged ("" for those that are)."""
        wanted = [rid for rid in recipient_ids if rid is not None]
        if not wanted:
            return {}
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(recipients.c.id, recipients.c.reason).where(recipients.c.id.in_(wanted))
            )
            return {int(row.id): str(row.reason) for row in rows}

    def person_of_phone(self, phone: str) -> list[int]:
        """Every client of the person holding this verified phone (normalised, `+7913...`); [] when no
        messenger and no one at the company vouched for it."""
        with self.engine.connect() as connection:
            return _person(connection, _holders_of_phone(connection, phone))

    def person_of_chat(self, channel: str, chat_id: str) -> list[int]:
        """Every client of the person who wrote in this chat; [] when the chat is unknown."""
        with self.engine.connect() as connection:
            held = select(conversations.c.client_id).where(
                conversations.c.channel == channel, conversations.c.chat_id == chat_id
            )
            return _person(connection, {int(row.client_id) for row in connection.execute(held)})

    def chats_of(self, people: Sequence[int], channels: Sequence[str]) -> list[ChatTarget]:
        """The chats these clients have in these channels, the one they wrote in last first; chats where
        they never wrote come last (the campaign counts them as closed doors)."""
        if not people:
            return []
        last_in = func.max(messages.c.at).label("last_in")
        query = (
            select(conversations.c.client_id, conversations.c.channel, conversations.c.chat_id, last_in)
            .select_from(conversations)
            .outerjoin(
                messages,
                and_(messages.c.conversation_id == conversations.c.id, messages.c.direction == Direction.IN),
            )
            .where(conversations.c.client_id.in_(people), conversations.c.channel.in_(channels))
            .group_by(conversations.c.client_id, conversations.c.channel, conversations.c.chat_id)
        )
        with self.engine.connect() as connection:
            found = [
                ChatTarget(int(row.client_id), str(row.channel), str(row.chat_id), as_utc(row.last_in))
                for row in connection.execute(query)
            ]
        # A chat can hold conversations of two clients of one person (merged later): keep its latest.
        best: dict[tuple[str, str], ChatTarget] = {}
        for target in sorted(found, key=_recency):
            best.setdefault((target.channel, target.chat_id), target)
        return list(best.values())

    def record_consent(
        self,
        event_id: str,
        kind: str,
        people: Sequence[int],
        campaign: str,
        payload: dict[str, Any],
        at: datetime,
        now: datetime,
    ) -> Recorded:
        """Store the event and the person's advertising consent (source "api"; a consent recorded earlier
        stays as it was). With a campaign, its recipient among them moves forward to "consented".
        An opt-out is never undone here: only the client can take it back."""
        return self._record(event_id, kind, people, campaign, FunnelStatus.CONSENTED, payload, at, now)

    def record_conversion(
        self,
        event_id: str,
        kind: str,
        people: Sequence[int],
        campaign: str,
        payload: dict[str, Any],
        at: datetime,
        now: datetime,
    ) -> Recorded | None:
        """Store the event and move the person's recipient of `campaign` forward to "converted"; None
        (nothing stored) when none of them was a recipient of it."""
        with self.engine.connect() as connection:
            if _seen(connection, event_id):
                return Recorded(duplicate=True)
            if _recipient(connection, campaign, people) is None:
                return None
        return self._record(event_id, kind, people, campaign, FunnelStatus.CONVERTED, payload, at, now)

    def _record(
        self,
        event_id: str,
        kind: str,
        people: Sequence[int],
        campaign: str,
        status: FunnelStatus,
        payload: dict[str, Any],
        at: datetime,
        now: datetime,
    ) -> Recorded:
        try:
            with self.write_lock, self.engine.begin() as connection:
                if _seen(connection, event_id):
                    return Recorded(duplicate=True)
                found = _recipient(connection, campaign, people) if campaign else None
                event = {"id": event_id, "kind": kind, "campaign": campaign, "at": now}
                event["recipient_id"] = None if found is None else found[0]
                event["payload_json"] = json.dumps(payload, ensure_ascii=False, sort_keys=True)
                connection.execute(insert(trigger_events).values(**event))
                consented = 0
                if status == FunnelStatus.CONSENTED:
                    consented = record_consent(connection, dict.fromkeys(people, API_SOURCE), at)
                if found is None:
                    return Recorded(consented=consented)
                recipient_id, current = found
                moved = funnel_rank(status) > funnel_rank(current)
                if moved:
                    moment = "consented_at" if status == FunnelStatus.CONSENTED else "converted_at"
                    connection.execute(
                        update(recipients)
                        .where(recipients.c.id == recipient_id)
                        .values({"status": status, moment: at, "next_at": None})
                    )
                return Recorded(
                    recipient_id=recipient_id,
                    status=status if moved else current,
                    moved=moved,
                    consented=consented,
                )
        except IntegrityError:
            # The same event arriving twice at once: the other request stored it first.
            if self.seen(event_id):
                return Recorded(duplicate=True)
            raise


def _seen(connection: Connection, event_id: str) -> bool:
    found = connection.execute(select(trigger_events.c.id).where(trigger_events.c.id == event_id)).first()
    return found is not None


def _holders_of_phone(connection: Connection, phone: str) -> set[int]:
    holders = select(verified.c.client_id).where(verified.c.kind == PHONE, verified.c.value == phone)
    return {int(row.client_id) for row in connection.execute(holders)}


def _person(connection: Connection, clients: set[int]) -> list[int]:
    """The clients and every client one of them is the same person as (shared verified identities)."""
    people: set[int] = set()
    for client_id in sorted(clients):
        if client_id not in people:
            people.update(same_person(connection, client_id))
    return sorted(people)


def _recency(target: ChatTarget) -> tuple[bool, float]:
    return (target.last_in is None, -target.last_in.timestamp() if target.last_in else 0.0)


def _recipient(connection: Connection, campaign: str, people: Sequence[int]) -> tuple[int, str] | None:
    """(id, status) of the person's recipient of a campaign: the one furthest along the funnel's steps,
    then the latest queued; one person converts once, however many of their chats the campaign wrote to."""
    if not people:
        return None
    rows = connection.execute(
        select(recipients.c.id, recipients.c.status, recipients.c.queued_at).where(
            recipients.c.campaign == campaign, recipients.c.client_id.in_(people)
        )
    ).all()
    if not rows:
        return None

    def order(row: Any) -> tuple[bool, int, float]:
        ended = row.status in (FunnelStatus.FAILED, FunnelStatus.NOT_ALLOWED, FunnelStatus.OPTED_OUT)
        queued = as_utc(row.queued_at)
        return (not ended, funnel_rank(row.status), queued.timestamp() if queued else 0.0)

    chosen = max(rows, key=order)
    return int(chosen.id), str(chosen.status)
