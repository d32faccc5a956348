"""What the console and the adapters ask of the desk's storage: one small interface per concern, and the
values they exchange. SQL backends live beside this module (accounts, audit, views, actions, outbox)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from common.messages import DeliveryReceipt, Reply
from common.names import ACTIVE_HANDOFF_STATUSES, Delivery, FunnelStatus
from common.state import ConversationState
from storage.identity import PHONE, Merged

PREVIEW_CHARS = 160


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One handed-off conversation as the queue shows it."""

    handoff_id: int
    conversation_id: int
    channel: str
    client_id: int
    client_name: str
    persona: str
    category: str
    reason: str
    priority: str
    status: str
    taken_by: str
    created_at: datetime
    due_at: datetime | None
    first_response_at: datetime | None
    breached: bool
    preview: str


@dataclass(slots=True)
class CurrentState:
    """A conversation as an operator action reads it."""

    conversation: Any  # a conversations row
    state: ConversationState
    handoff: Any | None  # its latest handoffs row


@dataclass(frozen=True, slots=True)
class ClientChannel:
    """One account of the person in a channel, as the client card lists it."""

    channel: str
    user_id: str
    client_id: int
    # Sources of verified identities the channel itself vouched for on this account's client ("whatsapp",
    # "telegram_contact"): the card marks the account as confirmed by its messenger.
    vouched: tuple[str, ...] = ()
    # Held by another client tied to this one by a verified identity (not merged into it).
    linked: bool = False


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """A chat of the person that a reply could go to: its latest conversation there, and when the client
    last wrote in it (None: never)."""

    conversation_id: int
    channel: str
    chat_id: str
    last_in: datetime | None


@dataclass(frozen=True, slots=True)
class ReceiptLine:
    """The latest status a messenger reported for one sent message."""

    channel: str
    chat_id: str
    external_id: str
    status: str
    at: datetime
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ClientCard:
    """A client as a merge's confirmation shows it: who, where, how much (no message text)."""

    client_id: int
    name: str
    channels: list[ClientChannel]
    conversations: int
    last_in: datetime | None
    # (kind, value, source) of what a trusted party vouched for.
    verified: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Verification:
    """What confirming an identity from the company's own systems did."""

    client_id: int
    added: bool  # False: the client already held it
    # The clients that are now one person with it (itself included).
    person: tuple[int, ...]


@dataclass(slots=True)
class ConversationView:
    """Everything an operator sees about one conversation and its client."""

    conversation: Any
    state: ConversationState
    client_name: str
    identities: list[Any]
    history: list[Any]  # messages of all the client's conversations, with their channel
    details: dict[str, str]
    handoff: Any | None
    handoffs: list[Any] = field(default_factory=list)
    # (kind, value, source) of what a trusted party vouched for; the names of details it confirms.
    verified: list[tuple[str, str, str]] = field(default_factory=list)
    verified_details: frozenset[str] = frozenset()
    # Every account of the person (the client and clients tied to it by a verified identity).
    channels: list[ClientChannel] = field(default_factory=list)
    # Latest reported status of the sent messages in the person's chats, newest first; and the same by the
    # messenger's message id, for messages whose id the outbox recorded.
    receipts: list[ReceiptLine] = field(default_factory=list)
    receipt_of: dict[str, ReceiptLine] = field(default_factory=dict)

    @property
    def claimed(self) -> list[str]:
        """Details the client only stated: nobody checked that they are the client's own."""
        return [name for name in self.details if name not in self.verified_details]


@dataclass(slots=True)
class DeskChange:
    """Everything one console action changes."""

    conversation_id: int
    operator: str
    action: str
    at: datetime
    state: ConversationState
    status: str = ""
    replies: Sequence[Reply] = ()
    author: str = ""
    delivery: str = Delivery.PENDING
    handoff_id: int | None = None
    handoff: dict[str, Any] = field(default_factory=dict)
    # The handoff statuses the action expects to find; anything else means someone acted first.
    handoff_when: tuple[str, ...] = ACTIVE_HANDOFF_STATUSES
    note: str = ""
    # Where the replies are stored (and so delivered): another conversation of the same person when the
    # client last wrote in another chat; None: this conversation.
    reply_to: int | None = None


