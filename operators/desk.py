"""What operators do to handed-off conversations: take, reply, hand back, transfer, close; and merging two
clients into one person.

Each action runs the engine for the words the client sees (in the client's tone), stores everything in
one transaction, records who did it, and wakes the live pages. A reply goes to the chat the person wrote
in last, if that channel still takes a free-form message (WhatsApp: within 24 hours of the client's last).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from common.channels import facts, title, window_closes, window_hours
from common.locks import ChatLock
from common.messages import Reply
from common.names import (
    ACTIVE_HANDOFF_STATUSES,
    MERGING_ROLES,
    Author,
    ConversationStatus,
    Delivery,
    HandoffStatus,
)
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
    ReplyTarget,
)
from storage.identity import Merged
from storage.tables import as_utc

MAX_REPLY_CHARS = 4000
MAX_REASON_CHARS = 300
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


@dataclass(frozen=True, slots=True)
class ReplyRoute:
    """Where an operator's reply goes: the chat the client wrote in last whose channel still takes a
    free-form reply, and the conversation it is stored in (this one, or the person's in that chat)."""

    conversation_id: int
    channel: str
    chat_id: str
    # The conversation's own chat: nothing moves.
    here: bool
    # When the channel stops taking free-form replies (WhatsApp: 24 h after the client's last message).
    closes_at: datetime | None = None
    # Channels the client wrote in later whose window is closed: the reply goes to an older chat instead.
    passed_over: tuple[str, ...] = ()
    # Set when no chat of the person takes a free-form reply now: why, for the operator.
    refusal: str = ""

    @property
    def title(self) -> str:
        """The channel as the operator reads it."""
        return title(self.channel)


def closed_window(channel: str) -> str:
    """Why a reply to this channel's chat is refused (its free-form window closed)."""
    name = title(channel)
    return (
        f"Клиент писал в {name} больше {window_hours(channel)} часов назад: {name} разрешает написать "
        "только шаблоном. Ответ не отправлен."
    )


def may_merge(role: str) -> bool:
    """Whether an account's role may merge two clients into one person: team leads and admins."""
    return role in MERGING_ROLES


def may_see_campaigns(role: str) -> bool:
    """Whether an account's role may see campaigns' funnels and open their recipients' conversations:
    team leads and admins, the same roles that may merge clients."""
    return role in MERGING_ROLES


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

    def route(self, conversation_id: int) -> ReplyRoute:
        """Where a reply written now would go: the person's chat the client wrote in last, skipping chats
        whose channel's free-form window has closed; `refusal` says why when none is left."""
        targets = self.views.reply_targets(conversation_id)
        if not targets:
            raise DeskError("no such conversation")
        now = self.clock()
        passed: list[str] = []
        for target in targets:
            closes = window_closes(target.channel, target.last_in)
            if closes is None or closes > now:
                return self._route(conversation_id, target, closes, tuple(passed))
            passed.append(target.channel)
        latest = targets[0]
        route = self._route(conversation_id, latest, window_closes(latest.channel, latest.last_in), ())
        return replace(route, refusal=closed_window(latest.channel))

    @staticmethod
    def _route(
        conversation_id: int, target: ReplyTarget, closes: datetime | None, passed: tuple[str, ...]
    ) -> ReplyRoute:
        return ReplyRoute(
            conversation_id=target.conversation_id,
            channel=target.channel,
            chat_id=target.chat_id,
            here=target.conversation_id == conversation_id,
            closes_at=closes,
            passed_over=tuple(dict.fromkeys(passed)),
        )

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
        # Checked before anything is stored: a reply the messenger would refuse is not left pending.
        route = self.route(conversation_id)
        if route.refusal:
            raise DeskError(route.refusal)
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
            note=f"{len(text)} characters"
            + ("" if route.here else f", sent to {route.channel} conversation {route.conversation_id}"),
            route=route,
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

    def merge_clients(self, keep: int, absorb: int, operator: str, reason: str = "") -> Merged:
        """The operator decided two clients are one person: `absorb`'s conversations, details and
        identities move to `keep`, recorded in the audit trail with the reason. Nothing else ever ties
        clients but a verified identity: a contract or phone number the client typed is only a claim."""
        reason = " ".join(reason.split())
        if len(reason) > MAX_REASON_CHARS:
            raise DeskError(f"the reason is longer than {MAX_REASON_CHARS} characters")
        try:
            merged = self.actions.merge_clients(
                keep, absorb, operator, self.clock(), via="console", reason=reason
            )
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
        route: ReplyRoute | None = None,
    ) -> None:
        conversation = self._current(conversation_id).conversation
        # The replies' chat: this conversation's, or the one the client last wrote in (a reply's route).
        channel = conversation.channel if route is None else route.channel
        reply_to = None if route is None or route.here else route.conversation_id
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
                    delivery=Delivery.SENT if facts(channel).self_delivering else Delivery.PENDING,
                    handoff_id=view.handoff.id,
                    handoff=changes,
                    handoff_when=handoff_when,
                    note=note,
                    reply_to=reply_to,
                )
            )
        self.on_change()
