"""What the operators' console reads and writes: the queue, one conversation, accounts, sessions, outbox."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, insert, select, text, update
from sqlalchemy.engine import Connection, Row

from common.messages import Reply
from common.state import ConversationState
from storage.identity import Merged, conversations_of, merge, same_person, verified_detail_names, verified_of
from storage.locks import lock_key
from storage.models import Operator, OperatorAction, OperatorSession
from storage.repository import (
    SqlStore,
    _new_id,
    _table,
    buttons_json,
    clients,
    conversations,
    details,
    handoffs,
    identities,
    messages,
)

operators, sessions, actions = _table(Operator), _table(OperatorSession), _table(OperatorAction)
ACTIVE_HANDOFF = ("waiting", "taken")
PREVIEW_CHARS = 160


def as_utc(moment: datetime | None) -> datetime | None:
    """Datetimes come back naive from SQLite; everything is stored in UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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

    conversation: Row[Any]
    state: ConversationState
    handoff: Row[Any] | None


@dataclass(slots=True)
class ConversationView:
    """Everything an operator sees about one conversation and its client."""

    conversation: Row[Any]
    state: ConversationState
    client_name: str
    identities: list[Row[Any]]
    history: list[Row[Any]]  # messages of all the client's conversations, with their channel
    details: dict[str, str]
    handoff: Row[Any] | None
    handoffs: list[Row[Any]] = field(default_factory=list)
    # (kind, value, source) of what a trusted party vouched for; the names of details it confirms.
    verified: list[tuple[str, str, str]] = field(default_factory=list)
    verified_details: frozenset[str] = frozenset()

    @property
    def claimed(self) -> list[str]:
        """Details the client only stated: nobody checked that they are the client's own."""
        return [name for name in self.details if name not in self.verified_details]


