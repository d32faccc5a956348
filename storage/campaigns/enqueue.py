"""Putting recipients into a campaign: each target checked for eligibility and stored once.

A recipient is one row per campaign and chat (the unique campaign, channel, chat_id): enqueuing the same
audience again adds only the chats that are new, and leaves every existing row as it stands.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from common.names import FUNNEL_ENDS, FunnelStatus
from storage.campaigns.eligibility import Chat, Verdict, chats_of, chunks, consenting, opted_out, verdict
from storage.campaigns.part import StorePart
from storage.campaigns.values import Enqueued, Target, TriggerOutcome
from storage.tables import preferences, recipients, trigger_events

Checked = tuple[Target, Chat | None, Verdict]


def dialect_insert(connection: Connection) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT."""
    return (postgresql if connection.dialect.name == "postgresql" else sqlite).insert


class SqlEnqueue(StorePart):
    """Recipients added from an audience or a trigger event."""

    def enqueue(
        self,
        campaign_id: str,
        advertising: bool,
        targets: Sequence[Target],
        now: datetime,
        *,
        event_id: str = "",
    ) -> Enqueued:
        """Add every target not in the campaign yet, queued (due now) or counted as not allowed or opted
        out with the reason; a target's `consent` True records the client's consent first."""
        with self.write_lock, self.engine.begin() as connection:
            return self._enqueue(connection, campaign_id, advertising, targets, now, event_id)

    def _enqueue(
        self,
        connection: Connection,
        campaign_id: str,
        advertising: bool,
        targets: Sequence[Target],
        now: datetime,
        event_id: str,
    ) -> Enqueued:
        done = Enqueued()
        first: dict[tuple[str, str], Target] = {}
        for target in targets:
            first.setdefault((target.channel, target.chat_id), target)
        unique = list(first.values())
        fresh: list[Target] = []
        for channel in dict.fromkeys(t.channel for t in unique):
            wanted = [t for t in unique if t.channel == channel]
            there = existing(connection, campaign_id, channel, [t.chat_id for t in wanted])
            done.existing += len(there)
            fresh.extend(t for t in wanted if t.chat_id not in there)
        checked = self._check(connection, advertising, fresh, now, done)
        rows = [
            recipient_row(campaign_id, target, chat, seen, now, event_id) for target, chat, seen in checked
        ]
        statement = dialect_insert(connection)(recipients).on_conflict_do_nothing(
            index_elements=[recipients.c.campaign, recipients.c.channel, recipients.c.chat_id]
        )
        for part in chunks(rows):
            connection.execute(statement, list(part))
        for _target, _chat, seen in checked:
            done.added[seen.status] = done.added.get(seen.status, 0) + 1
        return done

    def _check(
        self,
        connection: Connection,
        advertising: bool,
        targets: Sequence[Target],
        now: datetime,
        done: Enqueued | None = None,
    ) -> list[Checked]:
        """Each target with its chat and verdict; consents the targets carry are recorded first."""
        chats: dict[tuple[str, str], Chat] = {}
        for channel in dict.fromkeys(t.channel for t in targets):
            found = chats_of(connection, channel, [t.chat_id for t in targets if t.channel == channel])
            chats.update({(channel, chat_id): chat for chat_id, chat in found.items()})
        consents: dict[int, str] = {}
        for target in targets:
            chat = chats.get((target.channel, target.chat_id))
            if target.consent and chat is not None and chat.client_id is not None:
                consents.setdefault(chat.client_id, target.consent_source or "csv")
        recorded = record_consent(connection, consents, now)
        if done is not None:
            done.consents += recorded
        clients = [chat.client_id for chat in chats.values() if chat.client_id is not None]
        out = opted_out(connection, clients)
        consented = consenting(connection, clients) if advertising else set()
        checked: list[Checked] = []
        for target in targets:
            chat = chats.get((target.channel, target.chat_id))
            seen = verdict(target, chat, now, advertising=advertising, out=out, consented=consented)
            checked.append((target, chat, seen))
        return checked

    def enqueue_for_event(
        self,
        campaign_id: str,
        advertising: bool,
        kind: str,
        event_id: str,
        payload_json: str,
        targets: Sequence[Target],
        now: datetime,
    ) -> TriggerOutcome:
        """Store a trigger event and its recipient in one transaction: the first target that may be written
        to (else the first target, counted as not allowed). An event id seen before changes nothing and
        answers duplicate=True with the recipient it queued then."""
        with self.write_lock, self.engine.begin() as connection:
            stored = connection.execute(
                dialect_insert(connection)(trigger_events)
                .values(id=event_id, kind=kind, campaign=campaign_id, payload_json=payload_json, at=now)
                .on_conflict_do_nothing(index_elements=[trigger_events.c.id])
                .returning(trigger_events.c.id)
            ).first()
            if stored is None:
                before = connection.execute(
                    select(trigger_events.c.recipient_id).where(trigger_events.c.id == event_id)
                ).scalar()
                return TriggerOutcome(before, True, status_of(connection, before))
            if not targets:
                return TriggerOutcome(None, False, "")
            checked = self._check(connection, advertising, targets, now)
            target, chat, seen = next((c for c in checked if c[2].status == FunnelStatus.QUEUED), checked[0])
            held = connection.execute(
                select(recipients.c.id, recipients.c.status).where(
                    recipients.c.campaign == campaign_id,
                    recipients.c.channel == target.channel,
                    recipients.c.chat_id == target.chat_id,
                )
            ).first()
            if held is not None:
                # The campaign reached this chat before: its row (and funnel) stay as they are.
                recipient_id, status = int(held.id), str(held.status)
            else:
                row = recipient_row(campaign_id, target, chat, seen, now, event_id)
                recipient_id = int(
                    connection.execute(
                        insert(recipients).values(**row).returning(recipients.c.id)
                    ).scalar_one()
                )
                status = seen.status
            connection.execute(
                update(trigger_events)
                .where(trigger_events.c.id == event_id)
                .values(recipient_id=recipient_id)
            )
            return TriggerOutcome(recipient_id, False, status)


