"""The per-message write path in plain SQL: what every client message costs, kept to a few statements.

SQLAlchemy Core builds, caches and compiles a statement on every call (measured: about 70 us of Python per
statement); this path sends fixed SQL text straight to the driver, written once per dialect, and converts
values the way SQLAlchemy's column types would, so rows read back through the models are the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.engine import Engine
from sqlalchemy.pool import PoolProxiedConnection

from common.channels import facts
from common.events import (
    CampaignAnswered,
    DetailCollected,
    Event,
    HandoffRequested,
    NotUnderstood,
    RatingGiven,
    TaskCreated,
)
from common.messages import IncomingMessage, Reply
from common.names import (
    OPEN_CONVERSATION_STATUSES,
    Author,
    CampaignAction,
    ConversationStatus,
    Delivery,
    Direction,
    FunnelStatus,
    HandoffStatus,
    TaskKind,
    TaskStatus,
    contact_source,
    steps_before,
)
from common.state import ConversationState
from storage.identity import PHONE, normal_phone
from storage.models import Moment

OPEN_STATUSES = OPEN_CONVERSATION_STATUSES
# Below this rating the responsible person follows the conversation up.
FOLLOW_UP_BELOW = 4


def _before(status: FunnelStatus) -> str:
    """The funnel steps earlier than `status`, as an SQL list: a recipient moves only forward."""
    return ", ".join(f"'{step}'" for step in steps_before(status))


# The recipients of a campaign in the conversation's chat (a later conversation of the chat too).
_RECIPIENT_OF_CHAT = (
    "campaign = ? AND channel = (SELECT channel FROM conversations WHERE id = ?) "
    "AND chat_id = (SELECT chat_id FROM conversations WHERE id = ?)"
)

_OPEN = ", ".join(f"'{status}'" for status in OPEN_STATUSES)
_STATEMENTS = {
    # The chat's open conversation and, in the same look, a stored copy of the arriving message (its
    # id in the chat; NULL matches nothing). The literal direction lets the partial index on incoming
    # messages serve the join (see models).
    "open_conversation": "SELECT c.id, c.client_id, c.state_json, m.id, m.handled FROM conversations c "
    f"LEFT JOIN messages m ON m.conversation_id = c.id AND m.direction = '{Direction.IN}' "
    "AND m.external_id = ? "
    f"WHERE c.channel = ? AND c.chat_id = ? AND c.status IN ({_OPEN}) ORDER BY c.id DESC LIMIT 1",
    # Whether a chat has incoming messages waiting for a worker's turn, in any of its conversations (the
    # predicate is the partial index's own, written per dialect below).
    "waiting": "SELECT EXISTS (SELECT 1 FROM messages p JOIN conversations pc ON pc.id = p.conversation_id "
    f"WHERE pc.channel = ? AND pc.chat_id = ? AND p.direction = '{Direction.IN}' AND p.handled IS false)",
    "client_of": "SELECT client_id FROM conversations WHERE id = ?",
    "identity": "SELECT client_id FROM channel_identities WHERE channel = ? AND external_id = ?",
    "new_client": "INSERT INTO clients (created_at, display_name) VALUES (?, '') RETURNING id",
    "new_identity": "INSERT INTO channel_identities (client_id, channel, external_id) VALUES (?, ?, ?)",
    "new_conversation": "INSERT INTO conversations "
    "(client_id, channel, chat_id, status, persona, state_json, created_at, updated_at) "
    f"VALUES (?, ?, ?, '{ConversationStatus.BOT}', 'neutral', '{{}}', ?, ?) RETURNING id",
    "incoming": "INSERT INTO messages (conversation_id, direction, text, attachment, external_id, "
    "buttons_json, author, delivery, handled, raw_json, at) "
    f"VALUES (?, '{Direction.IN}', ?, ?, ?, '[]', '{Author.CLIENT}', '{Delivery.IMMEDIATE}', ?, ?, ?)",
    "reply": "INSERT INTO messages (conversation_id, direction, text, attachment, external_id, "
    "buttons_json, author, delivery, handled, raw_json, at) "
    f"VALUES (?, '{Direction.OUT}', ?, NULL, '', ?, ?, ?, ?, '', ?)",
    "state": "UPDATE conversations SET state_json = ?, persona = ?, updated_at = ? WHERE id = ?",
    "state_and_status": "UPDATE conversations SET state_json = ?, persona = ?, updated_at = ?, status = ? "
    "WHERE id = ?",
    "handled": "UPDATE messages SET handled = ? WHERE id = ?",
    "supersede": "UPDATE details SET superseded = ? "
    "WHERE conversation_id = ? AND name = ? AND superseded = ?",
    "detail": "INSERT INTO details (conversation_id, client_id, name, value, raw, superseded, at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)",
    "handoff": "INSERT INTO handoffs (conversation_id, reason, category, priority, note, status, created_at, "
    f"due_at, taken_by, follow_up) VALUES (?, ?, ?, ?, ?, '{HandoffStatus.WAITING}', ?, ?, '', ?)",
    "unrated": "SELECT id, category FROM handoffs WHERE conversation_id = ? "
    f"AND status = '{HandoffStatus.CLOSED}' AND rating IS NULL "
    "ORDER BY id DESC LIMIT 1",
    "rating": "UPDATE handoffs SET rating = ?, follow_up = ? WHERE id = ?",
    # A phone the messenger vouched for; sharing it again changes nothing.
    "verified": "INSERT INTO verified_identities (client_id, kind, value, source, at) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    "task": "INSERT INTO tasks (conversation_id, kind, category, scenario_id, payload_json, status, "
    f"created_at, due_at, taken_by, outcome) VALUES (?, ?, ?, ?, ?, '{TaskStatus.OPEN}', ?, ?, '', '')",
    "misunderstood": "INSERT INTO misunderstood (conversation_id, reason, text, at) VALUES (?, ?, ?, ?)",
    # Any answer to a campaign: the step "replied" (forward only), and no more follow-ups.
    "campaign_replied": "UPDATE campaign_recipients SET replied_at = COALESCE(replied_at, ?), "
    "next_at = NULL, "
    f"status = CASE WHEN status IN ({_before(FunnelStatus.REPLIED)}) THEN '{FunnelStatus.REPLIED}' "
    f"ELSE status END WHERE {_RECIPIENT_OF_CHAT}",
    "campaign_consented": "UPDATE campaign_recipients SET consented_at = COALESCE(consented_at, ?), "
    f"status = CASE WHEN status IN ({_before(FunnelStatus.CONSENTED)}) THEN '{FunnelStatus.CONSENTED}' "
    f"ELSE status END WHERE {_RECIPIENT_OF_CHAT}",
    # «СТОП»: the client leaves every campaign at once, this one and any other still writing to them.
    "opt_out": "INSERT INTO client_preferences (client_id, advertising_consent_source, opted_out_at, "
    "opted_out_via) VALUES (?, '', ?, ?) ON CONFLICT (client_id) DO UPDATE SET "
    "opted_out_at = excluded.opted_out_at, opted_out_via = excluded.opted_out_via",
    "opted_out": f"UPDATE campaign_recipients SET status = '{FunnelStatus.OPTED_OUT}', ended_at = ?, "
    "next_at = NULL, reason = ? WHERE "
    f"(client_id = ? OR ({_RECIPIENT_OF_CHAT})) AND status IN ({_before(FunnelStatus.REPLIED)}, "
    f"'{FunnelStatus.REPLIED}', '{FunnelStatus.CONSENTED}')",
}


def buttons_json(reply: Reply) -> str:
    """A reply's buttons as stored with the message."""
    if not reply.buttons:
        return "[]"
    return orjson.dumps([{"text": b.text, "payload": b.payload} for b in reply.buttons]).decode()


