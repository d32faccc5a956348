"""The tables of the models as SQLAlchemy Core sees them, and helpers every Core writer shares."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy import Table
from sqlalchemy.engine import CursorResult, Engine

from storage.models import (
    CampaignRecipient,
    CampaignRecord,
    ChannelIdentity,
    Client,
    ClientPreference,
    Conversation,
    DeliveryReceiptRecord,
    DetailRecord,
    HandoffRecord,
    MessageRecord,
    MisunderstoodMessage,
    Operator,
    OperatorAction,
    OperatorSession,
    TaskRecord,
    TriggerEvent,
    VerifiedIdentity,
)

# Held around every write transaction of an SQLite database (a no-op for PostgreSQL): see write_lock_for.
WriteLock: TypeAlias = "threading.Lock | contextlib.nullcontext[None]"


def table_of(model: Any) -> Table:
    """The Core table of an SQLModel class."""
    table: Table = model.__table__
    return table


clients, identities, conversations = table_of(Client), table_of(ChannelIdentity), table_of(Conversation)
messages, details, handoffs, tasks = (
    table_of(MessageRecord),
    table_of(DetailRecord),
    table_of(HandoffRecord),
    table_of(TaskRecord),
)
verified, receipts = table_of(VerifiedIdentity), table_of(DeliveryReceiptRecord)
operators, sessions, actions = table_of(Operator), table_of(OperatorSession), table_of(OperatorAction)
campaigns, recipients = table_of(CampaignRecord), table_of(CampaignRecipient)
trigger_events, preferences = table_of(TriggerEvent), table_of(ClientPreference)
misunderstood = table_of(MisunderstoodMessage)


def write_lock_for(engine: Engine) -> WriteLock:
    """A new write lock for a database: SQLite has one writer at a time and its busy handler sleeps in steps
    of up to 100 ms, so threads of one process queue on a lock instead, which wakes the next one at once."""
    return threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()


def new_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an INSERT just added."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no primary key for an insert")
    return int(key[0])


def as_utc(moment: datetime | None) -> datetime | None:
    """Datetimes come back naive from SQLite; everything is stored in UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