def existing(connection: Connection, campaign_id: str, channel: str, chat_ids: Sequence[str]) -> set[str]:
    """The chats among `chat_ids` the campaign already holds a recipient for."""
    there: set[str] = set()
    for part in chunks(chat_ids):
        there.update(
            str(row.chat_id)
            for row in connection.execute(
                select(recipients.c.chat_id).where(
                    recipients.c.campaign == campaign_id,
                    recipients.c.channel == channel,
                    recipients.c.chat_id.in_(part),
                )
            )
        )
    return there


def status_of(connection: Connection, recipient_id: int | None) -> str:
    """A recipient's status; "" for none."""
    if recipient_id is None:
        return ""
    found = connection.execute(select(recipients.c.status).where(recipients.c.id == recipient_id)).scalar()
    return str(found or "")


def recipient_row(
    campaign_id: str, target: Target, chat: Chat | None, seen: Verdict, now: datetime, event_id: str
) -> dict[str, Any]:
    """A new recipient: queued and due now, or ended at once with the reason it may not be written to."""
    ended = seen.status in FUNNEL_ENDS
    return {
        "campaign": campaign_id,
        "client_id": chat.client_id if chat else None,
        "channel": target.channel,
        "chat_id": target.chat_id,
        "conversation_id": chat.conversation_id if chat else None,
        "persona": chat.persona if chat else "neutral",
        "time_zone": target.time_zone,
        "status": seen.status,
        "reason": seen.reason,
        "event_id": event_id,
        "steps_sent": 0,
        "attempt": 0,
        "claimed_at": None,
        "next_at": None if ended else now,
        "external_id": "",
        "queued_at": now,
        "ended_at": now if ended else None,
    }


def record_consent(connection: Connection, consents: dict[int, str], now: datetime) -> int:
    """Record advertising consent of these clients (client id: who recorded it), keeping a consent
    already recorded; how many clients consented now for the first time."""
    if not consents:
        return 0
    ensure_preferences(connection, consents)
    recorded = 0
    for source in set(consents.values()):
        clients = [client for client, given in consents.items() if given == source]
        for part in chunks(clients):
            changed = connection.execute(
                update(preferences)
                .where(preferences.c.client_id.in_(part), preferences.c.advertising_consent_at.is_(None))
                .values(advertising_consent_at=now, advertising_consent_source=source)
            )
            recorded += int(changed.rowcount or 0)
    return recorded


def ensure_preferences(connection: Connection, client_ids: Iterable[int]) -> None:
    """A preferences row for each client (nothing allowed, nothing refused), where there is none yet."""
    rows = [
        {"client_id": client, "advertising_consent_source": "", "opted_out_via": ""} for client in client_ids
    ]
    statement = dialect_insert(connection)(preferences).on_conflict_do_nothing(
        index_elements=[preferences.c.client_id]
    )
    for part in chunks(rows):
        connection.execute(statement, list(part))
