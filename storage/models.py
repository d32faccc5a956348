"""Tables. Names say what rows hold; JSON columns keep what the engine owns (state, payloads)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from common.names import (
    CampaignState,
    ConversationStatus,
    Delivery,
    FunnelStatus,
    HandoffStatus,
    OperatorRole,
    Priority,
    TaskStatus,
)

# Every moment is stored in UTC with its zone (timestamptz on PostgreSQL); SQLite keeps the text.
Moment = DateTime(timezone=True)


class Client(SQLModel, table=True):
    """A person who writes to the company, across channels."""

    __tablename__ = "clients"
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_type=Moment)
    display_name: str = ""


class ChannelIdentity(SQLModel, table=True):
    """Who a client is on one channel (a Telegram user id, a web-chat visitor)."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="clients.id", index=True)
    channel: str
    external_id: str


class VerifiedIdentity(SQLModel, table=True):
    """Something a trusted party vouched belongs to a client (a phone Telegram says is the sender's own).

    Only these tie clients together automatically; a number a client typed is a claim, never a link."""

    __tablename__ = "verified_identities"
    __table_args__ = (
        UniqueConstraint("client_id", "kind", "value"),
        Index("ix_verified_identities_value", "kind", "value"),
    )
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="clients.id", index=True)
    kind: str  # phone
    value: str  # normalised: "+79131234567"
    source: str  # who vouched: "telegram_contact"
    at: datetime = Field(sa_type=Moment)


class Conversation(SQLModel, table=True):
    """One chat with a client; `state_json` is the engine's memory of it."""

    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_chat", "channel", "chat_id", "status"),
        # The analytics count conversations by when they started, of a channel too, from this index alone;
        # it also gives the ids of a channel's conversations (migration 0008).
        Index("ix_conversations_started", "created_at", "channel", "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="clients.id", index=True)
    channel: str
    chat_id: str
    status: str = ConversationStatus.BOT
    persona: str = "neutral"
    state_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_type=Moment)
    updated_at: datetime = Field(sa_type=Moment)