class DeskConflict(RuntimeError):
    """Two operators acted on one conversation at once; the later action did nothing."""


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message an adapter must deliver: its id (to report back), where to, and the reply itself."""

    id: int
    channel: str
    chat_id: str
    reply: Reply


# News of the web chats: the newest message id, and (message id, chat id) of messages above a floor.
News = tuple[int, list[tuple[int, str]]]


class Accounts(Protocol):
    """Operator accounts and their signed-in sessions."""

    def add_operator(self, name: str, password_hash: str, display_name: str, role: str, at: datetime) -> int:
        """Create an account; ValueError when the name is taken."""
        ...

    def set_password(self, name: str, password_hash: str) -> bool:
        """Replace a password hash and end the operator's sessions; False when there is no such operator."""
        ...

    def set_password_hash(self, name: str, old_hash: str, new_hash: str) -> bool:
        """A stronger hash of the same password (sessions stay); False when the hash changed meanwhile."""
        ...

    def operator(self, name: str) -> Any | None:
        """An operator account by name."""
        ...

    def create_session(
        self, operator_id: int, token_hash: str, csrf_token: str, at: datetime, expires_at: datetime
    ) -> None:
        """Remember a signed-in session."""
        ...

    def session(self, token_hash: str, now: datetime) -> tuple[Any, str] | None:
        """The operator and CSRF token of a live session."""
        ...

    def end_session(self, token_hash: str) -> None:
        """Sign out."""
        ...


class AuditTrail(Protocol):
    """Who did what in the console, and when."""

    def record(
        self, operator: str, action: str, conversation_id: int | None, detail: str, at: datetime
    ) -> None:
        """Add a line to the audit trail."""
        ...

    def audit(self, conversation_id: int) -> list[Any]:
        """The audit trail of one conversation, oldest first."""
        ...


class DeskViews(Protocol):
    """The queue, one conversation, and the change marker live pages poll."""

    def mark_breaches(self, now: datetime) -> int:
        """Record handoffs whose first human reply is overdue; how many were newly marked."""
        ...

    def queue(self, now: datetime) -> list[QueueItem]:
        """Waiting and taken handoffs in the order operators should take them."""
        ...

    def change_marker(self) -> tuple[int, int, int]:
        """Grows whenever a message, handoff or console action is added."""
        ...

    def current(self, conversation_id: int) -> CurrentState | None:
        """What an operator action needs of a conversation."""
        ...

    def conversation(self, conversation_id: int) -> ConversationView | None:
        """The conversation, its client's whole history across channels, details and handoffs."""
        ...

    def exists(self, conversation_id: int) -> bool:
        """Whether there is such a conversation."""
        ...

    def was_handed_off(self, conversation_id: int) -> bool:
        """Whether people were ever asked to answer this conversation, or to do something for it (a task)."""
        ...

    def campaign_wrote(self, conversation_id: int) -> bool:
        """Whether a campaign wrote to the client in this conversation."""
        ...

    def reply_targets(self, conversation_id: int) -> list[ReplyTarget]:
        """Every chat of the conversation's person, the one the client wrote in last first."""
        ...

    def client_card(self, client_id: int) -> ClientCard | None:
        """A client's name, accounts and how many conversations; None when there is no such client."""
        ...


class ChatHistory(Protocol):
    """The messages of a chat, for a page that shows them as they come (the web chat)."""

    def chat_messages(self, channel: str, chat_id: str, after_id: int, limit: int = 200) -> list[Any]:
        """Messages of one chat (all its conversations) after a message id."""
        ...

    def chat_news(self, channel: str, floor: int | None) -> News:
        """The newest message id, and (id, chat id) of the channel's messages above `floor`."""
        ...

    def last_in(self, channel: str, chat_id: str) -> datetime | None:
        """When the client last wrote in a chat (WhatsApp's reply window starts there); None: never."""
        ...


class DeskActions(Protocol):
    """What operators change: a console action's writes, and merging two clients into one person."""

    def apply(self, change: DeskChange) -> None:
        """Store what an operator action did, atomically; DeskConflict when someone acted first."""
        ...

    def merge_clients(
        self, keep: int, absorb: int, by: str, at: datetime, via: str = "", reason: str = ""
    ) -> Merged:
        """Everything of `absorb` moves to `keep`, recorded in the audit trail with the reason."""
        ...

    def verify_identity(
        self, channel: str, user_id: str, value: str, by: str, at: datetime, *, kind: str = PHONE
    ) -> Verification:
        """The company's own systems confirm an identity of a channel's account (source `company:<by>`),
        audited; LookupError for an account that never wrote, ValueError for a value that is no phone."""
        ...


class Outbox(Protocol):
    """Messages waiting for an adapter to deliver them."""

    def claim_pending(self, channel: str, now: datetime, limit: int = 100) -> list[OutboxItem]:
        """Claim the channel's next messages to send, oldest first."""
        ...

    def release_stale(self, channel: str, claimed_before: datetime) -> int:
        """Put back what a dead worker claimed before `claimed_before`."""
        ...

    def record_send(
        self,
        message_id: int,
        status: str,
        still_claimed: Sequence[int],
        now: datetime,
        *,
        external_id: str = "",
    ) -> None:
        """One claimed message was sent (or refused), with the messenger's id of it when known; the rest
        of the claim is renewed."""
        ...


class Receipts(Protocol):
    """What messengers report about the messages the bot sent."""

    def record_receipts(self, receipts: Sequence[DeliveryReceipt]) -> None:
        """Store the reports; one the messenger repeats (same channel, message id and status) is kept once."""
        ...

    def receipts_of(self, chats: Sequence[tuple[str, str]], limit: int = 20) -> list[ReceiptLine]:
        """The latest status of each sent message in these (channel, chat id) chats, newest first."""
        ...


