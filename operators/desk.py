"""What operators do to handed-off conversations: take, reply, hand back, transfer, close.

Each action runs the engine for the words the client sees (in the client's tone), stores everything in
one transaction, records who did it, and wakes the live pages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from common.locks import ChatLock
from common.messages import Reply
from common.names import ACTIVE_HANDOFF_STATUSES, Author, ConversationStatus, Delivery, HandoffStatus
from common.state import ConversationState
from dialogs.engine import Engine, Turn
from storage.desk.base import (
    AuditTrail,
    ConversationView,
    CurrentState,
    DeskActions,
    DeskChange,
    DeskConflict,
    DeskViews,
)
from storage.identity import Merged
from storage.tables import as_utc

MAX_REPLY_CHARS = 4000
# Channels whose page reads new messages itself; the others have an adapter drain the outbox.
SELF_DELIVERING_CHANNELS = frozenset({"web"})
SUGGESTED_MOMENTS = (
    "operator.greeting",
    "operator.checking",
    "operator.need_more",
    "operator.sorry",
    "operator.solved",
    "operator.goodbye",
)


class DeskError(ValueError):
    """An action that cannot be done, with a message for the operator."""


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A reply phrased for this client's persona, which the operator may send or edit."""

    moment: str
    text: str


def _now() -> datetime:
    return datetime.now(UTC)


