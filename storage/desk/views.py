"""What operators and live pages read in SQL: the queue, one conversation, a chat's messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.engine import Connection

from common.channels import vouched_by
from common.names import ACTIVE_HANDOFF_STATUSES, Direction, Priority
from common.state import ConversationState
from storage.desk.base import (
    PREVIEW_CHARS,
    ClientCard,
    ClientChannel,
    ConversationView,
    CurrentState,
    News,
    QueueItem,
    ReplyTarget,
)
from storage.desk.receipts import receipts_in
from storage.desk.sql import SqlPart
from storage.identity import PHONE, same_person, verified_detail_names, verified_of
from storage.tables import (
    actions,
    as_utc,
    clients,
    conversations,
    details,
    handoffs,
    identities,
    messages,
    recipients,
    tasks,
    verified,
)

# The sent messages whose delivery status a conversation page shows.
RECEIPTS_SHOWN = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SqlViews(SqlPart):
    """The queue and conversation views (DeskViews) and chats' messages (ChatHistory)."""

    def mark_breaches(self, now: datetime) -> int:
        """Record handoffs whose first human reply is overdue; how many were newly marked."""
        with self.write_lock, self.engine.begin() as connection:
            changed = connection.execute(
                update(handoffs)
                .where(
                    handoffs.c.status.in_(ACTIVE_HANDOFF_STATUSES),
                    handoffs.c.first_response_at.is_(None),
                    handoffs.c.breached_at.is_(None),
                    handoffs.c.due_at < now,
                )
                .values(breached_at=handoffs.c.due_at)
            )
            return int(changed.rowcount or 0)

    def queue(self, now: datetime) -> list[QueueItem]:
        """Waiting and taken handoffs: high priority and overdue first, then the oldest."""
        last_in = (
            select(messages.c.conversation_id, func.max(messages.c.id).label("last_id"))
            .where(messages.c.direction == Direction.IN)
            .group_by(messages.c.conversation_id)
            .subquery()
        )
        overdue = and_(handoffs.c.first_response_at.is_(None), handoffs.c.due_at < now)
        query = (
            select(
                handoffs,
                conversations.c.channel,
                conversations.c.client_id,
                conversations.c.persona,
                clients.c.display_name,
                messages.c.text.label("preview"),
            )
            .join(conversations, conversations.c.id == handoffs.c.conversation_id)
            .join(clients, clients.c.id == conversations.c.client_id)
            .outerjoin(last_in, last_in.c.conversation_id == conversations.c.id)
            .outerjoin(messages, messages.c.id == last_in.c.last_id)
            .where(handoffs.c.status.in_(ACTIVE_HANDOFF_STATUSES))
            .order_by(
                case((handoffs.c.priority == Priority.HIGH, 0), else_=1),
                case((overdue, 0), else_=1),
                handoffs.c.created_at,
                handoffs.c.id,
            )
        )
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
        return [_queue_item(row, now) for row in rows]

    def change_marker(self) -> tuple[int, int, int]:
        """Grows whenever a message, handoff or console action is added: live pages poll it."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(
                    select(func.coalesce(func.max(messages.c.id), 0)).scalar_subquery(),
                    select(func.coalesce(func.max(handoffs.c.id), 0)).scalar_subquery(),
                    select(func.coalesce(func.max(actions.c.id), 0)).scalar_subquery(),
                )
            ).one()
        return int(row[0]), int(row[1]), int(row[2])

    def current(self, conversation_id: int) -> CurrentState | None:
        """What an operator action needs: the conversation row, its state and its latest handoff (none of
        the history the conversation page shows)."""
        with self.engine.connect() as connection:
            conversation = connection.execute(
                select(conversations).where(conversations.c.id == conversation_id)
            ).first()
            if conversation is None:
                return None
            handoff = connection.execute(
                select(handoffs)
                .where(handoffs.c.conversation_id == conversation_id)
                .order_by(handoffs.c.id.desc())
                .limit(1)
            ).first()
        return CurrentState(
            conversation, ConversationState.from_json(conversation.state_json or "{}"), handoff
        )

    def conversation(self, conversation_id: int) -> ConversationView | None:
        """The conversation, its client's whole history across channels, details and handoffs."""
        with self.engine.connect() as connection:
            conversation = connection.execute(
                select(conversations).where(conversations.c.id == conversation_id)
            ).first()
            if conversation is None:
                return None
            client_id = conversation.client_id
            client = connection.execute(select(clients).where(clients.c.id == client_id)).one()
            people = same_person(connection, client_id)
            vouched = verified_of(connection, people)
            client_identities = list(
                connection.execute(
                    select(identities).where(identities.c.client_id.in_(people)).order_by(identities.c.id)
                )
            )
            channels = _channels(connection, client_identities, int(client_id))
            chats = connection.execute(
                select(conversations.c.channel, conversations.c.chat_id)
                .where(conversations.c.client_id.in_(people))
                .distinct()
            )
            delivery = receipts_in(
                connection, [(str(r.channel), str(r.chat_id)) for r in chats], RECEIPTS_SHOWN
            )
            history = list(
                connection.execute(
                    select(messages, conversations.c.channel)
                    .join(conversations, conversations.c.id == messages.c.conversation_id)
                    .where(conversations.c.client_id.in_(people))
                    .order_by(messages.c.id)
                )
            )
            current = connection.execute(
                select(details.c.name, details.c.value)
                .where(details.c.client_id.in_(people), details.c.superseded.is_(False))
                .order_by(details.c.at, details.c.id)
            )
            collected = {row.name: row.value for row in current}
            conversation_handoffs = list(
                connection.execute(
                    select(handoffs)
                    .where(handoffs.c.conversation_id == conversation_id)
                    .order_by(handoffs.c.id)
                )
            )
        phones = {value for kind, value, _source in vouched if kind == PHONE}
        return ConversationView(
            conversation=conversation,
            state=ConversationState.from_json(conversation.state_json or "{}"),
            client_name=client.display_name or f"#{client_id}",
            identities=client_identities,
            history=history,
            details=collected,
            handoff=conversation_handoffs[-1] if conversation_handoffs else None,
            handoffs=conversation_handoffs,
            verified=vouched,
            verified_details=verified_detail_names(collected, phones),
            channels=channels,
            receipts=delivery,
            receipt_of={line.external_id: line for line in delivery},
        )

    def exists(self, conversation_id: int) -> bool:
        """Whether there is such a conversation."""
        with self.engine.connect() as connection:
            found = connection.execute(
                select(conversations.c.id).where(conversations.c.id == conversation_id)
            ).first()
        return found is not None

    def was_handed_off(self, conversation_id: int) -> bool:
        """Whether people were ever asked to answer this conversation, or to do something for it (a task:
        the task page links the operator who does it to the conversation)."""
        handed = select(handoffs.c.id).where(handoffs.c.conversation_id == conversation_id).exists()
        tasked = select(tasks.c.id).where(tasks.c.conversation_id == conversation_id).exists()
        with self.engine.connect() as connection:
            return bool(connection.execute(select(or_(handed, tasked))).scalar_one())

    def campaign_wrote(self, conversation_id: int) -> bool:
        """Whether a campaign wrote to the client in this conversation."""
        with self.engine.connect() as connection:
            found = connection.execute(
                select(recipients.c.id).where(recipients.c.conversation_id == conversation_id).limit(1)
            ).first()
        return found is not None

    def reply_targets(self, conversation_id: int) -> list[ReplyTarget]:
        """Every chat of the conversation's person with its latest conversation and when the client last
        wrote there, the most recent first; this conversation stands for its own chat."""
        with self.engine.connect() as connection:
            own = connection.execute(
                select(conversations.c.client_id, conversations.c.channel, conversations.c.chat_id).where(
                    conversations.c.id == conversation_id
                )
            ).first()
            if own is None:
                return []
            people = same_person(connection, int(own.client_id))
            rows = list(
                connection.execute(
                    select(
                        conversations.c.channel,
                        conversations.c.chat_id,
                        func.max(conversations.c.id).label("latest"),
                        func.max(messages.c.at).label("last_in"),
                    )
                    .select_from(conversations)
                    .outerjoin(
                        messages,
                        and_(
                            messages.c.conversation_id == conversations.c.id,
                            messages.c.direction == Direction.IN,
                        ),
                    )
                    .where(conversations.c.client_id.in_(people))
                    .group_by(conversations.c.channel, conversations.c.chat_id)
                )
            )
        targets = [
            ReplyTarget(
                conversation_id
                if (row.channel, row.chat_id) == (own.channel, own.chat_id)
                else int(row.latest),
                str(row.channel),
                str(row.chat_id),
                as_utc(row.last_in),
            )
            for row in rows
        ]
        # The latest first; a chat the client never wrote in last; ties go to this conversation's chat.
        return sorted(
            targets,
            key=lambda t: (t.last_in is not None, t.last_in or _EPOCH, t.conversation_id == conversation_id),
            reverse=True,
        )

    def client_card(self, client_id: int) -> ClientCard | None:
        """A client's name, accounts and how many conversations (no message text)."""
        with self.engine.connect() as connection:
            client = connection.execute(select(clients).where(clients.c.id == client_id)).first()
            if client is None:
                return None
            own = list(
                connection.execute(
                    select(identities).where(identities.c.client_id == client_id).order_by(identities.c.id)
                )
            )
            found = connection.execute(
                select(func.count(func.distinct(conversations.c.id)), func.max(messages.c.at))
                .select_from(conversations)
                .outerjoin(
                    messages,
                    and_(
                        messages.c.conversation_id == conversations.c.id, messages.c.direction == Direction.IN
                    ),
                )
                .where(conversations.c.client_id == client_id)
            ).one()
            channels = _channels(connection, own, client_id)
            vouched = verified_of(connection, [client_id])
        return ClientCard(
            client_id=client_id,
            name=client.display_name or f"#{client_id}",
            channels=channels,
            conversations=int(found[0] or 0),
            last_in=as_utc(found[1]),
            verified=vouched,
        )

    def chat_messages(self, channel: str, chat_id: str, after_id: int, limit: int = 200) -> list[Any]:
        """Messages of one chat (all its conversations) after a message id, for a web page's stream."""
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(messages)
                    .join(conversations, conversations.c.id == messages.c.conversation_id)
                    .where(
                        conversations.c.channel == channel,
                        conversations.c.chat_id == chat_id,
                        messages.c.id > after_id,
                    )
                    .order_by(messages.c.id)
                    .limit(limit)
                )
            )

    def last_in(self, channel: str, chat_id: str) -> datetime | None:
        """When the client last wrote in a chat (WhatsApp's reply window starts there); None: never."""
        with self.engine.connect() as connection:
            found = connection.execute(
                select(func.max(messages.c.at))
                .select_from(messages)
                .join(conversations, conversations.c.id == messages.c.conversation_id)
                .where(
                    conversations.c.channel == channel,
                    conversations.c.chat_id == chat_id,
                    messages.c.direction == Direction.IN,
                )
            ).scalar_one()
        return as_utc(found)

    def chat_news(self, channel: str, floor: int | None) -> News:
        """The newest message id, and (id, chat id) of the channel's messages above `floor` (none without
        one: the first look only learns where the messages end)."""
        with self.engine.connect() as connection:
            newest = int(connection.execute(select(func.coalesce(func.max(messages.c.id), 0))).scalar_one())
            if floor is None:
                return newest, []
            rows = connection.execute(
                select(messages.c.id, conversations.c.chat_id)
                .join(conversations, conversations.c.id == messages.c.conversation_id)
                .where(conversations.c.channel == channel, messages.c.id > floor)
                .order_by(messages.c.id)
            )
            return newest, [(int(row.id), str(row.chat_id)) for row in rows]