class DeskStore:
    """Console reads and writes over the same database and write lock as the conversation store."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.engine = store.engine

    # --- operators and sessions --------------------------------------------------------------------
    def add_operator(self, name: str, password_hash: str, display_name: str, role: str, at: datetime) -> int:
        """Create an account; ValueError when the name is taken."""
        with self.store._write_lock, self.engine.begin() as connection:
            if connection.execute(select(operators.c.id).where(operators.c.name == name)).first():
                raise ValueError(f"operator {name!r} already exists")
            return _new_id(
                connection.execute(
                    insert(operators).values(
                        name=name,
                        display_name=display_name or name,
                        password_hash=password_hash,
                        role=role,
                        disabled=False,
                        created_at=at,
                    )
                )
            )

    def set_password(self, name: str, password_hash: str) -> bool:
        """Replace an operator's password hash; False when there is no such operator."""
        with self.store._write_lock, self.engine.begin() as connection:
            changed = connection.execute(
                update(operators).where(operators.c.name == name).values(password_hash=password_hash)
            )
            connection.execute(delete_sessions_of(name))
            return bool(changed.rowcount)

    def set_password_hash(self, name: str, old_hash: str, new_hash: str) -> bool:
        """A stronger hash of the same password (sessions stay); False when the hash changed meanwhile."""
        with self.store._write_lock, self.engine.begin() as connection:
            changed = connection.execute(
                update(operators)
                .where(operators.c.name == name, operators.c.password_hash == old_hash)
                .values(password_hash=new_hash)
            )
            return bool(changed.rowcount)

    def operator(self, name: str) -> Row[Any] | None:
        """An operator account by name."""
        with self.engine.connect() as connection:
            return connection.execute(select(operators).where(operators.c.name == name)).first()

    def create_session(
        self, operator_id: int, token_hash: str, csrf_token: str, at: datetime, expires_at: datetime
    ) -> None:
        """Remember a signed-in session."""
        with self.store._write_lock, self.engine.begin() as connection:
            connection.execute(sessions.delete().where(sessions.c.expires_at < at))
            connection.execute(
                insert(sessions).values(
                    token_hash=token_hash,
                    operator_id=operator_id,
                    csrf_token=csrf_token,
                    created_at=at,
                    expires_at=expires_at,
                )
            )

    def session(self, token_hash: str, now: datetime) -> tuple[Row[Any], str] | None:
        """The operator and CSRF token of a live session."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(operators, sessions.c.csrf_token, sessions.c.expires_at)
                .join(sessions, sessions.c.operator_id == operators.c.id)
                .where(sessions.c.token_hash == token_hash, operators.c.disabled.is_(False))
            ).first()
        if row is None or (as_utc(row.expires_at) or now) <= now:
            return None
        return row, str(row.csrf_token)

    def end_session(self, token_hash: str) -> None:
        """Sign out."""
        with self.store._write_lock, self.engine.begin() as connection:
            connection.execute(sessions.delete().where(sessions.c.token_hash == token_hash))

    def record(
        self, operator: str, action: str, conversation_id: int | None, detail: str, at: datetime
    ) -> None:
        """Add a line to the audit trail."""
        with self.store._write_lock, self.engine.begin() as connection:
            record_action(connection, operator, action, conversation_id, detail, at)

    def audit(self, conversation_id: int) -> list[Row[Any]]:
        """The audit trail of one conversation, oldest first."""
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(actions).where(actions.c.conversation_id == conversation_id).order_by(actions.c.id)
                )
            )

    # --- the queue --------------------------------------------------------------------------------
    def mark_breaches(self, now: datetime) -> int:
        """Record handoffs whose first human reply is overdue; how many were newly marked."""
        with self.store._write_lock, self.engine.begin() as connection:
            changed = connection.execute(
                update(handoffs)
                .where(
                    handoffs.c.status.in_(ACTIVE_HANDOFF),
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
            .where(messages.c.direction == "in")
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
            .where(handoffs.c.status.in_(ACTIVE_HANDOFF))
            .order_by(
                case((handoffs.c.priority == "high", 0), else_=1),
                case((overdue, 0), else_=1),
                handoffs.c.created_at,
                handoffs.c.id,
            )
        )
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
        items = []
        for row in rows:
            due = as_utc(row.due_at)
            first = as_utc(row.first_response_at)
            breached = row.breached_at is not None or (due is not None and first is None and due < now)
            items.append(
                QueueItem(
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
            )
        return items

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

    # --- one conversation ---------------------------------------------------------------------------
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
        state = ConversationState.from_dict(json.loads(conversation.state_json or "{}"))
        return CurrentState(conversation, state, handoff)

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
        state = ConversationState.from_dict(json.loads(conversation.state_json or "{}"))
        phones = {value for kind, value, _source in vouched if kind == "phone"}
        return ConversationView(
            conversation=conversation,
            state=state,
            client_name=client.display_name or f"#{client_id}",
            identities=client_identities,
            history=history,
            details=collected,
            handoff=conversation_handoffs[-1] if conversation_handoffs else None,
            handoffs=conversation_handoffs,
            verified=vouched,
            verified_details=verified_detail_names(collected, phones),
        )

    def merge_clients(self, keep: int, absorb: int, by: str, at: datetime, via: str = "") -> Merged:
        """An operator's decision that two clients are one person: everything of `absorb` moves to
        `keep`, recorded in the audit trail (with `via`, the tool used). LookupError for an unknown
        client or operator, ValueError for one client twice."""
        with self.store._write_lock, self.engine.begin() as connection:
            if connection.execute(select(operators.c.id).where(operators.c.name == by)).first() is None:
                raise LookupError(f"there is no operator {by!r}")
            merged = merge(connection, keep, absorb)
            note = f"client {absorb} merged into client {keep}: {merged.describe()}"
            if via:
                note += f" (via {via})"
            record_action(connection, by, "merge", None, note, at)
            # Each conversation's own trail shows the merge too: its page now shows more history.
            for conversation_id in conversations_of(connection, keep):
                record_action(connection, by, "merge", conversation_id, note, at)
        return merged

    def exists(self, conversation_id: int) -> bool:
        """Whether there is such a conversation."""
        with self.engine.connect() as connection:
            found = connection.execute(
                select(conversations.c.id).where(conversations.c.id == conversation_id)
            ).first()
        return found is not None

    def was_handed_off(self, conversation_id: int) -> bool:
        """Whether people were ever asked to answer this conversation."""
        with self.engine.connect() as connection:
            found = connection.execute(
                select(handoffs.c.id).where(handoffs.c.conversation_id == conversation_id).limit(1)
            ).first()
        return found is not None

    def apply(self, change: DeskChange) -> list[int]:
        """Store what an operator action did, atomically: state, messages to send, handoff, audit line."""
        with self.store._write_lock, self.engine.begin() as connection:
            values: dict[str, Any] = {"updated_at": change.at}
            if change.state is not None:
                values["state_json"] = json.dumps(change.state.to_dict(), ensure_ascii=False)
                values["persona"] = change.state.persona
            if change.status:
                values["status"] = change.status
            connection.execute(
                update(conversations).where(conversations.c.id == change.conversation_id).values(**values)
            )
            ids = []
            for reply in change.replies:
                ids.append(
                    _new_id(
                        connection.execute(
                            insert(messages).values(
                                conversation_id=change.conversation_id,
                                direction="out",
                                text=reply.text,
                                attachment=None,
                                external_id="",
                                buttons_json=buttons_json(reply),
                                author=change.author,
                                delivery=change.delivery,
                                at=change.at,
                            )
                        )
                    )
                )
            if change.handoff_id is not None and change.handoff:
                updated = connection.execute(
                    update(handoffs)
                    .where(handoffs.c.id == change.handoff_id, handoffs.c.status.in_(change.handoff_when))
                    .values(**change.handoff)
                )
                if not updated.rowcount:
                    # Another operator got there first; the whole action is rolled back.
                    raise DeskConflict("this conversation was changed by someone else; reload the page")
            record_action(
                connection, change.operator, change.action, change.conversation_id, change.note, change.at
            )
            return ids

    # --- delivery -----------------------------------------------------------------------------------
    def claim_pending(self, channel: str, now: datetime, limit: int = 100) -> list[Row[Any]]:
        """Messages an adapter of this channel must send, oldest first, with their chat id. Each is
        claimed ("sending") so another worker draining the same outbox skips it, and chats with messages
        being sent by someone are left alone, so one chat's messages keep their order."""
        busy_chats = (
            select(conversations.c.chat_id)
            .join(messages, messages.c.conversation_id == conversations.c.id)
            .where(messages.c.delivery == "sending", conversations.c.channel == channel)
        )
        with self.store._write_lock, self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Claims of one channel queue up: otherwise two workers could both see a chat idle and
                # claim its consecutive messages apart, sending them out of order.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key("outbox", channel)}
                )
            candidates = [
                row.id
                for row in connection.execute(
                    select(messages.c.id)
                    .join(conversations, conversations.c.id == messages.c.conversation_id)
                    .where(
                        messages.c.delivery == "pending",
                        conversations.c.channel == channel,
                        conversations.c.chat_id.not_in(busy_chats),
                    )
                    .order_by(messages.c.id)
                    .limit(limit)
                )
            ]
            if not candidates:
                return []
            claimed = {
                row.id
                for row in connection.execute(
                    update(messages)
                    .where(messages.c.id.in_(candidates), messages.c.delivery == "pending")
                    .values(delivery="sending", claimed_at=now)
                    .returning(messages.c.id)
                )
            }
            rows = connection.execute(
                select(messages, conversations.c.chat_id)
                .join(conversations, conversations.c.id == messages.c.conversation_id)
                .where(messages.c.id.in_(claimed))
                .order_by(messages.c.id)
            )
            return list(rows)

    def release_stale(self, channel: str, claimed_before: datetime) -> int:
        """Put back in the outbox what a worker claimed before `claimed_before` and never sent: it died.
        Fresher claims belong to live workers and are left to them."""
        with self.store._write_lock, self.engine.begin() as connection:
            in_channel = select(conversations.c.id).where(conversations.c.channel == channel)
            changed = connection.execute(
                update(messages)
                .where(
                    messages.c.delivery == "sending",
                    messages.c.conversation_id.in_(in_channel),
                    (messages.c.claimed_at < claimed_before) | messages.c.claimed_at.is_(None),
                )
                .values(delivery="pending", claimed_at=None)
            )
            return int(changed.rowcount or 0)

    def record_send(self, message_id: int, status: str, still_claimed: Sequence[int], now: datetime) -> None:
        """One claimed message was sent (or refused); the rest of the claim is renewed, so other workers
        see this worker alive however long the batch takes under rate limits."""
        with self.store._write_lock, self.engine.begin() as connection:
            connection.execute(update(messages).where(messages.c.id == message_id).values(delivery=status))
            if still_claimed:
                connection.execute(
                    update(messages)
                    .where(messages.c.id.in_(still_claimed), messages.c.delivery == "sending")
                    .values(claimed_at=now)
                )

    def chat_messages(self, channel: str, chat_id: str, after_id: int, limit: int = 200) -> list[Row[Any]]:
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


@dataclass(slots=True)
class DeskChange:
    """Everything one console action changes."""

    conversation_id: int
    operator: str
    action: str
    at: datetime
    state: ConversationState | None = None
    status: str = ""
    replies: Sequence[Reply] = ()
    author: str = ""
    delivery: str = "pending"
    handoff_id: int | None = None
    handoff: dict[str, Any] = field(default_factory=dict)
    # The handoff statuses the action expects to find; anything else means someone acted first.
    handoff_when: tuple[str, ...] = ACTIVE_HANDOFF
    note: str = ""


class DeskConflict(RuntimeError):
    """Two operators acted on one conversation at once; the later action did nothing."""


def record_action(
    connection: Connection, operator: str, action: str, conversation_id: int | None, detail: str, at: datetime
) -> None:
    """Add a line to the audit trail, inside the caller's transaction."""
    connection.execute(
        insert(actions).values(
            operator=operator, action=action, conversation_id=conversation_id, detail=detail, at=at
        )
    )


def delete_sessions_of(name: str) -> Any:
    """A statement ending every session of an operator (after a password change)."""
    return sessions.delete().where(
        sessions.c.operator_id.in_(select(operators.c.id).where(operators.c.name == name))
    )