class Opened:
    """A conversation as a turn found it: its id, its client (None until needed), its stored state, and
    the arriving message's stored copy as (row id, handled) if it was stored before."""

    __slots__ = ("client_id", "conversation_id", "seen", "state_json")

    def __init__(
        self,
        conversation_id: int,
        client_id: int | None,
        state_json: str,
        seen: tuple[int, bool] | None = None,
    ) -> None:
        self.conversation_id, self.client_id, self.state_json = conversation_id, client_id, state_json
        self.seen = seen


class TurnWriter:
    """Runs the statements of one turn inside one transaction of the store's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        placeholder = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        # SQLite hands out the new row's id itself (lastrowid), and so needs no RETURNING (3.35+ only).
        self.sql = {
            name: (text.removesuffix(" RETURNING id") if self.sqlite else text).replace("?", placeholder)
            for name, text in _STATEMENTS.items()
        }
        if self.sqlite:
            self.sql["waiting"] = self.sql["waiting"].replace("handled IS false", "handled IS 0")
        self._open_for_turn_sql = _open_for_turn_sql(self.sql)
        process = Moment.dialect_impl(engine.dialect).bind_processor(engine.dialect)
        self._moment: Callable[[datetime], Any] = process if process is not None else _same
        # SQLite: one connection for every write of this process, used under the store's write lock
        # (a pool checkout and its reset cost more than the statements of a short turn).
        self._sqlite_connection: PoolProxiedConnection | None = None

    def moment(self, at: datetime | None) -> Any:
        """A time as the column type stores it (SQLite: text in UTC; PostgreSQL: timestamptz)."""
        if at is None:
            return None
        if at.tzinfo is not None and at.utcoffset():
            at = at.astimezone(UTC)
        if self.sqlite:
            # The text SQLAlchemy's SQLite DateTime writes ("2026-11-23 09:00:00.000000"), without its
            # per-call formatting machinery.
            return at.replace(tzinfo=None).isoformat(" ", "microseconds")
        return self._moment(at)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """A DB-API cursor inside a transaction, committed when the block ends and rolled back on error.
        SQLite callers hold the store's write lock."""
        if self.sqlite:
            if self._sqlite_connection is None:
                self._sqlite_connection = self.engine.raw_connection()
            raw = self._sqlite_connection
        else:
            raw = self.engine.raw_connection()
        dbapi = raw.driver_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        try:
            if self.sqlite:
                # Take the write lock up front, as the engine's own transactions do (storage/database.py).
                cursor.execute("BEGIN IMMEDIATE")
            yield cursor
            dbapi.commit()
        except BaseException as exc:
            self._abandon(raw, dbapi, cursor, exc)
            raise
        finally:
            with contextlib.suppress(Exception):
                cursor.close()
            if not self.sqlite:
                raw.close()

    @contextlib.contextmanager
    def pipelined_transaction(self) -> Iterator[Any]:
        """PostgreSQL: `transaction()` in psycopg's pipeline mode. Statements are sent without waiting
        for their results: BEGIN goes with the first ones and COMMIT with the last, and only fetch*()
        waits (one round trip for everything sent before it). A write's rowcount is not known here."""
        raw = self.engine.raw_connection()
        dbapi = raw.driver_connection
        assert dbapi is not None
        cursor = dbapi.cursor()
        # psycopg waits for the BEGIN it sends itself; a BEGIN written out travels in the pipeline.
        dbapi.autocommit = True
        try:
            with dbapi.pipeline():
                cursor.execute("BEGIN")
                yield cursor
                cursor.execute("COMMIT")
        except BaseException as exc:
            self._abandon(raw, dbapi, cursor, exc)
            raise
        finally:
            with contextlib.suppress(Exception):
                cursor.close()
            with contextlib.suppress(Exception):
                dbapi.autocommit = False
            raw.close()

    def _abandon(self, raw: PoolProxiedConnection, dbapi: Any, cursor: Any, exc: BaseException) -> None:
        """Roll back; a connection the server dropped is thrown away so the next turn gets a live one."""
        try:
            dbapi.rollback()
        except Exception:
            self._invalidate(raw)
            return
        driver_error = self.engine.dialect.loaded_dbapi.Error
        if isinstance(exc, driver_error) and self.engine.dialect.is_disconnect(exc, dbapi, cursor):
            self._invalidate(raw)

    def _invalidate(self, raw: PoolProxiedConnection) -> None:
        with contextlib.suppress(Exception):
            raw.invalidate()
        if raw is self._sqlite_connection:
            self._sqlite_connection = None

    def _insert(self, cursor: Any, name: str, values: Sequence[Any]) -> int:
        """Run an INSERT and return the new row's id."""
        cursor.execute(self.sql[name], values)
        if self.sqlite:
            return int(cursor.lastrowid)
        return int(cursor.fetchone()[0])

    # --- reading and storing what arrived -----------------------------------------------------------
    def open_conversation(self, cursor: Any, message: IncomingMessage) -> Opened:
        """The chat's open conversation, created (with its client) on the first message; `seen` tells
        whether this message (same message id in the chat) was stored before."""
        row = cursor.execute(
            self.sql["open_conversation"], (message.message_id or None, message.channel, message.chat_id)
        ).fetchone()
        if row is not None:
            seen = None if row[3] is None else (int(row[3]), bool(row[4]))
            return Opened(int(row[0]), int(row[1]), str(row[2]), seen)
        at = self.moment(message.at)
        found = cursor.execute(self.sql["identity"], (message.channel, message.user_id)).fetchone()
        if found is not None:
            client_id = int(found[0])
        else:
            client_id = self._insert(cursor, "new_client", (at,))
            cursor.execute(self.sql["new_identity"], (client_id, message.channel, message.user_id))
        conversation_id = self._insert(
            cursor, "new_conversation", (client_id, message.channel, message.chat_id, at, at)
        )
        if message.sender_phone:
            self._verify_sender(cursor, client_id, message)
        return Opened(conversation_id, client_id, "{}")

    def open_for_turn(self, cursor: Any, message: IncomingMessage) -> tuple[Opened, bool]:
        """`open_conversation`, and whether the chat has messages waiting for their turn. PostgreSQL: one
        round trip for both, and the conversation's row locked until the commit (the pipelined writes
        cannot check that it is still there)."""
        if self.sqlite:
            waiting = cursor.execute(self.sql["waiting"], (message.channel, message.chat_id)).fetchone()
            return self.open_conversation(cursor, message), bool(waiting[0])
        row = cursor.execute(
            self._open_for_turn_sql,
            (message.channel, message.chat_id, message.message_id or None, message.channel, message.chat_id),
        ).fetchone()
        if row[0] is None:
            # No open conversation: a new chat's first message (the rare path of a few more round trips).
            return self.open_conversation(cursor, message), bool(row[5])
        seen = None if row[3] is None else (int(row[3]), bool(row[4]))
        return Opened(int(row[0]), int(row[1]), str(row[2]), seen), bool(row[5])

    def insert_incoming(
        self, cursor: Any, conversation_id: int, message: IncomingMessage, *, handled: bool
    ) -> None:
        """Store a client's message; `handled` False leaves it for a worker's turn."""
        if message.contact_verified and message.contact_phone:
            self._verify_phone(cursor, conversation_id, message)
        # Its id is not needed: in a pipelined transaction a RETURNING read would cost a round trip.
        cursor.execute(
            self.sql["incoming"],
            (
                conversation_id,
                message.text or message.contact_phone or message.button_payload or "",
                message.attachment.value if message.attachment else None,
                message.message_id,
                handled,
                message.to_json(),
                self.moment(message.at),
            ),
        )

    def _verify_phone(self, cursor: Any, conversation_id: int, message: IncomingMessage) -> None:
        """Remember the phone the messenger vouched is the sender's own (rare: only shared contacts)."""
        phone = normal_phone(message.contact_phone or "")
        if phone is None:
            return
        client_id = int(cursor.execute(self.sql["client_of"], (conversation_id,)).fetchone()[0])
        cursor.execute(
            self.sql["verified"],
            (client_id, PHONE, phone, contact_source(message.channel), self.moment(message.at)),
        )

    def _verify_sender(self, cursor: Any, client_id: int, message: IncomingMessage) -> None:
        """Remember the number the messenger says is the sender's own account (WhatsApp's wa_id). It comes
        with every message, but is written only when a conversation starts: no write per message, and no
        result is read, so a pipelined transaction waits for nothing more."""
        if not facts(message.channel).vouches_sender_phone:
            # Only a messenger that vouches for it: any other channel's number is a claim.
            return
        phone = normal_phone(message.sender_phone or "")
        if phone is not None:
            cursor.execute(
                self.sql["verified"], (client_id, PHONE, phone, message.channel, self.moment(message.at))
            )

    # --- storing what the turn decided --------------------------------------------------------------
    def write_turn(
        self,
        cursor: Any,
        opened: Opened,
        state: ConversationState,
        replies: Sequence[Reply],
        events: Sequence[Event],
        at: datetime,
        *,
        outbox: bool = False,
    ) -> None:
        """The state after a turn, the bot's replies and what the turn changed."""
        moment = self.moment(at)
        status = ""
        if state.handed_off:
            status = (
                ConversationStatus.WITH_OPERATOR if state.with_operator else ConversationStatus.HANDED_OFF
            )
        self.write_state(cursor, opened.conversation_id, state, moment, status=status)
        delivery = Delivery.PENDING if outbox else Delivery.IMMEDIATE
        self.write_replies(cursor, opened.conversation_id, replies, moment, delivery=delivery)
        for event in events:
            self._store_event(cursor, opened, event, moment)

    # --- the writes a turn and an operator's action share -------------------------------------------
    def write_state(
        self, cursor: Any, conversation_id: int, state: ConversationState, moment: Any, *, status: str = ""
    ) -> None:
        """A conversation's state (and its status, when given); `moment` as from `moment()`."""
        if status:
            cursor.execute(
                self.sql["state_and_status"],
                (state.to_json(), state.persona, moment, status, conversation_id),
            )
        else:
            cursor.execute(self.sql["state"], (state.to_json(), state.persona, moment, conversation_id))
        if cursor.rowcount == 0:
            raise LookupError(f"conversation {conversation_id} does not exist")

    def write_replies(
        self,
        cursor: Any,
        conversation_id: int,
        replies: Sequence[Reply],
        moment: Any,
        *,
        author: str = Author.BOT,
        delivery: str = Delivery.IMMEDIATE,
    ) -> None:
        """Messages to the client; `delivery` pending leaves them in the outbox for an adapter."""
        if replies:
            cursor.executemany(
                self.sql["reply"],
                [
                    (conversation_id, reply.text, buttons_json(reply), author, delivery, True, moment)
                    for reply in replies
                ],
            )

    def mark_handled(self, cursor: Any, message_id: int) -> None:
        """A stored message's turn is saved: no worker runs it again."""
        cursor.execute(self.sql["handled"], (True, message_id))

    def _store_event(self, cursor: Any, opened: Opened, event: Event, moment: Any) -> None:
        conversation_id = opened.conversation_id
        if isinstance(event, DetailCollected):
            if opened.client_id is None:
                opened.client_id = int(
                    cursor.execute(self.sql["client_of"], (conversation_id,)).fetchone()[0]
                )
            if event.previous is not None:
                cursor.execute(self.sql["supersede"], (True, conversation_id, event.name, False))
            cursor.execute(
                self.sql["detail"],
                (conversation_id, opened.client_id, event.name, event.value, event.raw, False, moment),
            )
        elif isinstance(event, HandoffRequested):
            due = datetime.fromisoformat(event.due_at) if event.due_at else None
            cursor.execute(
                self.sql["handoff"],
                (
                    conversation_id,
                    event.reason,
                    event.category,
                    event.priority,
                    event.note,
                    moment,
                    self.moment(due),
                    False,
                ),
            )
        elif isinstance(event, RatingGiven):
            latest = cursor.execute(self.sql["unrated"], (conversation_id,)).fetchone()
            if latest is not None:
                cursor.execute(self.sql["rating"], (event.score, event.score < FOLLOW_UP_BELOW, latest[0]))
                if event.score < FOLLOW_UP_BELOW:
                    # Seed 003: below 4, someone calls the client back; it is work on the task page.
                    payload = orjson.dumps({"rating": str(event.score)}).decode()
                    values = (conversation_id, TaskKind.FOLLOW_UP, latest[1], "", payload, moment, moment)
                    cursor.execute(self.sql["task"], values)
        elif isinstance(event, TaskCreated):
            due = self.moment(datetime.fromisoformat(event.due_at)) if event.due_at else moment
            cursor.execute(
                self.sql["task"],
                (
                    conversation_id,
                    event.kind,
                    event.category,
                    event.scenario_id,
                    orjson.dumps(event.details).decode(),
                    moment,
                    due,
                ),
            )
        elif isinstance(event, CampaignAnswered):
            self._campaign_answered(cursor, opened, event, moment)
        elif isinstance(event, NotUnderstood):
            cursor.execute(self.sql["misunderstood"], (conversation_id, event.reason, event.text, moment))

    def _campaign_answered(self, cursor: Any, opened: Opened, event: CampaignAnswered, moment: Any) -> None:
        """A client's answer to a campaign moves their place in its funnel (forward only); «СТОП» takes
        them off every campaign."""
        conversation_id = opened.conversation_id
        chat = (event.campaign, conversation_id, conversation_id)
        cursor.execute(self.sql["campaign_replied"], (moment, *chat))
        if event.action in (CampaignAction.CALLBACK, CampaignAction.INTERESTED):
            cursor.execute(self.sql["campaign_consented"], (moment, *chat))
        elif event.action == CampaignAction.STOP:
            if opened.client_id is None:
                opened.client_id = int(
                    cursor.execute(self.sql["client_of"], (conversation_id,)).fetchone()[0]
                )
            cursor.execute(self.sql["opt_out"], (opened.client_id, moment, event.campaign))
            reason = "отписался"
            cursor.execute(self.sql["opted_out"], (moment, reason, opened.client_id, *chat))


def _open_for_turn_sql(sql: dict[str, str]) -> str:
    """PostgreSQL: one row always, the open conversation's columns (NULLs when there is none, its row
    locked) and whether the chat has messages waiting."""
    waiting = sql["waiting"].removeprefix("SELECT ")
    conversation = sql["open_conversation"].replace(
        "SELECT c.id, c.client_id, c.state_json, m.id, m.handled",
        "SELECT c.id, c.client_id, c.state_json, m.id AS message_id, m.handled",
    )
    return (
        f"SELECT o.id, o.client_id, o.state_json, o.message_id, o.handled, {waiting} "
        f"FROM (SELECT 1) AS one LEFT JOIN ({conversation} FOR UPDATE OF c) AS o ON true"
    )


def _same(value: Any) -> Any:
    return value
