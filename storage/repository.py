"""The store the conversation service writes through: one transaction per step, nothing lost.

Hot paths use SQLAlchemy Core on the SQLModel tables: a message costs a handful of indexed statements,
not an ORM unit of work.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import Connection, Engine

from dialogs.events import DetailCollected, Event, HandoffRequested, RatingGiven, TaskCreated
from dialogs.messages import IncomingMessage, Reply
from dialogs.state import ConversationState
from storage.models import (
    ChannelIdentity,
    Client,
    Conversation,
    DetailRecord,
    HandoffRecord,
    MessageRecord,
    TaskRecord,
)

OPEN_STATUSES = ("bot", "handed_off", "with_operator")
# Below this rating the responsible person follows the conversation up.
FOLLOW_UP_BELOW = 4


def _new_id(result: Any) -> int:
    """The primary key of the row an INSERT just added."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no primary key for an insert")
    return int(key[0])


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


clients, identities, conversations = _table(Client), _table(ChannelIdentity), _table(Conversation)
messages, details, handoffs, tasks = (
    _table(MessageRecord),
    _table(DetailRecord),
    _table(HandoffRecord),
    _table(TaskRecord),
)


@dataclass(frozen=True, slots=True)
class Received:
    """A stored incoming message with its conversation and that conversation's state."""

    conversation_id: int
    state: ConversationState
    message_id: int


def buttons_json(reply: Reply) -> str:
    """A reply's buttons as stored with the message."""
    return json.dumps([{"text": b.text, "payload": b.payload} for b in reply.buttons], ensure_ascii=False)


