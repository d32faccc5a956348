"""The conversation service: store what arrives, run the engine, store what it decided, reply."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC
from typing import Any, Protocol, runtime_checkable

from common.locks import ChatLock, ChatLocks
from common.messages import IncomingMessage
from common.metrics import TURN_SECONDS, counted
from common.names import Direction
from common.state import ConversationState
from dialogs.details.card import redact_card_data
from dialogs.engine import Engine, Turn
from dialogs.safetext import clean_text

log = logging.getLogger(__name__)


class ConversationStore(Protocol):
    """What the service needs from storage."""

    def run_turn(
        self, message: IncomingMessage, run: Callable[[int, ConversationState], Turn]
    ) -> Turn | None:
        """Store a message, run its turn and store the turn, atomically; None when handled before."""

    def accept(self, message: IncomingMessage, *, lock_key: int | None = None) -> bool:
        """Store an incoming message to be handled later; False when already stored. With `lock_key`
        the transaction first takes that advisory lock."""

    def accept_and_run(
        self,
        message: IncomingMessage,
        run: Callable[[int, ConversationState, IncomingMessage], Turn],
        *,
        lock_key: int | None = None,
    ) -> tuple[bool, Turn | None]:
        """`accept`, and the message's turn (replies to the outbox) in the same transaction when its chat
        has nothing else waiting: (stored now, the turn or None when left for `run_pending`)."""

    def run_turns(
        self,
        arrived: Sequence[IncomingMessage],
        run: Callable[[int, ConversationState, IncomingMessage], Turn],
    ) -> Sequence[Turn | None]:
        """`run_turn` for messages of different chats in one transaction; all stored or none."""

    def run_pending(
        self,
        channel: str,
        chat_id: str,
        run: Callable[[int, ConversationState, IncomingMessage], Turn],
        *,
        lock_key: int | None = None,
    ) -> Sequence[Turn]:
        """Run a chat's stored, unhandled messages in arrival order and store their turns (replies to the
        outbox) in one transaction, which first takes the advisory lock `lock_key` when given."""

    @property
    def local(self) -> bool:
        """Whether turns are short and never wait on a network (an embedded database)."""


@runtime_checkable
class TransactionChatLock(ChatLock, Protocol):
    """A chat lock that the turn's own transaction can take (PostgreSQL's advisory locks)."""

    def transaction_key(self, channel: str, chat_id: str) -> int:
        """The key the transaction locks."""

    def hold_locally(self, channel: str, chat_id: str) -> AbstractContextManager[None]:
        """Hold the chat among this process's threads only."""


# Every text a channel fills in; `_safe` cleans them all, whichever adapter built the message.
_TEXT_FIELDS = ("channel", "chat_id", "user_id", "text", "message_id", "contact_phone", "button_payload")


def _safe(message: IncomingMessage) -> IncomingMessage:
    """The message as it may be kept: undecodable bytes (lone surrogates) and NULs as U+FFFD, full card
    numbers and CVV codes replaced by marks, before anything stores, logs or reads it (the engine reads
    the marks as the refused data). The one door every channel's messages pass."""
    cleaned: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = getattr(message, name)
        if value is not None and (clean := clean_text(value)) is not value:
            cleaned[name] = clean
    text = cleaned.get("text", message.text)
    redacted = redact_card_data(text)
    if redacted != text:
        cleaned["text"] = redacted
    return replace(message, **cleaned) if cleaned else message


def _in_utc(message: IncomingMessage) -> IncomingMessage:
    if message.at.tzinfo is None:
        return replace(message, at=message.at.replace(tzinfo=UTC))
    if message.at.utcoffset():
        # Stored times are UTC (SQLite keeps no zone); the engine converts to local time itself.
        return replace(message, at=message.at.astimezone(UTC))
    return message


def _measured(channel: str, turns: Sequence[Turn], started: float) -> None:
    """The turns' time and the messages they took and gave, for /metrics; a message stored for later
    counts when its turn runs."""
    elapsed = time.perf_counter() - started
    seconds = TURN_SECONDS.labels(channel)
    for turn in turns:
        seconds.observe(elapsed)
        counted(channel, Direction.IN)
        counted(channel, Direction.OUT, len(turn.replies))


def _log_turn(message: IncomingMessage, turn: Turn) -> None:
    if log.isEnabledFor(logging.DEBUG):
        # For `-v` debugging; personal data in it is masked by the process's log set-up.
        log.debug(
            "%s:%s heard %r, details %s, replied %r",
            message.channel,
            message.chat_id,
            message.text[:300],
            turn.explain.get("details"),
            [reply.text[:300] for reply in turn.replies],
        )


