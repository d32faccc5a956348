"""The store the conversation service writes through: one transaction per step, nothing lost.

A client's message costs one transaction of a few plain statements (storage/turns.py); reads for people
(the console, exports) use SQLAlchemy Core on the SQLModel tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.engine import Engine

from common.events import Event
from common.messages import IncomingMessage, Reply
from common.names import Direction
from common.state import ConversationState
from storage.tables import WriteLock, conversations, details, messages, write_lock_for
from storage.turns import FOLLOW_UP_BELOW, OPEN_STATUSES, Opened, TurnWriter, buttons_json

__all__ = ["FOLLOW_UP_BELOW", "OPEN_STATUSES", "SqlStore", "buttons_json"]


class TurnOutcome(Protocol):
    """What a turn hands back to be stored: the bot's replies and what changed."""

    @property
    def replies(self) -> Sequence[Reply]: ...
    @property
    def events(self) -> Sequence[Event]: ...


OutcomeT = TypeVar("OutcomeT", bound=TurnOutcome)


class SqlStore:
    """Conversations in an SQL database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, write_lock: WriteLock | None = None) -> None:
        self.engine = engine
        # Shared with every other writer of the database (the desk, exports and erasure): see
        # storage.tables.write_lock_for. A store used alone makes its own.
        self.write_lock = write_lock if write_lock is not None else write_lock_for(engine)
        self.writer = TurnWriter(engine)
        # Turns over a local file are short and never wait on a network: callers may run them inline.
        self.local = engine.dialect.name == "sqlite"

    def run_turn(
        self, message: IncomingMessage, run: Callable[[int, ConversationState], OutcomeT]
    ) -> OutcomeT | None:
        """Store an incoming message, run `run(conversation_id, state)` on its conversation and store the
        turn it returns, all in one transaction; None (and nothing run) when it was handled before."""
        with self.write_lock, self.writer.transaction() as cursor:
            return self._turn(cursor, message, lambda conversation_id, state, _: run(conversation_id, state))

    def run_turns(
        self,
        arrived: Sequence[IncomingMessage],
        run: Callable[[int, ConversationState, IncomingMessage], OutcomeT],
    ) -> list[OutcomeT | None]:
        """`run_turn` for several messages in one transaction: one commit for them all (group commit).
        A failure stores none of them."""
        with self.write_lock, self.writer.transaction() as cursor:
            return [self._turn(cursor, message, run) for message in arrived]

    def _turn(
        self,
        cursor: Any,
        message: IncomingMessage,
        run: Callable[[int, ConversationState, IncomingMessage], OutcomeT],
    ) -> OutcomeT | None:
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
        turn = run(opened.conversation_id, state, message)
        self.writer.write_turn(cursor, opened, state, turn.replies, turn.events, message.at)
        return turn

    def accept(self, message: IncomingMessage, *, lock_key: int | None = None) -> bool:
        """Store an incoming message for any worker to handle later; False when it is already stored.
        With `lock_key` (PostgreSQL) the transaction first takes that advisory lock, held until it ends."""
        if self.local:
            with self.write_lock, self.writer.transaction() as cursor:
                return self._accept(cursor, message)
        with self.writer.pipelined_transaction() as cursor:
            if lock_key is not None:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
            return self._accept(cursor, message)

    def _accept(self, cursor: Any, message: IncomingMessage) -> bool:
        opened = self.writer.open_conversation(cursor, message)
        if opened.seen is not None:
            return False
        self.writer.insert_incoming(cursor, opened.conversation_id, message, handled=False)
        return True

    def accept_and_run(
        self,
        message: IncomingMessage,
        run: Callable[[int, ConversationState, IncomingMessage], OutcomeT],
        *,
        lock_key: int | None = None,
    ) -> tuple[bool, OutcomeT | None]:
        """`accept`, and when the chat has no other message waiting, its turn too, run and stored (replies
        to the outbox) in the same transaction: (whether it was stored now, its turn or None when it is
        left for `run_pending`). A message behind waiting ones is stored unhandled, to keep the chat's
        order. On PostgreSQL two round trips for a chat's next message."""
        if self.local:
            with self.write_lock, self.writer.transaction() as cursor:
                return self._accept_and_run(cursor, message, run)
        with self.writer.pipelined_transaction() as cursor:
            if lock_key is not None:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
            return self._accept_and_run(cursor, message, run)

    def _accept_and_run(
        self,
        cursor: Any,
        message: IncomingMessage,
        run: Callable[[int, ConversationState, IncomingMessage], OutcomeT],
    ) -> tuple[bool, OutcomeT | None]:
        opened, waiting = self.writer.open_for_turn(cursor, message)
        if opened.seen is not None:
            return False, None
        if waiting:
            self.writer.insert_incoming(cursor, opened.conversation_id, message, handled=False)
            return True, None
        # Stored and handled together, or neither: a crash before the commit leaves nothing stored, and
        # the update unanswered, so Telegram delivers it again.
        self.writer.insert_incoming(cursor, opened.conversation_id, message, handled=True)
        state = ConversationState.from_json(opened.state_json)
        turn = run(opened.conversation_id, state, message)
        self.writer.write_turn(cursor, opened, state, turn.replies, turn.events, message.at, outbox=True)
        return True, turn

    def unhandled(self, channel: str, chat_id: str) -> list[tuple[int, int, IncomingMessage]]:
        """Stored messages of a chat still waiting for their turn, in the order they arrived:
        (message row id, conversation id, message)."""
        with self.engine.connect() as connection:
            rows = connection.exec_driver_sql(self._pending_sql(lock=False), (channel, chat_id))
            return [(int(r[0]), int(r[1]), IncomingMessage.from_json(r[2])) for r in rows]

    def run_pending(
        self,
        channel: str,
        chat_id: str,
        run: Callable[[int, ConversationState, IncomingMessage], OutcomeT],
        *,
        lock_key: int | None = None,
    ) -> list[OutcomeT]:
        """Run every stored, unhandled message of a chat in arrival order, `run(conversation_id, state,
        message)` each, and store their turns (replies to the outbox) in one transaction.

        With `lock_key` (PostgreSQL) the transaction first takes that advisory lock, held until it ends;
        then one statement reads the messages with their conversations' states, and the writes go with
        the commit: two round trips for the whole batch."""
        if self.local:
            with self.write_lock, self.writer.transaction() as cursor:
                return self._run_pending(cursor, channel, chat_id, run)
        with self.writer.pipelined_transaction() as cursor:
            if lock_key is not None:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
            return self._run_pending(cursor, channel, chat_id, run, lock=True)

    def _run_pending(
        self,
        cursor: Any,
        channel: str,
        chat_id: str,
        run: Callable[[int, ConversationState, IncomingMessage], OutcomeT],
        *,
        lock: bool = False,
    ) -> list[OutcomeT]:
        rows = cursor.execute(self._pending_sql(lock=lock), (channel, chat_id)).fetchall()
        states: dict[int, ConversationState] = {}
        turns = []
        for message_id, conversation_id, raw_json, state_json, client_id in rows:
            message = IncomingMessage.from_json(raw_json)
            before = states.get(conversation_id)
            # The next message of a conversation starts from the state as just stored, as if read back.
            state = ConversationState.from_json(state_json if before is None else before.to_json())
            turn = run(conversation_id, state, message)
            opened = Opened(conversation_id, client_id, "")
            self.writer.write_turn(cursor, opened, state, turn.replies, turn.events, message.at, outbox=True)
            self.writer.mark_handled(cursor, message_id)
            states[conversation_id] = state
            turns.append(turn)
        return turns

    def _pending_sql(self, *, lock: bool) -> str:
        """A chat's unhandled messages, oldest first, each with its conversation's state and client."""
        # The predicate is the partial index's own, so that index serves the query.
        unhandled = "m.handled IS 0" if self.local else "m.handled IS false"
        sql = (
            "SELECT m.id, m.conversation_id, m.raw_json, c.state_json, c.client_id FROM messages m "
            "JOIN conversations c ON c.id = m.conversation_id "
            f"WHERE c.channel = ? AND c.chat_id = ? AND m.direction = '{Direction.IN}' AND {unhandled} "
            "ORDER BY m.id"
        )
        if lock and not self.local:
            # The rows the turns update are locked as read: none is deleted before the commit (the
            # pipelined writes cannot check what they updated).
            sql += " FOR UPDATE OF c"
        return sql.replace("?", "?" if self.local else "%s")

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
