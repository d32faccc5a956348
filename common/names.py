"""The names stored for statuses, reasons, priorities and delivery states: one StrEnum per concept.

Members equal the strings already in the databases, so a member and its old string compare and store alike.
"""

from __future__ import annotations

from enum import StrEnum


class ConversationStatus(StrEnum):
    """Who answers a conversation now."""

    BOT = "bot"
    HANDED_OFF = "handed_off"  # waiting for a person
    WITH_OPERATOR = "with_operator"
    CLOSED = "closed"


# The conversation a chat's next message continues; a closed one is never reopened.
OPEN_CONVERSATION_STATUSES = (
    ConversationStatus.BOT,
    ConversationStatus.HANDED_OFF,
    ConversationStatus.WITH_OPERATOR,
)


class HandoffStatus(StrEnum):
    """Where a handoff to people stands."""

    WAITING = "waiting"
    TAKEN = "taken"
    RETURNED = "returned"  # given back to the bot
    CLOSED = "closed"


# Handoffs in the queue: an operator may still act on them.
ACTIVE_HANDOFF_STATUSES = (HandoffStatus.WAITING, HandoffStatus.TAKEN)


class HandoffReason(StrEnum):
    """Why the bot handed a conversation to people (urgent situations add `urgent_reason` names)."""

    CLIENT_ASKED = "client_asked"
    ACCEPTED_OFFER = "accepted_offer"
    NOT_SOLVED = "not_solved"
    STUCK = "stuck"
    ESCALATION = "escalation"
    SCENARIO = "scenario"
    MISSED_POINT = "missed_point"
    TRIED_BASICS = "tried_basics"
    CAMPAIGN_INTEREST = "campaign_interest"  # answered a campaign's offer with «Интересно»


# Handoffs that mean the bot failed to understand (the editors' misunderstood inbox lists them).
NOT_UNDERSTOOD_HANDOFFS = (HandoffReason.STUCK, HandoffReason.MISSED_POINT)
# The misunderstood inbox's reason for a message answered "not understood" without a handoff.
NOT_UNDERSTOOD = "not_understood"

URGENT_REASON_PREFIX = "urgent:"


def urgent_reason(situation: str) -> str:
    """The handoff reason of an urgent situation a company names in its lexicon."""
    return f"{URGENT_REASON_PREFIX}{situation}"


class Priority(StrEnum):
    """A handoff's place in the queue: high goes first."""

    NORMAL = "normal"
    HIGH = "high"


class Delivery(StrEnum):
    """Where an outgoing message stands on its way to the client."""

    # Sent back at once by the adapter that received the client's message; nothing waits.
    IMMEDIATE = ""
    PENDING = "pending"  # in the outbox, for an adapter to send
    SENDING = "sending"  # claimed by a worker
    SENT = "sent"
    FAILED = "failed"  # the messenger refused it for good


class TaskStatus(StrEnum):
    """Where a task for people stands."""

    OPEN = "open"
    TAKEN = "taken"  # someone is on it
    DONE = "done"


# Tasks still on the operators' task page.
ACTIVE_TASK_STATUSES = (TaskStatus.OPEN, TaskStatus.TAKEN)


class TaskKind(StrEnum):
    """Kinds of work for people that the bot and campaigns set up (scenarios name others: `done.task`)."""

    CALLBACK = "callback"
    FOLLOW_UP = "follow_up"  # the client rated people's help under 4
    SALES = "sales"  # a client answered a campaign with interest


# A rating under this asks someone to follow up with the client (seed 003).
FOLLOW_UP_BELOW = 4


class FunnelStatus(StrEnum):
    """Where one recipient of a campaign stands. The main line only moves forward; the last three end it."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    REPLIED = "replied"
    CONSENTED = "consented"
    CONVERTED = "converted"
    FAILED = "failed"
    NOT_ALLOWED = "not_allowed"  # counted, never messaged: the door is closed or consent is missing
    OPTED_OUT = "opted_out"


# The funnel's steps in order: a recipient's status is never set to an earlier one.
FUNNEL_STEPS = (
    FunnelStatus.QUEUED,
    FunnelStatus.SENT,
    FunnelStatus.DELIVERED,
    FunnelStatus.READ,
    FunnelStatus.REPLIED,
    FunnelStatus.CONSENTED,
    FunnelStatus.CONVERTED,
)
FUNNEL_ENDS = (FunnelStatus.FAILED, FunnelStatus.NOT_ALLOWED, FunnelStatus.OPTED_OUT)


def steps_before(status: FunnelStatus) -> tuple[FunnelStatus, ...]:
    """The funnel steps a recipient may move from to reach `status`: those earlier on the main line."""
    return FUNNEL_STEPS[: FUNNEL_STEPS.index(status)]


def funnel_rank(status: str) -> int:
    """A status's place in the funnel; the ends rank above every step, so nothing moves a recipient back."""
    if status in FUNNEL_ENDS:
        return len(FUNNEL_STEPS)
    return FUNNEL_STEPS.index(FunnelStatus(status))


class CampaignState(StrEnum):
    """Whether a campaign is sending."""

    RUNNING = "running"
    PAUSED = "paused"


class CampaignAction(StrEnum):
    """What a campaign's button does when the client presses it (`campaign:<id>:<action>` payloads)."""

    CALLBACK = "callback"  # a call-back task, after the call-back scenario asks for phone and time
    INTERESTED = "interested"  # consent, handed to sales
    LATER = "later"  # not now: no more follow-ups
    STOP = "stop"  # opt out of every campaign


CAMPAIGN_PAYLOAD_PREFIX = "campaign:"


class OperatorRole(StrEnum):
    """What a console account may do: admins see every conversation and export clients' data; team leads
    and admins may merge two clients into one person."""

    OPERATOR = "operator"
    LEAD = "lead"  # a team lead
    ADMIN = "admin"


# Roles whose merge of two clients (an audited decision that they are one person) the console accepts.
MERGING_ROLES = (OperatorRole.LEAD, OperatorRole.ADMIN)


class Channel(StrEnum):
    """The messengers (and the web chat) a conversation happens in: `conversations.channel`."""

    TELEGRAM = "telegram"
    VK = "vk"
    MAX = "max"
    WHATSAPP = "whatsapp"
    WEB = "web"


class ReceiptStatus(StrEnum):
    """What a messenger reported about a message the bot sent (WhatsApp's statuses)."""

    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


# Who vouched for a verified identity (`verified_identities.source`): the messenger of a shared contact
# (`telegram_contact`), the messenger itself for the number of the sender's own account (`whatsapp`), or
# the company's own systems (`company:crm`).
COMPANY_SOURCE_PREFIX = "company:"


def contact_source(channel: str) -> str:
    """The source of a phone a messenger vouched for as the sender's own shared contact."""
    return f"{channel}_contact"


def company_source(who: str) -> str:
    """The source of an identity the company's own systems (or a person acting for it) confirmed."""
    return f"{COMPANY_SOURCE_PREFIX}{who}"


class Direction(StrEnum):
    """Which way a message went."""

    IN = "in"  # from the client
    OUT = "out"  # to the client


class Author(StrEnum):
    """Who wrote a message; a reply a person wrote carries the operator's account name instead."""

    BOT = "bot"
    CLIENT = "client"
    CAMPAIGN = "campaign"  # a campaign's message, written first by the company