class ConversationService:
    """Serves client messages through the engine with everything stored."""

    def __init__(self, engine: Engine, store: ConversationStore, locks: ChatLock | None = None) -> None:
        self.engine = engine
        self.store = store
        self.locks: ChatLock = locks or ChatLocks()
        # Called after every stored turn (live pages wake up and look for what changed).
        self.listeners: list[Callable[[], None]] = []

    def handle(self, message: IncomingMessage) -> Turn:
        """Process one message; a duplicate gives an empty turn, an engine failure a polite apology."""
        started = time.perf_counter()
        message = _safe(_in_utc(message))
        # Held from reading the state to saving it, so an operator's action cannot be overwritten.
        with self.locks.hold(message.channel, message.chat_id):
            # One transaction stores the message, the turn and its replies: all of it or none of it.
            turn = self.store.run_turn(
                message, lambda conversation_id, state: self._run(conversation_id, state, message)
            )
            if turn is None:
                return Turn()
        _measured(message.channel, (turn,), started)
        _log_turn(message, turn)
        self.changed()
        return turn

    def accept(self, message: IncomingMessage) -> bool:
        """Store a message for `process_pending` (in this worker or another); False for a duplicate."""
        message = _safe(_in_utc(message))
        locks = self.locks
        if isinstance(locks, TransactionChatLock):
            with locks.hold_locally(message.channel, message.chat_id):
                key = locks.transaction_key(message.channel, message.chat_id)
                return self.store.accept(message, lock_key=key)
        with locks.hold(message.channel, message.chat_id):
            return self.store.accept(message)

    def receive(self, message: IncomingMessage) -> int:
        """Store a message and, when its chat has nothing else waiting, handle it in the same transaction
        (replies to the outbox): how many were handled, 0 when it waits for `process_pending` (or was
        stored before). One transaction instead of `accept` and then `process_pending`."""
        started = time.perf_counter()
        message = _safe(_in_utc(message))
        locks = self.locks
        if isinstance(locks, TransactionChatLock):
            with locks.hold_locally(message.channel, message.chat_id):
                key = locks.transaction_key(message.channel, message.chat_id)
                _, turn = self.store.accept_and_run(message, self._run, lock_key=key)
        else:
            with locks.hold(message.channel, message.chat_id):
                _, turn = self.store.accept_and_run(message, self._run)
        if turn is None:
            return 0
        _measured(message.channel, (turn,), started)
        _log_turn(message, turn)
        self.changed()
        return 1

    def handle_all(self, arrived: Sequence[IncomingMessage]) -> list[Turn]:
        """`handle` for messages of different chats, stored in one transaction (one commit for all). A
        storage failure raises and stores none of them; callers then handle them one by one."""
        started = time.perf_counter()
        arrived = [_safe(_in_utc(message)) for message in arrived]
        if not isinstance(self.locks, ChatLocks):
            raise TypeError("handle_all needs in-process chat locks")
        with self.locks.hold_all((message.channel, message.chat_id) for message in arrived):
            turns = self.store.run_turns(arrived, self._run)
        for message, turn in zip(arrived, turns, strict=True):
            if turn is not None:
                # Each message of a batch waited for the whole batch's transaction.
                _measured(message.channel, (turn,), started)
                _log_turn(message, turn)
        self.changed()
        return [turn if turn is not None else Turn() for turn in turns]

    @property
    def batches(self) -> bool:
        """Whether `handle_all` may be used, and is cheap enough to run on an event loop."""
        return self.store.local and isinstance(self.locks, ChatLocks)

    def process_pending(self, channel: str, chat_id: str) -> int:
        """Run every stored, unhandled message of a chat in arrival order; the replies go to the outbox.
        Returns how many were handled (0 when another worker got there first)."""
        started = time.perf_counter()
        locks = self.locks
        if isinstance(locks, TransactionChatLock):
            # One connection, one transaction: the chat's lock, its messages and states, their turns.
            with locks.hold_locally(channel, chat_id):
                key = locks.transaction_key(channel, chat_id)
                turns = self.store.run_pending(channel, chat_id, self._run, lock_key=key)
        else:
            with locks.hold(channel, chat_id):
                turns = self.store.run_pending(channel, chat_id, self._run)
        if turns:
            _measured(channel, turns, started)
            self.changed()
        return len(turns)

    def _run(self, conversation_id: int, state: ConversationState, message: IncomingMessage) -> Turn:
        try:
            return self.engine.handle(state, message)
        except Exception:
            # The client gets an apology, never a traceback; the message is already stored.
            log.exception("engine failed on conversation %s", conversation_id)
            return self.engine.apologise(state)

    def changed(self) -> None:
        """Tell listeners that something was stored; a failing listener never fails the turn."""
        for listener in self.listeners:
            try:
                listener()
            except Exception:
                log.exception("change listener failed")

    def apology(self) -> Turn:
        """What to tell a client whose message could not be handled at all: the guides' apology."""
        return self.engine.apologise(ConversationState())