def _channels(connection: Connection, accounts: list[Any], client_id: int) -> list[ClientChannel]:
    """The accounts as the client card lists them: which messenger vouched for what, and which belong to
    another client tied to this one by a verified identity."""
    holders = {int(row.client_id) for row in accounts}
    sources: dict[int, list[str]] = {holder: [] for holder in holders}
    if holders:
        for row in connection.execute(
            select(verified.c.client_id, verified.c.source)
            .where(verified.c.client_id.in_(holders))
            .order_by(verified.c.id)
        ):
            sources[int(row.client_id)].append(str(row.source))
    return [
        ClientChannel(
            channel=str(row.channel),
            user_id=str(row.external_id),
            client_id=int(row.client_id),
            vouched=tuple(s for s in sources[int(row.client_id)] if vouched_by(str(row.channel), s)),
            linked=int(row.client_id) != client_id,
        )
        for row in accounts
    ]


def _queue_item(row: Any, now: datetime) -> QueueItem:
    due = as_utc(row.due_at)
    first = as_utc(row.first_response_at)
    breached = row.breached_at is not None or (due is not None and first is None and due < now)
    return QueueItem(
        handoff_id=row.id,
        conversation_id=row.conversation_id,
        channel=row.channel,
        client_id=row.client_id,
        client_name=row.display_name or f"#{row.client_id}",
        persona=row.persona,
        category=row.category,
        reason=row.reason,
        priority=row.priority,
        status=row.status,
        taken_by=row.taken_by,
        created_at=as_utc(row.created_at) or now,
        due_at=due,
        first_response_at=first,
        breached=breached,
        preview=(row.preview or "")[:PREVIEW_CHARS],
    )
