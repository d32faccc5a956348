"""Who may be written to (the design's "opened the door"): looked up for many chats of one channel at once.

A chat is open when its client wrote there (a stored incoming message) and nothing sent since was refused
(a blocked bot, VK's 901); WhatsApp also needs the client's last message within its 24 hours. Advertising
needs the client's recorded consent. A client who opted out, or any client one person with them by a
verified identity, is never written to again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.engine import Connection

from common.channels import facts
from common.names import Delivery, Direction, FunnelStatus
from storage.campaigns.values import BLOCKED, NO_CONSENT, NO_DOOR, OPTED_OUT, WINDOW_CLOSED, Target
from storage.tables import as_utc, conversations, identities, messages, preferences, recipients, verified

# Chats looked up in one statement: well within every SQLite build's limit of bound parameters.
CHUNK = 500
T = TypeVar("T")


@dataclass(slots=True)
class Chat:
    """What storage knows of one chat: its client, latest conversation, and the moments that decide."""

    client_id: int | None = None
    conversation_id: int | None = None
    persona: str = "neutral"
    last_in: datetime | None = None
    last_sent: datetime | None = None
    last_refused: datetime | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a chat may be written to: the recipient's first status and, when not, why."""

    status: str
    reason: str = ""


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    """`items` in slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def chats_of(connection: Connection, channel: str, chat_ids: Sequence[str]) -> dict[str, Chat]:
    """Every chat of `chat_ids` in `channel` as storage knows it (chats never seen are left out)."""
    found: dict[str, Chat] = {}
    for part in chunks(list(dict.fromkeys(chat_ids))):
        in_chats = and_(conversations.c.channel == channel, conversations.c.chat_id.in_(part))
        rows = connection.execute(
            select(
                conversations.c.chat_id,
                conversations.c.id,
                conversations.c.client_id,
                conversations.c.persona,
            )
            .where(in_chats)
            .order_by(conversations.c.id)
        )
        for row in rows:  # the latest conversation of a chat comes last
            found[str(row.chat_id)] = Chat(int(row.client_id), int(row.id), str(row.persona))
        accounts = connection.execute(
            select(identities.c.external_id, identities.c.client_id).where(
                identities.c.channel == channel, identities.c.external_id.in_(part)
            )
        )
        for account, client_id in accounts:
            found.setdefault(str(account), Chat(int(client_id)))
        _moments(connection, in_chats, found)
        refusals = connection.execute(
            select(recipients.c.chat_id, func.max(recipients.c.ended_at))
            .where(
                recipients.c.channel == channel,
                recipients.c.chat_id.in_(part),
                recipients.c.status == FunnelStatus.NOT_ALLOWED,
                recipients.c.reason == BLOCKED,
            )
            .group_by(recipients.c.chat_id)
        )
        for chat_id, at in refusals:
            chat = found.setdefault(str(chat_id), Chat())
            chat.last_refused = _later(chat.last_refused, as_utc(at))
    return found


def _moments(connection: Connection, in_chats: ColumnElement[bool], found: dict[str, Chat]) -> None:
    """The last incoming message, the last accepted send and the last refused one of each chat."""
    kind = (
        (messages.c.direction == Direction.IN, "last_in"),
        (and_(messages.c.direction == Direction.OUT, messages.c.delivery == Delivery.SENT), "last_sent"),
        (and_(messages.c.direction == Direction.OUT, messages.c.delivery == Delivery.FAILED), "last_refused"),
    )
    for condition, name in kind:
        rows = connection.execute(
            select(conversations.c.chat_id, func.max(messages.c.at))
            .join(conversations, conversations.c.id == messages.c.conversation_id)
            .where(in_chats, condition)
            .group_by(conversations.c.chat_id)
        )
        for chat_id, at in rows:
            chat = found.setdefault(str(chat_id), Chat())
            setattr(chat, name, _later(getattr(chat, name), as_utc(at)))


def _later(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None or second is None:
        return first or second
    return max(first, second)


def opted_out(connection: Connection, client_ids: Iterable[int]) -> set[int]:
    """The clients among `client_ids` who opted out, themselves or as one person with a client who did
    (the same phone their messengers vouched for)."""
    wanted = sorted(set(client_ids))
    out: set[int] = set()
    for part in chunks(wanted):
        out.update(
            int(row.client_id)
            for row in connection.execute(
                select(preferences.c.client_id).where(
                    preferences.c.client_id.in_(part), preferences.c.opted_out_at.is_not(None)
                )
            )
        )
        mine, theirs = verified.alias("mine"), verified.alias("theirs")
        linked = (
            select(mine.c.client_id)
            .join(theirs, and_(theirs.c.kind == mine.c.kind, theirs.c.value == mine.c.value))
            .join(preferences, preferences.c.client_id == theirs.c.client_id)
            .where(mine.c.client_id.in_(part), preferences.c.opted_out_at.is_not(None))
        )
        out.update(int(row.client_id) for row in connection.execute(linked))
    return out


def consenting(connection: Connection, client_ids: Iterable[int]) -> set[int]:
    """The clients among `client_ids` whose consent to advertising is recorded."""
    found: set[int] = set()
    for part in chunks(sorted(set(client_ids))):
        found.update(
            int(row.client_id)
            for row in connection.execute(
                select(preferences.c.client_id).where(
                    preferences.c.client_id.in_(part), preferences.c.advertising_consent_at.is_not(None)
                )
            )
        )
    return found


def verdict(
    target: Target,
    chat: Chat | None,
    now: datetime,
    *,
    advertising: bool,
    out: set[int],
    consented: set[int],
) -> Verdict:
    """Whether a campaign may write to the chat, and why not."""
    client_id = chat.client_id if chat is not None else None
    if client_id is not None and client_id in out:
        return Verdict(FunnelStatus.OPTED_OUT, OPTED_OUT)
    if chat is None or chat.last_in is None:
        return Verdict(FunnelStatus.NOT_ALLOWED, NO_DOOR)
    if chat.last_refused is not None and chat.last_refused > max(
        chat.last_in, chat.last_sent or chat.last_in
    ):
        # The last send was refused and the client has not written since: the door is closed.
        return Verdict(FunnelStatus.NOT_ALLOWED, BLOCKED)
    window = facts(target.channel).reply_window
    if window is not None and chat.last_in < now - window:
        return Verdict(FunnelStatus.NOT_ALLOWED, WINDOW_CLOSED)
    if advertising and client_id not in consented:
        return Verdict(FunnelStatus.NOT_ALLOWED, NO_CONSENT)
    return Verdict(FunnelStatus.QUEUED)
