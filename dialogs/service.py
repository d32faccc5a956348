"""The conversation service: store what arrives, run the engine, store what it decided, reply."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from common.events import Event
from common.locks import ChatLock, ChatLocks
from common.messages import IncomingMessage, Reply
from common.state import ConversationState
from dialogs.details.card import redact_card_data
from dialogs.engine import Engine, Turn
from dialogs.safetext import clean_text

log = logging.getLogger(__name__)


class ReceivedMessage(Protocol):
    """A stored incoming message, as the store hands it back."""

    @property
    def conversation_id(self) -> int: ...
    @property
    def state(self) -> ConversationState: ...
    @property
    def message_id(self) -> int: ...


class ConversationStore(Protocol):
    """What the service needs from storage."""

    def run_turn(
        self, message: IncomingMessage, run: Callable[[int, ConversationState], Turn]
    ) -> Turn | None:
        """Store a message, run its turn and store the turn, atomically; None when handled before."""

    def receive(self, message: IncomingMessage) -> ReceivedMessage | None:
        """Store an incoming message; its conversation and state, or None when it was handled before."""

    def accept(self, message: IncomingMessage) -> bool:
        """Store an incoming message to be handled later; False when already stored."""

    def unhandled(self, channel: str, chat_id: str) -> list[tuple[int, int, IncomingMessage]]:
        """A chat's stored messages still waiting for their turn, oldest first."""

    def state_of(self, conversation_id: int) -> ConversationState:
        """A conversation's current state."""

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
        """Store the state, replies and events of a turn atomically."""


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
        message = _safe(_in_utc(message))
        # Held from reading the state to saving it, so an operator's action cannot be overwritten.
        with self.locks.hold(message.channel, message.chat_id):
            # One transaction stores the message, the turn and its replies: all of it or none of it.
            turn = self.store.run_turn(
                message, lambda conversation_id, state: self._run(conversation_id, state, message)
            )
            if turn is None:
                return Turn()
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
        self.changed()
        return turn

    def accept(self, message: IncomingMessage) -> bool:
        """Store a message for `process_pending` (in this worker or another); False for a duplicate."""
        message = _safe(_in_utc(message))
        with self.locks.hold(message.channel, message.chat_id):
            return self.store.accept(message)

    def process_pending(self, channel: str, chat_id: str) -> int:
        """Run every stored, unhandled message of a chat in arrival order; the replies go to the outbox.
        Returns how many were handled (0 when another worker got there first)."""
        with self.locks.hold(channel, chat_id):
            waiting = self.store.unhandled(channel, chat_id)
            for message_id, conversation_id, message in waiting:
                state = self.store.state_of(conversation_id)
                turn = self._run(conversation_id, state, message)
                self.store.save_turn(
                    conversation_id,
                    state,
                    turn.replies,
                    turn.events,
                    message.at,
                    handled=message_id,
                    outbox=True,
                )
        if waiting:
            self.changed()
        return len(waiting)

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
