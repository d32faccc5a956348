"""The outbox in SQL: messages adapters must still deliver, handed out as (id, chat, Reply) items.

Stored messages keep their buttons as JSON; this module is the one place that reads it back, so adapters
and pages get Reply and Button values, never rows or storage formats.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, text, update

from common.messages import Button, Reply
from common.names import Delivery
from storage.desk.base import OutboxItem
from storage.desk.sql import SqlPart
from storage.locks import lock_key
from storage.tables import conversations, messages


def stored_buttons(buttons_json: str | None) -> tuple[Button, ...]:
    """The buttons stored with a message (storage/turns.py writes them)."""
    return tuple(Button(b["text"], b["payload"]) for b in orjson.loads(buttons_json or "[]"))


def stored_reply(row: Any) -> Reply:
    """A stored outgoing message (a messages row) as the reply it was."""
    return Reply(row.text, stored_buttons(row.buttons_json))


class SqlOutbox(SqlPart):
    """The outbox (the Outbox interface)."""

    def claim_pending(self, channel: str, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Messages an adapter of this channel must send, oldest first, with their chat id. Each is
        claimed ("sending") so another worker draining the same outbox skips it, and chats with messages
        being sent by someone are left alone, so one chat's messages keep their order."""
        busy_chats = (
            select(conversations.c.chat_id)
            .join(messages, messages.c.conversation_id == conversations.c.id)
            .where(messages.c.delivery == Delivery.SENDING, conversations.c.channel == channel)
        )
        with self.write_lock, self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Claims of one channel queue up: otherwise two workers could both see a chat idle and
                # claim its consecutive messages apart, sending them out of order.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key("outbox", channel)}
                )
            candidates = [
                row.id
                for row in connection.execute(
                    select(messages.c.id)
                    .join(conversations, conversations.c.id == messages.c.conversation_id)
                    .where(
                        messages.c.delivery == Delivery.PENDING,
                        conversations.c.channel == channel,
                        conversations.c.chat_id.not_in(busy_chats),
                    )
                    .order_by(messages.c.id)
                    .limit(limit)
                )
            ]
            if not candidates:
                return []
            claimed = {
                row.id
                for row in connection.execute(
                    update(messages)
                    .where(messages.c.id.in_(candidates), messages.c.delivery == Delivery.PENDING)
                    .values(delivery=Delivery.SENDING, claimed_at=now)
                    .returning(messages.c.id)
                )
            }
            rows = connection.execute(
                select(messages.c.id, messages.c.text, messages.c.buttons_json, conversations.c.chat_id)
                .join(conversations, conversations.c.id == messages.c.conversation_id)
                .where(messages.c.id.in_(claimed))
                .order_by(messages.c.id)
            )
            return [OutboxItem(int(row.id), channel, str(row.chat_id), stored_reply(row)) for row in rows]

    def release_stale(self, channel: str, claimed_before: datetime) -> int:
        """Put back in the outbox what a worker claimed before `claimed_before` and never sent: it died.
        Fresher claims belong to live workers and are left to them."""
        with self.write_lock, self.engine.begin() as connection:
            in_channel = select(conversations.c.id).where(conversations.c.channel == channel)
            changed = connection.execute(
                update(messages)
                .where(
                    messages.c.delivery == Delivery.SENDING,
                    messages.c.conversation_id.in_(in_channel),
                    (messages.c.claimed_at < claimed_before) | messages.c.claimed_at.is_(None),
                )
                .values(delivery=Delivery.PENDING, claimed_at=None)
            )
            return int(changed.rowcount or 0)

    def record_send(
        self,
        message_id: int,
        status: str,
        still_claimed: Sequence[int],
        now: datetime,
        *,
        external_id: str = "",
    ) -> None:
        """One claimed message was sent (or refused), with the messenger's id of it when known (delivery
        receipts name it); the rest of the claim is renewed, so other workers see this worker alive
        however long the batch takes under rate limits."""
        sent: dict[str, Any] = {"delivery": status}
        if external_id:
            sent["external_id"] = external_id
        with self.write_lock, self.engine.begin() as connection:
            connection.execute(update(messages).where(messages.c.id == message_id).values(**sent))
            if still_claimed:
                connection.execute(
                    update(messages)
                    .where(messages.c.id.in_(still_claimed), messages.c.delivery == Delivery.SENDING)
                    .values(claimed_at=now)
                )