# --- the operators' tasks and campaigns' funnels -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskItem:
    """A task as the task page shows it, with its conversation's channel and client."""

    id: int
    conversation_id: int
    kind: str
    category: str
    scenario_id: str
    # What the bot collected for it (a call-back's phone and the client's chosen time).
    details: dict[str, str]
    status: str
    created_at: datetime
    # When it is due: the stored due time, or when it was set up for a task due at once.
    due_at: datetime
    taken_by: str
    taken_by_name: str
    taken_at: datetime | None
    done_at: datetime | None
    outcome: str
    channel: str
    chat_id: str
    client_id: int
    client_name: str
    overdue: bool


class TaskConflict(DeskConflict):
    """Someone else got to the task first (took it, or finished it): the change did nothing."""

    def __init__(self, task_id: int, status: str, taken_by: str, taken_by_name: str) -> None:
        super().__init__(f"task {task_id} is {status} by {taken_by or 'nobody'}")
        self.task_id, self.status = task_id, status
        self.taken_by, self.taken_by_name = taken_by, taken_by_name


class Tasks(Protocol):
    """Work for people the bot and campaigns set up: the task page, and taking, finishing, rescheduling."""

    def active_tasks(self, now: datetime, kind: str = "") -> list[TaskItem]:
        """Open and taken tasks (of one kind, when given): overdue first, then by due time."""
        ...

    def active_counts(self) -> dict[str, int]:
        """How many open and taken tasks of each kind there are."""
        ...

    def done_tasks(self, since: datetime, limit: int = 20) -> list[TaskItem]:
        """Tasks finished since a moment, the latest first."""
        ...

    def task(self, task_id: int, now: datetime) -> TaskItem | None:
        """One task; None when there is no such task."""
        ...

    def take_task(self, task_id: int, operator: str, at: datetime) -> TaskItem:
        """Take an open task, audited; TaskConflict when someone else has it or it is done."""
        ...

    def finish_task(
        self, task_id: int, operator: str, at: datetime, outcome: str = "", *, converted: bool = False
    ) -> TaskItem:
        """Mark a task done with what came of it, audited; `converted` moves the conversation's campaign
        recipient forward to converted. TaskConflict when another has it or it is done."""
        ...

    def reschedule_task(
        self, task_id: int, operator: str, at: datetime, due_at: datetime, note: str = ""
    ) -> TaskItem:
        """Move a task's due time, audited; TaskConflict when another has it or it is done."""
        ...


@dataclass(slots=True)
class FunnelCounts:
    """One slice of a campaign's funnel: recipients who reached at least each step, and those who ended."""

    # Step (FunnelStatus of FUNNEL_STEPS) → recipients whose furthest step is that one or later.
    reached: dict[str, int]
    # End (FUNNEL_ENDS) → recipients who ended there; and by (end, reason).
    ends: dict[str, int]
    reasons: dict[tuple[str, str], int]

    @property
    def total(self) -> int:
        """Every recipient of the slice (all reached the first step, being queued)."""
        return self.reached.get(FunnelStatus.QUEUED, 0)


@dataclass(frozen=True, slots=True)
class CampaignFunnel:
    """A campaign's funnel: overall, by persona and by channel."""

    campaign: str
    overall: FunnelCounts
    by_persona: dict[str, FunnelCounts]
    by_channel: dict[str, FunnelCounts]


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    """A campaign with recipients, for the list of campaigns."""

    campaign: str
    state: str  # CampaignState, or "" when it has no campaigns row
    started_at: datetime | None
    counts: FunnelCounts


@dataclass(frozen=True, slots=True)
class RecipientLine:
    """One recipient as the drill-down lists it."""

    id: int
    client_id: int | None
    client_name: str
    channel: str
    chat_id: str
    conversation_id: int | None
    persona: str
    status: str
    reason: str
    steps_sent: int
    # FunnelStatus → when the recipient reached it (queued, sent ... converted, and `ended` for the ends).
    moments: dict[str, datetime]


class Funnel(Protocol):
    """What the console shows of campaigns: their funnels, and who stands where."""

    def campaign_summaries(self) -> list[CampaignSummary]:
        """Every campaign that has recipients, by id."""
        ...

    def funnel(self, campaign: str) -> CampaignFunnel | None:
        """A campaign's funnel; None when it has no recipients."""
        ...

    def recipients(
        self,
        campaign: str,
        step: str = "",
        persona: str = "",
        channel: str = "",
        reason: str = "",
        limit: int = 500,
    ) -> tuple[list[RecipientLine], int]:
        """Recipients who reached at least `step` (or ended there, for an end), of a persona and channel
        when given, in the order they were queued (at most `limit`); and how many match in all."""
        ...
