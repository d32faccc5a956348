"""The conversation service: store what arrives, run the engine, store what it decided, reply."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from dialogs.engine import Engine, Turn
from dialogs.events import Event
from dialogs.locks import ChatLocks
from dialogs.messages import IncomingMessage, Reply
from dialogs.state import ConversationState

log = logging.getLogger(__name__)


class ConversationStore(Protocol):
    """What the service needs from storage."""

    def receive(self, message: IncomingMessage) -> tuple[int, ConversationState] | None:
        """Store an incoming message; its conversation id and state, or None for a duplicate."""

    def save_turn(
        self,
        conversation_id: int,
        state: ConversationState,
        replies: Sequence[Reply],
        events: Sequence[Event],
        at: datetime,
    ) -> None:
        """Store the state, replies and events of a turn atomically."""


class ConversationService:
    """Serves client messages through the engine with everything stored."""

    def __init__(self, engine: Engine, store: ConversationStore, locks: ChatLocks | None = None) -> None:
        self.engine = engine
        self.store = store
        self.locks = locks or ChatLocks()
        # Called after every stored turn (live pages wake up and look for what changed).
        self.listeners: list[Callable[[], None]] = []

    def handle(self, message: IncomingMessage) -> Turn:
        """Process one message; a duplicate gives an empty turn, an engine failure a polite apology."""
        if message.at.tzinfo is None:
            message = replace(message, at=message.at.replace(tzinfo=UTC))
        elif message.at.utcoffset():
            # Stored times are UTC (SQLite keeps no zone); the engine converts to local time itself.
            message = replace(message, at=message.at.astimezone(UTC))
        # Held from reading the state to saving it, so an operator's action cannot be overwritten.
        with self.locks.hold(message.channel, message.chat_id):
            received = self.store.receive(message)
            if received is None:
                return Turn()
            conversation_id, state = received
            try:
                turn = self.engine.handle(state, message)
            except Exception:
                # The client gets an apology, never a traceback; the message is already stored.
                log.exception("engine failed on conversation %s", conversation_id)
                turn = self.engine.apologise(state)
            self.store.save_turn(conversation_id, state, turn.replies, turn.events, message.at)
        self.changed()
        return turn

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