class OperatorDesk:
    """Operator actions over the desk's storage, serialised per chat with the conversation service."""

    def __init__(
        self,
        engine: Engine,
        views: DeskViews,
        actions: DeskActions,
        audit: AuditTrail,
        locks: ChatLock,
        *,
        clock: Callable[[], datetime] = _now,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine, self.views, self.actions, self.audit, self.locks = engine, views, actions, audit, locks
        self.clock, self.on_change = clock, on_change

    # --- reading ------------------------------------------------------------------------------------
    def view(self, conversation_id: int, operator: str) -> ConversationView:
        """A conversation as the console shows it; the view is recorded in the audit trail."""
        found = self.views.conversation(conversation_id)
        if found is None:
            raise DeskError("no such conversation")
        self.audit.record(operator, "view", conversation_id, "", self.clock())
        return found

    def suggestions(self, view: ConversationView, operator_name: str) -> list[Suggestion]:
        """Replies from the tone guides for this client's persona, with the operator's name filled in."""
        guides = self.engine.live.get().guides
        values = {"operator": operator_name, **view.details}
        found = []
        for moment in SUGGESTED_MOMENTS:
            if guides.has(moment):
                text = guides.render(moment, view.state.persona, values, []).text
                found.append(Suggestion(moment, text))
        return found

    # --- acting -------------------------------------------------------------------------------------
    def take(self, conversation_id: int, operator: str, display_name: str) -> None:
        """Take a waiting conversation: the client hears who joined, the bot falls silent."""
        self._act(
            conversation_id,
            operator,
            "take",
            lambda state: self.engine.operator_joined(state, display_name),
            status=ConversationStatus.WITH_OPERATOR,
            handoff={"status": HandoffStatus.TAKEN, "taken_by": operator},
            handoff_when=(HandoffStatus.WAITING,),
            stamp="taken_at",
        )

    def reply(self, conversation_id: int, operator: str, display_name: str, text: str) -> None:
        """Send the client a message written by a person; takes the conversation first if nobody has."""
        text = text.strip()
        if not text:
            raise DeskError("the reply is empty")
        if len(text) > MAX_REPLY_CHARS:
            raise DeskError(f"the reply is longer than {MAX_REPLY_CHARS} characters; split it")
        handoff = self._current(conversation_id).handoff
        if handoff is None or handoff.status not in ACTIVE_HANDOFF_STATUSES:
            raise DeskError("this conversation is with the bot; take it from the queue first")
        if handoff.status == HandoffStatus.WAITING:
            self.take(conversation_id, operator, display_name)
        elif handoff.taken_by != operator:
            raise DeskError(f"{handoff.taken_by} is answering this conversation")
        now = self.clock()
        change: dict[str, Any] = {}
        if handoff.first_response_at is None:
            change["first_response_at"] = now
            due = as_utc(handoff.due_at)
            if due is not None and now > due and handoff.breached_at is None:
                change["breached_at"] = due
        self._act(
            conversation_id,
            operator,
            "reply",
            lambda _state: Turn(replies=[Reply(text)]),
            handoff=change,
            handoff_when=(HandoffStatus.TAKEN,),
            note=f"{len(text)} characters",
        )

    def hand_back(self, conversation_id: int, operator: str) -> None:
        """Give the conversation back to the bot."""
        self._act(
            conversation_id,
            operator,
            "hand_back",
            self.engine.operator_left,
            status=ConversationStatus.BOT,
            handoff={"status": HandoffStatus.RETURNED},
            stamp="closed_at",
        )

    def close(self, conversation_id: int, operator: str) -> None:
        """Close: the client is asked to rate the help 1-5; a rating under 4 flags a follow-up."""
        self._act(
            conversation_id,
            operator,
            "close",
            self.engine.operator_closed,
            status=ConversationStatus.BOT,
            handoff={"status": HandoffStatus.CLOSED},
            stamp="closed_at",
        )

    def transfer(self, conversation_id: int, operator: str, category: str) -> None:
        """Move the conversation to another category's queue."""
        categories = self.engine.live.get().scenarios.categories
        if category not in categories:
            raise DeskError(f"unknown category {category!r}")
        title = categories[category].title
        self._act(
            conversation_id,
            operator,
            "transfer",
            lambda state: self.engine.operator_transferred(state, title),
            status=ConversationStatus.HANDED_OFF,
            handoff={"status": HandoffStatus.WAITING, "category": category, "taken_by": "", "taken_at": None},
            note=category,
        )

    def merge_clients(self, keep: int, absorb: int, operator: str) -> Merged:
        """The operator decided two clients are one person: `absorb`'s conversations, details and
        identities move to `keep`, recorded in the audit trail. Nothing else ever ties clients but a
        verified identity: a contract or phone number the client typed is only a claim."""
        try:
            merged = self.actions.merge_clients(keep, absorb, operator, self.clock(), via="console")
        except (LookupError, ValueError) as exc:
            raise DeskError(str(exc)) from exc
        self.on_change()
        return merged

    # --- plumbing -----------------------------------------------------------------------------------
    def _current(self, conversation_id: int) -> CurrentState:
        found = self.views.current(conversation_id)
        if found is None:
            raise DeskError("no such conversation")
        return found

    def _act(
        self,
        conversation_id: int,
        operator: str,
        action: str,
        speak: Callable[[ConversationState], Turn],
        *,
        status: str = "",
        handoff: dict[str, Any] | None = None,
        handoff_when: tuple[str, ...] = ACTIVE_HANDOFF_STATUSES,
        stamp: str = "",
        note: str = "",
    ) -> None:
        conversation = self._current(conversation_id).conversation
        with self.locks.hold(conversation.channel, conversation.chat_id):
            # Read again under the lock: a client message may have changed the state meanwhile.
            view = self._current(conversation_id)
            if view.handoff is None or view.handoff.status not in handoff_when:
                raise DeskConflict("this conversation is no longer in that state; reload the page")
            now = self.clock()
            state = view.state
            turn = speak(state)
            changes = dict(handoff or {})
            if stamp:
                changes[stamp] = now
            self.actions.apply(
                DeskChange(
                    conversation_id=conversation_id,
                    operator=operator,
                    action=action,
                    at=now,
                    state=state,
                    status=status,
                    replies=turn.replies,
                    author=operator if action == "reply" else Author.BOT,
                    delivery=(
                        Delivery.SENT
                        if conversation.channel in SELF_DELIVERING_CHANNELS
                        else Delivery.PENDING
                    ),
                    handoff_id=view.handoff.id,
                    handoff=changes,
                    handoff_when=handoff_when,
                    note=note,
                )
            )
        self.on_change()
