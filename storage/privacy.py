"""A client's rights over their data (152-FZ, GDPR): everything we hold, exported; erased on request;
and conversations deleted once the retention period is over."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, and_, delete, exists, or_, select
from sqlalchemy.engine import Connection, Engine

from storage.database import wipe_wal
from storage.desk import actions, as_utc, record_action
from storage.identity import verified
from storage.tables import (
    WriteLock,
    clients,
    conversations,
    details,
    handoffs,
    identities,
    messages,
    misunderstood,
    preferences,
    receipts,
    recipients,
    tasks,
    trigger_events,
)

# Chats whose delivery receipts one statement erases.
_CHATS_AT_ONCE = 200


def _rows(connection: Connection, table: Table, *where: Any) -> list[dict[str, Any]]:
    found = connection.execute(select(table).where(*where).order_by(table.c.id))
    return [_plain(dict(row._mapping)) for row in found]


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    plain = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            value = (as_utc(value) or value).isoformat()
        elif key.endswith("_json") and isinstance(value, str) and value:
            key, value = key.removesuffix("_json"), json.loads(value)
        plain[key] = value
    return plain


@dataclass(frozen=True, slots=True)
class Erased:
    """What forgetting a client (or purging old conversations) removed."""

    clients: int = 0
    identities: int = 0
    conversations: int = 0
    messages: int = 0
    details: int = 0
    handoffs: int = 0
    tasks: int = 0
    receipts: int = 0
    campaign_recipients: int = 0
    misunderstood: int = 0

    def __add__(self, other: Erased) -> Erased:
        return Erased(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def describe(self) -> str:
        """`3 conversations, 40 messages, ...` for the audit trail and the command line."""
        counts = (
            ("clients", self.clients),
            ("identities", self.identities),
            ("conversations", self.conversations),
            ("messages", self.messages),
            ("details", self.details),
            ("handoffs", self.handoffs),
            ("tasks", self.tasks),
            ("receipts", self.receipts),
            ("campaign recipients", self.campaign_recipients),
            ("misunderstood", self.misunderstood),
        )
        return ", ".join(f"{count} {name}" for name, count in counts)


class ClientData:
    """Export, erasure and retention over the conversation store."""

    def __init__(self, engine: Engine, write_lock: WriteLock) -> None:
        self.engine = engine
        self.write_lock = write_lock

    def export(self, client_id: int, by: str, at: datetime) -> dict[str, Any] | None:
        """Everything stored about one client, JSON-ready; the export itself is recorded. None if unknown."""
        with self.write_lock, self.engine.begin() as connection:
            client = _rows(connection, clients, clients.c.id == client_id)
            if not client:
                return None
            own = select(conversations.c.id).where(conversations.c.client_id == client_id)
            data = {
                "client": client[0],
                "identities": _rows(connection, identities, identities.c.client_id == client_id),
                "verified_identities": _rows(connection, verified, verified.c.client_id == client_id),
                "conversations": _rows(connection, conversations, conversations.c.client_id == client_id),
                "messages": _rows(connection, messages, messages.c.conversation_id.in_(own)),
                "details": _rows(connection, details, details.c.client_id == client_id),
                "handoffs": _rows(connection, handoffs, handoffs.c.conversation_id.in_(own)),
                "tasks": _rows(connection, tasks, tasks.c.conversation_id.in_(own)),
                "misunderstood": _rows(connection, misunderstood, misunderstood.c.conversation_id.in_(own)),
                "operator_actions": _rows(connection, actions, actions.c.conversation_id.in_(own)),
                "delivery_receipts": _rows(
                    connection, receipts, _of_chats(conversations.c.client_id == client_id)
                ),
                "campaign_recipients": _rows(connection, recipients, _recipients_of([client_id])),
                "preferences": [
                    _plain(dict(row._mapping))
                    for row in connection.execute(
                        select(preferences).where(preferences.c.client_id == client_id)
                    )
                ],
                "exported_at": at.isoformat(),
            }
            record_action(connection, by, "export", None, f"client {client_id}", at)
        return data

    def forget(self, client_id: int, by: str, at: datetime) -> Erased | None:
        """Erase a client: messages, details, identities, conversations, handoffs, tasks. The audit trail
        keeps that it was done, by whom and when (and no personal data). None if unknown."""
        with self.write_lock:
            with self.engine.begin() as connection:
                if connection.execute(select(clients.c.id).where(clients.c.id == client_id)).first() is None:
                    return None
                erased = _erase_clients(connection, [client_id])
                detail = f"client {client_id}: {erased.describe()}"
                record_action(connection, by, "forget", None, detail, at)
            # Committed; old copies of the rows still sit in SQLite's write-ahead log until it is emptied.
            wipe_wal(self.engine)
        return erased

    def purge(self, older_than: datetime, by: str, at: datetime) -> Erased:
        """Delete conversations without activity since `older_than`, then clients left with none."""
        with self.write_lock, self.engine.begin() as connection:
            old = select(conversations.c.id).where(conversations.c.updated_at < older_than)
            erased = _erase_conversations(connection, [int(row.id) for row in connection.execute(old)])
            # Reports about messages sent before the cut-off go with them, in chats that live on too.
            gone = connection.execute(delete(receipts).where(receipts.c.at < older_than)).rowcount
            erased += Erased(receipts=int(gone or 0))
            orphans = select(clients.c.id).where(
                ~clients.c.id.in_(select(conversations.c.client_id).distinct())
            )
            erased += _erase_clients(connection, [int(row.id) for row in connection.execute(orphans)])
            if erased.conversations:
                detail = f"older than {older_than.date()}: {erased.describe()}"
                record_action(connection, by, "purge", None, detail, at)
        if erased.conversations or erased.clients:
            with self.write_lock:
                wipe_wal(self.engine)
        return erased


def _erase_clients(connection: Connection, ids: Sequence[int]) -> Erased:
    """Clients with everything of theirs: conversations (and what hangs on them), details, identities."""
    if not ids:
        return Erased()
    mine = _recipients_of(ids)
    # The events that named them (a missed call from their number) go with their places in campaigns.
    named = select(recipients.c.id).where(mine)
    connection.execute(delete(trigger_events).where(trigger_events.c.recipient_id.in_(named)))
    gone_recipients = int(connection.execute(delete(recipients).where(mine)).rowcount or 0)
    connection.execute(delete(preferences).where(preferences.c.client_id.in_(ids)))
    own = select(conversations.c.id).where(conversations.c.client_id.in_(ids))
    erased = _erase_conversations(connection, [int(row.id) for row in connection.execute(own)])
    erased += Erased(campaign_recipients=gone_recipients)
    gone_details = connection.execute(delete(details).where(details.c.client_id.in_(ids))).rowcount
    gone_identities = connection.execute(delete(identities).where(identities.c.client_id.in_(ids))).rowcount
    gone_identities += connection.execute(delete(verified).where(verified.c.client_id.in_(ids))).rowcount
    gone_clients = connection.execute(delete(clients).where(clients.c.id.in_(ids))).rowcount
    return erased + Erased(
        clients=int(gone_clients or 0), identities=int(gone_identities or 0), details=int(gone_details or 0)
    )


def _recipients_of(ids: Sequence[int]) -> Any:
    """Campaign recipients of these clients: by client, or by a chat of one of their conversations (a row
    from a CSV list may name the chat alone)."""
    chat = exists(
        select(conversations.c.id).where(
            conversations.c.channel == recipients.c.channel,
            conversations.c.chat_id == recipients.c.chat_id,
            conversations.c.client_id.in_(ids),
        )
    )
    return or_(recipients.c.client_id.in_(ids), chat)


def _of_chats(*where: Any) -> Any:
    """Delivery receipts of a chat that has a conversation matching `where` (receipts are kept by chat)."""
    return exists(
        select(conversations.c.id).where(
            conversations.c.channel == receipts.c.channel,
            conversations.c.chat_id == receipts.c.chat_id,
            *where,
        )
    )


def _erase_conversations(connection: Connection, ids: Sequence[int]) -> Erased:
    if not ids:
        return Erased()
    chats = connection.execute(
        select(conversations.c.channel, conversations.c.chat_id).where(conversations.c.id.in_(ids)).distinct()
    ).all()
    gone = {
        name: int(connection.execute(delete(table).where(table.c.conversation_id.in_(ids))).rowcount or 0)
        for name, table in (
            ("messages", messages),
            ("details", details),
            ("handoffs", handoffs),
            ("tasks", tasks),
            ("misunderstood", misunderstood),
        )
    }
    count = connection.execute(delete(conversations).where(conversations.c.id.in_(ids))).rowcount
    # Receipts are kept by chat: those of a chat left with no conversation go too. A few chats at a time:
    # one condition over thousands of chats would be deeper than SQLite parses.
    gone_receipts = 0
    for start in range(0, len(chats), _CHATS_AT_ONCE):
        some = or_(
            *(
                and_(receipts.c.channel == row.channel, receipts.c.chat_id == row.chat_id)
                for row in chats[start : start + _CHATS_AT_ONCE]
            )
        )
        gone_receipts += int(connection.execute(delete(receipts).where(some, ~_of_chats())).rowcount or 0)
    return Erased(conversations=int(count or 0), receipts=gone_receipts, **gone)


def write_private(path: Path, text: str) -> None:
    """Write an export readable by its owner alone (0600), however the umask is set: it holds personal
    data. An existing file is narrowed to 0600 before anything is written into it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(descriptor, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)