class SqlStore:
    """Conversations in an SQL database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time and its busy handler sleeps in steps of up to 100 ms; threads of
        # this process queue on a lock instead, which wakes the next one at once.
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )

    @staticmethod
    def _client_for(connection: Connection, channel: str, user_id: str, at: datetime) -> int:
        found = connection.execute(
            select(identities.c.client_id).where(
                identities.c.channel == channel, identities.c.external_id == user_id
            )
        ).scalar()
        if found is not None:
            return int(found)
        client_id = _new_id(connection.execute(insert(clients).values(created_at=at, display_name="")))
        connection.execute(
            insert(identities).values(client_id=client_id, channel=channel, external_id=user_id)
        )
        return client_id

    def receive(self, message: IncomingMessage) -> Received | None:
        """Store an incoming message in its open conversation (unhandled until its turn is saved); None
        when it was handled before. A copy stored but never handled (a worker died) is handed out again."""
        with self._write_lock, self.engine.begin() as connection:
            conversation_id, state_json = self._open_conversation(connection, message)
            seen = self._stored_copy(connection, conversation_id, message)
            if seen is not None:
                if seen.handled:
                    return None
                message_id = int(seen.id)
            else:
                message_id = self._insert_incoming(connection, conversation_id, message)
        return Received(
            conversation_id, ConversationState.from_dict(json.loads(state_json or "{}")), message_id
        )

    def accept(self, message: IncomingMessage) -> bool:
        """Store an incoming message for any worker to handle later; False when it is already stored."""
        with self._write_lock, self.engine.begin() as connection:
            conversation_id, _ = self._open_conversation(connection, message)
            if self._stored_copy(connection, conversation_id, message) is not None:
                return False
            self._insert_incoming(connection, conversation_id, message)
            return True

    def unhandled(self, channel: str, chat_id: str) -> list[tuple[int, int, IncomingMessage]]:
        """Stored messages of a chat still waiting for their turn, in the order they arrived:
        (message row id, conversation id, message)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(messages.c.id, messages.c.conversation_id, messages.c.raw_json)
                .join(conversations, conversations.c.id == messages.c.conversation_id)
                .where(
                    conversations.c.channel == channel,
                    conversations.c.chat_id == chat_id,
                    messages.c.direction == "in",
                    messages.c.handled.is_(False),
                )
                .order_by(messages.c.id)
            )
            return [(int(r.id), int(r.conversation_id), IncomingMessage.from_json(r.raw_json)) for r in rows]

    def state_of(self, conversation_id: int) -> ConversationState:
        """A conversation's current state."""
        with self.engine.connect() as connection:
            state_json = connection.execute(
                select(conversations.c.state_json).where(conversations.c.id == conversation_id)
            ).scalar_one()
        return ConversationState.from_dict(json.loads(state_json or "{}"))

    def chats_waiting(self, received_before: datetime, limit: int = 100) -> list[tuple[str, str]]:
        """Chats with a message stored before `received_before` and still not handled: their worker died
        or is stuck, so another takes over."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(conversations.c.channel, conversations.c.chat_id)
                .join(messages, messages.c.conversation_id == conversations.c.id)
                .where(
                    messages.c.direction == "in",
                    messages.c.handled.is_(False),
                    messages.c.at < received_before,
                )
                .distinct()
                .limit(limit)
            )
            return [(str(r.channel), str(r.chat_id)) for r in rows]

    def _open_conversation(self, connection: Connection, message: IncomingMessage) -> tuple[int, str]:
        row = connection.execute(
            select(conversations.c.id, conversations.c.state_json)
            .where(
                conversations.c.channel == message.channel,
                conversations.c.chat_id == message.chat_id,
                conversations.c.status.in_(OPEN_STATUSES),
            )
            .order_by(conversations.c.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            return int(row.id), str(row.state_json)
        client_id = self._client_for(connection, message.channel, message.user_id, message.at)
        conversation_id = _new_id(
            connection.execute(
                insert(conversations).values(
                    client_id=client_id,
                    channel=message.channel,
                    chat_id=message.chat_id,
                    status="bot",
                    persona="neutral",
                    state_json="{}",
                    created_at=message.at,
                    updated_at=message.at,
                )
            )
        )
        return conversation_id, "{}"

    @staticmethod
    def _stored_copy(connection: Connection, conversation_id: int, message: IncomingMessage) -> Any:
        """The row of this message if it was stored before (same message id in the conversation)."""
        if not message.message_id:
            return None
        return connection.execute(
            select(messages.c.id, messages.c.handled).where(
                messages.c.conversation_id == conversation_id,
                messages.c.direction == "in",
                messages.c.external_id == message.message_id,
            )
        ).first()

    @staticmethod
    def _insert_incoming(connection: Connection, conversation_id: int, message: IncomingMessage) -> int:
        return _new_id(
            connection.execute(
                insert(messages).values(
                    conversation_id=conversation_id,
                    direction="in",
                    text=message.text or message.contact_phone or message.button_payload or "",
                    attachment=message.attachment.value if message.attachment else None,
                    external_id=message.message_id,
                    buttons_json="[]",
                    author="client",
                    handled=False,
                    raw_json=message.to_json(),
                    at=message.at,
                )
            )
        )

    def save_turn(
        self,
        conversation_id: int,
        state: ConversationState,
        replies: Sequence[Reply],
        events: Sequence[Event],
        at: datetime,
        *,
        handled: int | None = None,
        outbox: bool = False,
    ) -> None:
        """Store the state after a turn, the bot's replies and what the turn changed, atomically.

        `handled` is the incoming message's row, marked handled in the same transaction; with `outbox`
        the replies wait there for an adapter (workers) instead of being sent by the caller."""
        values: dict[str, Any] = {
            "state_json": json.dumps(state.to_dict(), ensure_ascii=False),
            "persona": state.persona,
            "updated_at": at,
        }
        if state.handed_off:
            values["status"] = "with_operator" if state.with_operator else "handed_off"
        with self._write_lock, self.engine.begin() as connection:
            changed = connection.execute(
                update(conversations).where(conversations.c.id == conversation_id).values(**values)
            )
            if changed.rowcount == 0:
                raise LookupError(f"conversation {conversation_id} does not exist")
            if replies:
                connection.execute(
                    insert(messages),
                    [
                        {
                            "conversation_id": conversation_id,
                            "direction": "out",
                            "text": reply.text,
                            "attachment": None,
                            "external_id": "",
                            "buttons_json": buttons_json(reply),
                            "author": "bot",
                            "delivery": "pending" if outbox else "",
                            "at": at,
                        }
                        for reply in replies
                    ],
                )
            for event in events:
                self._store_event(connection, conversation_id, event, at)
            if handled is not None:
                connection.execute(update(messages).where(messages.c.id == handled).values(handled=True))

    @staticmethod
    def _store_event(connection: Connection, conversation_id: int, event: Event, at: datetime) -> None:
        if isinstance(event, DetailCollected):
            if event.previous is not None:
                connection.execute(
                    update(details)
                    .where(
                        details.c.conversation_id == conversation_id,
                        details.c.name == event.name,
                        details.c.superseded.is_(False),
                    )
                    .values(superseded=True)
                )
            client_id = connection.execute(
                select(conversations.c.client_id).where(conversations.c.id == conversation_id)
            ).scalar_one()
            connection.execute(
                insert(details).values(
                    conversation_id=conversation_id,
                    client_id=client_id,
                    name=event.name,
                    value=event.value,
                    raw=event.raw,
                    superseded=False,
                    at=at,
                )
            )
        elif isinstance(event, HandoffRequested):
            connection.execute(
                insert(handoffs).values(
                    conversation_id=conversation_id,
                    reason=event.reason,
                    category=event.category,
                    priority=event.priority,
                    note=event.note,
                    status="waiting",
                    created_at=at,
                    due_at=datetime.fromisoformat(event.due_at).astimezone(UTC) if event.due_at else None,
                )
            )
        elif isinstance(event, RatingGiven):
            latest = connection.execute(
                select(handoffs.c.id)
                .where(
                    handoffs.c.conversation_id == conversation_id,
                    handoffs.c.status == "closed",
                    handoffs.c.rating.is_(None),
                )
                .order_by(handoffs.c.id.desc())
                .limit(1)
            ).scalar()
            if latest is not None:
                connection.execute(
                    update(handoffs)
                    .where(handoffs.c.id == latest)
                    .values(rating=event.score, follow_up=event.score < FOLLOW_UP_BELOW)
                )
        elif isinstance(event, TaskCreated):
            connection.execute(
                insert(tasks).values(
                    conversation_id=conversation_id,
                    kind=event.kind,
                    category=event.category,
                    scenario_id=event.scenario_id,
                    payload_json=json.dumps(event.details, ensure_ascii=False),
                    status="open",
                    created_at=at,
                )
            )

    def messages(self, conversation_id: int) -> list[Any]:
        """Every message of a conversation in order (rows with the MessageRecord columns)."""
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(messages)
                    .where(messages.c.conversation_id == conversation_id)
                    .order_by(messages.c.id)
                )
            )

    def details(self, conversation_id: int) -> dict[str, str]:
        """The current value of each detail collected in a conversation."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(details.c.name, details.c.value).where(
                    details.c.conversation_id == conversation_id, details.c.superseded.is_(False)
                )
            )
            return {row.name: row.value for row in rows}