class MessageRecord(SQLModel, table=True):
    """Every message, both directions."""

    __tablename__ = "messages"
    # Every message is written once and most are never looked up again: besides one index by conversation
    # and one by time, partial indexes hold only the few rows a query looks for (unhandled messages, the
    # outbox).
    __table_args__ = (
        # A conversation's messages, and an incoming one found again by its id in the chat: one index
        # for both, so each message is written into one index led by its conversation, not two.
        Index("ix_messages_conversation", "conversation_id", "external_id"),
        # The analytics count a day's messages each way, of a channel too, from this index alone: a year's
        # counts in about 0.1 s instead of seconds. Measured cost on SQLite: a message stored in a
        # transaction of its own takes 19 us instead of 15 (one more page into the log per commit).
        Index("ix_messages_at", "at", "direction", "conversation_id"),
        Index(
            "ix_messages_unhandled",
            "conversation_id",
            sqlite_where=text("handled IS 0"),
            postgresql_where=text("handled IS false"),
        ),
        Index(
            "ix_messages_pending",
            "conversation_id",
            sqlite_where=text(f"delivery = '{Delivery.PENDING}'"),
            postgresql_where=text(f"delivery = '{Delivery.PENDING}'"),
        ),
        Index(
            "ix_messages_sending",
            "conversation_id",
            sqlite_where=text(f"delivery = '{Delivery.SENDING}'"),
            postgresql_where=text(f"delivery = '{Delivery.SENDING}'"),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id")
    direction: str  # Direction
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    attachment: str | None = None
    external_id: str = ""
    buttons_json: str = "[]"
    # Author.BOT, Author.CLIENT, or the operator's account name for replies people wrote.
    author: str = ""
    # Delivery.IMMEDIATE when the adapter that received the client's message sent it back at once; PENDING
    # when an adapter must still deliver it (operator replies, rating requests), then SENT.
    delivery: str = Delivery.IMMEDIATE
    # When a worker claimed it for sending; a claim older than a few minutes is a dead worker's.
    claimed_at: datetime | None = Field(default=None, sa_type=Moment)
    # Incoming messages: False until a turn for it is stored, so a worker that died mid-way leaves it
    # for another; `raw_json` keeps the whole platform-free message to run it again.
    handled: bool = True
    raw_json: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    at: datetime = Field(sa_type=Moment)


class DetailRecord(SQLModel, table=True):
    """A detail the bot collected; a correction adds a row and marks the old one superseded."""

    __tablename__ = "details"
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    client_id: int = Field(foreign_key="clients.id", index=True)
    name: str
    value: str
    raw: str = ""
    superseded: bool = False
    at: datetime = Field(sa_type=Moment)


class HandoffRecord(SQLModel, table=True):
    """A conversation handed to people, and why."""

    __tablename__ = "handoffs"
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    reason: str
    category: str
    priority: str = Priority.NORMAL
    note: str = ""
    status: str = HandoffStatus.WAITING
    created_at: datetime = Field(sa_type=Moment, index=True)
    due_at: datetime | None = Field(default=None, sa_type=Moment)
    taken_by: str = ""
    taken_at: datetime | None = Field(default=None, sa_type=Moment)
    first_response_at: datetime | None = Field(default=None, sa_type=Moment)
    breached_at: datetime | None = Field(default=None, sa_type=Moment)
    closed_at: datetime | None = Field(default=None, sa_type=Moment)
    rating: int | None = None
    follow_up: bool = False


class TaskRecord(SQLModel, table=True):
    """Work for people that the bot set up: a call-back, a tariff change, a connection request."""

    __tablename__ = "tasks"
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    kind: str
    category: str
    scenario_id: str
    payload_json: str = "{}"
    status: str = TaskStatus.OPEN
    created_at: datetime = Field(sa_type=Moment)
    # When it is due: the client's chosen call-back time, or when it was set up; rescheduling moves it.
    due_at: datetime | None = Field(default=None, sa_type=Moment)
    taken_by: str = ""
    taken_at: datetime | None = Field(default=None, sa_type=Moment)
    done_at: datetime | None = Field(default=None, sa_type=Moment)
    # What the person noted when finishing or rescheduling; a sales task done as "converted" says so here.
    outcome: str = ""


class Operator(SQLModel, table=True):
    """A person who answers handed-off conversations in the console."""

    __tablename__ = "operators"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)
    display_name: str = ""
    password_hash: str
    role: str = OperatorRole.OPERATOR
    disabled: bool = False
    created_at: datetime = Field(sa_type=Moment)


class OperatorSession(SQLModel, table=True):
    """A signed-in console session; the cookie holds the token, the table only its hash."""

    __tablename__ = "operator_sessions"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(unique=True, index=True)
    operator_id: int = Field(foreign_key="operators.id", index=True)
    csrf_token: str
    created_at: datetime = Field(sa_type=Moment)
    expires_at: datetime = Field(sa_type=Moment)


class OperatorAction(SQLModel, table=True):
    """Who did what to which conversation, and when: the audit trail of the console."""

    __tablename__ = "operator_actions"
    id: int | None = Field(default=None, primary_key=True)
    operator: str = Field(index=True)
    action: str
    conversation_id: int | None = Field(default=None, index=True)
    detail: str = ""
    at: datetime = Field(sa_type=Moment)


class DeliveryReceiptRecord(SQLModel, table=True):
    """What a messenger reported about a message the bot sent (WhatsApp: sent, delivered, read, failed).

    Kept by chat and the messenger's id of the message; a report repeated by the messenger is stored once."""

    __tablename__ = "delivery_receipts"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", "status"),
        Index("ix_delivery_receipts_chat", "channel", "chat_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    channel: str
    chat_id: str
    external_id: str  # the messenger's id of the sent message (WhatsApp's wamid)
    status: str  # ReceiptStatus
    at: datetime = Field(sa_type=Moment)
    # The messenger's reason for a failure ("131047: more than 24 hours since the client wrote").
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class CampaignRecord(SQLModel, table=True):
    """A campaign that has been started: its definition lives in the content (`campaigns/*.yaml`)."""

    __tablename__ = "campaigns"
    id: str = Field(primary_key=True)  # the campaign's id in its YAML file
    state: str = CampaignState.RUNNING
    started_at: datetime = Field(sa_type=Moment)
    updated_at: datetime = Field(sa_type=Moment)


class CampaignRecipient(SQLModel, table=True):
    """One client a campaign writes to, and where they stand in its funnel.

    `status` only moves forward (common.names.funnel_rank); each step keeps the moment it was reached.
    A send is claimed (`attempt` > `steps_sent`, `claimed_at`) before the messenger is called and recorded
    after, so a crash between the two is seen and the message is never sent twice on channels without an
    idempotency key."""

    __tablename__ = "campaign_recipients"
    __table_args__ = (
        UniqueConstraint("campaign", "channel", "chat_id"),
        Index("ix_campaign_recipients_due", "status", "next_at"),
        Index("ix_campaign_recipients_conversation", "conversation_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    campaign: str = Field(index=True)
    client_id: int | None = Field(default=None, foreign_key="clients.id", index=True)
    channel: str
    chat_id: str
    conversation_id: int | None = None
    persona: str = "neutral"
    time_zone: str = ""
    status: str = FunnelStatus.QUEUED
    # Why a recipient was not messaged or failed ("no consent to advertising", "blocked the bot").
    reason: str = ""
    # The trigger event that queued this recipient, if any (POST /api/events).
    event_id: str = ""
    # Messages sent so far: the first one, then follow-ups; `attempt` is the one being sent now.
    steps_sent: int = 0
    attempt: int = 0
    claimed_at: datetime | None = Field(default=None, sa_type=Moment)
    # When the next message is due (the first, or a follow-up); none when nothing more is to be sent.
    next_at: datetime | None = Field(default=None, sa_type=Moment)
    # The messenger's id of the last message sent (delivery receipts find the recipient by it).
    external_id: str = ""
    queued_at: datetime = Field(sa_type=Moment)
    sent_at: datetime | None = Field(default=None, sa_type=Moment)
    delivered_at: datetime | None = Field(default=None, sa_type=Moment)
    read_at: datetime | None = Field(default=None, sa_type=Moment)
    replied_at: datetime | None = Field(default=None, sa_type=Moment)
    consented_at: datetime | None = Field(default=None, sa_type=Moment)
    converted_at: datetime | None = Field(default=None, sa_type=Moment)
    ended_at: datetime | None = Field(default=None, sa_type=Moment)  # failed, not allowed or opted out


class TriggerEvent(SQLModel, table=True):
    """An event the company's systems reported (a missed call), stored once by its id: a retry is harmless."""

    __tablename__ = "trigger_events"
    id: str = Field(primary_key=True)
    kind: str
    campaign: str = ""
    recipient_id: int | None = None
    payload_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    at: datetime = Field(sa_type=Moment)


class ClientPreference(SQLModel, table=True):
    """What a client allowed: advertising (and who recorded the consent); an opt-out of every campaign."""

    __tablename__ = "client_preferences"
    client_id: int = Field(foreign_key="clients.id", primary_key=True)
    advertising_consent_at: datetime | None = Field(default=None, sa_type=Moment)
    advertising_consent_source: str = ""
    opted_out_at: datetime | None = Field(default=None, sa_type=Moment)
    opted_out_via: str = ""  # the campaign (or "api") it came through


class MisunderstoodMessage(SQLModel, table=True):
    """A client's message the bot did not understand, or was handed over for failing to: what editors
    read to improve the content. The text is as stored (card data already redacted); pages mask the rest."""

    __tablename__ = "misunderstood"
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    reason: str  # common.names.NOT_UNDERSTOOD or a handoff reason (stuck, missed_point)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    at: datetime = Field(sa_type=Moment, index=True)
