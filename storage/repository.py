"""The store the conversation service writes through: one transaction per step, nothing lost.

A client's message costs one transaction of a few plain statements (storage/turns.py); reads for people
(the console, exports) use SQLAlchemy Core on the SQLModel tables.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import Table, select
from sqlalchemy.engine import Engine

from common.events import Event
from common.messages import IncomingMessage, Reply
from common.state import ConversationState
from storage.models import (
    ChannelIdentity,
    Client,
    Conversation,
    DetailRecord,
    HandoffRecord,
    MessageRecord,
    TaskRecord,
)
from storage.turns import FOLLOW_UP_BELOW, OPEN_STATUSES, Opened, TurnWriter, buttons_json

__all__ = ["FOLLOW_UP_BELOW", "OPEN_STATUSES", "Received", "SqlStore", "buttons_json"]


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


class TurnOutcome(Protocol):
    """What a turn hands back to be stored: the bot's replies and what changed."""

    @property
    def replies(self) -> Sequence[Reply]: ...
    @property
    def events(self) -> Sequence[Event]: ...


OutcomeT = TypeVar("OutcomeT", bound=TurnOutcome)


class SqlStore:
    """Conversations in an SQL database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time and its busy handler sleeps in steps of up to 100 ms; threads of
        # this process queue on a lock instead, which wakes the next one at once.
        self._write_lock: threading.Lock | contextlib.nullcontext[None] = (
            threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()
        )
        self.writer = TurnWriter(engine)

    def run_turn(
        self, message: IncomingMessage, run: Callable[[int, ConversationState], OutcomeT]
    ) -> OutcomeT | None:
        """Store an incoming message, run `run(conversation_id, state)` on its conversation and store the
        turn it returns, all in one transaction; None (and nothing run) when it was handled before."""
        with self._write_lock, self.writer.transaction() as cursor:
            opened = self.writer.open_conversation(cursor, message)
            seen = opened.seen
            if seen is not None and seen[1]:
                return None
            if seen is None:
                # Handled in this same transaction: stored with its turn, or not at all.
                self.writer.insert_incoming(cursor, opened.conversation_id, message, handled=True)
            else:
                # Stored for a worker that never got to it: this turn is its turn.
                self.writer.mark_handled(cursor, seen[0])
            state = ConversationState.from_json(opened.state_json)
            turn = run(opened.conversation_id, state)
            self.writer.write_turn(cursor, opened, state, turn.replies, turn.events, message.at)
            return turn

    def receive(self, message: IncomingMessage) -> Received | None:
        """Store an incoming message in its open conversation (unhandled until its turn is saved); None
        when it was handled before. A copy stored but never handled (a worker died) is handed out again."""
        with self._write_lock, self.writer.transaction() as cursor:
            opened = self.writer.open_conversation(cursor, message)
            seen = opened.seen
            if seen is not None:
                if seen[1]:
                    return None
                message_id = seen[0]
            else:
                message_id = self.writer.insert_incoming(
                    cursor, opened.conversation_id, message, handled=False
                )
        return Received(opened.conversation_id, ConversationState.from_json(opened.state_json), message_id)

    def accept(self, message: IncomingMessage) -> bool:
        """Store an incoming message for any worker to handle later; False when it is already stored."""
        with self._write_lock, self.writer.transaction() as cursor:
            opened = self.writer.open_conversation(cursor, message)
            if opened.seen is not None:
                return False
            self.writer.insert_incoming(cursor, opened.conversation_id, message, handled=False)
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
        return ConversationState.from_json(state_json)

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
        with self._write_lock, self.writer.transaction() as cursor:
            opened = Opened(conversation_id, None, "")
            self.writer.write_turn(cursor, opened, state, replies, events, at, outbox=outbox)
            if handled is not None:
                self.writer.mark_handled(cursor, handled)

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
