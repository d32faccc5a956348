"""The store the conversation service writes through: one transaction per step, nothing lost."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from dialogs.events import DetailCollected, Event, HandoffRequested, TaskCreated
from dialogs.messages import IncomingMessage, Reply
from dialogs.state import ConversationState
from storage.models import (
    ChannelIdentity,
    Client,
    Conversation,
    DetailRecord,
    HandoffRecord,
    MessageRecord,
    TaskRecord,
)

OPEN_STATUSES = ("bot", "handed_off")


def _require_id(row_id: int | None) -> int:
    if row_id is None:
        raise RuntimeError("row was not flushed: it has no id")
    return row_id


class SqlStore:
    """Conversations in an SQL database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _client_for(self, session: Session, channel: str, user_id: str, at: datetime) -> int:
        identity = session.exec(
            select(ChannelIdentity).where(
                ChannelIdentity.channel == channel, ChannelIdentity.external_id == user_id
            )
        ).first()
        if identity:
            return identity.client_id
        client = Client(created_at=at)
        session.add(client)
        session.flush()
        client_id = _require_id(client.id)
        session.add(ChannelIdentity(client_id=client_id, channel=channel, external_id=user_id))
        return client_id

    def receive(self, message: IncomingMessage) -> tuple[int, ConversationState] | None:
        """Store an incoming message in its open conversation; None when this message was seen before."""
        with Session(self.engine) as session:
            conversation = session.exec(
                select(Conversation)
                .where(
                    Conversation.channel == message.channel,
                    Conversation.chat_id == message.chat_id,
                    Conversation.status.in_(OPEN_STATUSES),  # type: ignore[attr-defined]
                )
                .order_by(Conversation.id.desc())  # type: ignore[union-attr]
            ).first()
            if conversation is None:
                client_id = self._client_for(session, message.channel, message.user_id, message.at)
                conversation = Conversation(
                    client_id=client_id,
                    channel=message.channel,
                    chat_id=message.chat_id,
                    created_at=message.at,
                    updated_at=message.at,
                )
                session.add(conversation)
                session.flush()
            conversation_id = _require_id(conversation.id)
            if (
                message.message_id
                and session.exec(
                    select(MessageRecord.id).where(
                        MessageRecord.conversation_id == conversation_id,
                        MessageRecord.direction == "in",
                        MessageRecord.external_id == message.message_id,
                    )
                ).first()
            ):
                return None
            session.add(
                MessageRecord(
                    conversation_id=conversation_id,
                    direction="in",
                    text=message.text or message.contact_phone or message.button_payload or "",
                    attachment=message.attachment.value if message.attachment else None,
                    external_id=message.message_id,
                    at=message.at,
                )
            )
            state = ConversationState.from_dict(json.loads(conversation.state_json or "{}"))
            session.commit()
            return conversation_id, state

    def save_turn(
        self,
        conversation_id: int,
        state: ConversationState,
        replies: Sequence[Reply],
        events: Sequence[Event],
        at: datetime,
    ) -> None:
        """Store the state after a turn, the bot's replies and what the turn changed, atomically."""
        with Session(self.engine) as session:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None:
                raise LookupError(f"conversation {conversation_id} does not exist")
            conversation.state_json = json.dumps(state.to_dict(), ensure_ascii=False)
            conversation.persona = state.persona
            conversation.updated_at = at
            if state.handed_off:
                conversation.status = "handed_off"
            session.add(conversation)
            for reply in replies:
                buttons = [{"text": b.text, "payload": b.payload} for b in reply.buttons]
                session.add(
                    MessageRecord(
                        conversation_id=conversation_id,
                        direction="out",
                        text=reply.text,
                        buttons_json=json.dumps(buttons, ensure_ascii=False),
                        at=at,
                    )
                )
            for event in events:
                self._store_event(session, conversation, event, at)
            session.commit()

    @staticmethod
    def _store_event(session: Session, conversation: Conversation, event: Event, at: datetime) -> None:
        conversation_id = _require_id(conversation.id)
        if isinstance(event, DetailCollected):
            if event.previous is not None:
                for old in session.exec(
                    select(DetailRecord).where(
                        DetailRecord.conversation_id == conversation_id,
                        DetailRecord.name == event.name,
                        DetailRecord.superseded == False,  # noqa: E712 (SQL expression)
                    )
                ):
                    old.superseded = True
                    session.add(old)
            session.add(
                DetailRecord(
                    conversation_id=conversation_id,
                    client_id=conversation.client_id,
                    name=event.name,
                    value=event.value,
                    raw=event.raw,
                    at=at,
                )
            )
        elif isinstance(event, HandoffRequested):
            session.add(HandoffRecord(conversation_id=conversation_id, created_at=at, **asdict(event)))
        elif isinstance(event, TaskCreated):
            session.add(
                TaskRecord(
                    conversation_id=conversation_id,
                    kind=event.kind,
                    category=event.category,
                    scenario_id=event.scenario_id,
                    payload_json=json.dumps(event.details, ensure_ascii=False),
                    created_at=at,
                )
            )

    def messages(self, conversation_id: int) -> list[MessageRecord]:
        """Every message of a conversation in order."""
        with Session(self.engine) as session:
            return list(
                session.exec(
                    select(MessageRecord)
                    .where(MessageRecord.conversation_id == conversation_id)
                    .order_by(MessageRecord.id)  # type: ignore[arg-type]
                )
            )

    def details(self, conversation_id: int) -> dict[str, str]:
        """The current value of each detail collected in a conversation."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(DetailRecord).where(
                    DetailRecord.conversation_id == conversation_id,
                    DetailRecord.superseded == False,  # noqa: E712
                )
            )
            return {row.name: row.value for row in rows}
