"""What operators' actions write in SQL: a console action's state, replies, handoff and audit line at once,
and two clients merged into one person."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from common.names import company_source
from storage.desk.audit import record_action
from storage.desk.base import DeskChange, DeskConflict, Verification
from storage.desk.sql import SqlPart
from storage.identity import (
    PHONE,
    Merged,
    client_of_account,
    conversations_of,
    merge,
    normal_phone,
    same_person,
    vouch,
)
from storage.tables import WriteLock, handoffs, operators
from storage.turns import TurnWriter


class SqlActions(SqlPart):
    """Operators' writes (the DeskActions interface); replies and state go through the same statements
    as a client's turn (storage/turns.py), so both paths store the same rows."""

    def __init__(self, engine: Engine, write_lock: WriteLock) -> None:
        super().__init__(engine, write_lock)
        self.writer = TurnWriter(engine)

    def apply(self, change: DeskChange) -> None:
        """Store what an operator action did, atomically: state, messages to send, handoff, audit line."""
        with self.write_lock, self.engine.begin() as connection:
            # The turn path's statements, on this transaction's own driver connection.
            cursor = connection.connection.cursor()
            moment = self.writer.moment(change.at)
            try:
                self.writer.write_state(
                    cursor, change.conversation_id, change.state, moment, status=change.status
                )
                self.writer.write_replies(
                    cursor,
                    change.conversation_id if change.reply_to is None else change.reply_to,
                    change.replies,
                    moment,
                    author=change.author,
                    delivery=change.delivery,
                )
            finally:
                cursor.close()
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

    def merge_clients(
        self, keep: int, absorb: int, by: str, at: datetime, via: str = "", reason: str = ""
    ) -> Merged:
        """An operator's decision that two clients are one person: everything of `absorb` moves to
        `keep`, recorded in the audit trail (with `via`, the tool used, and the operator's reason).
        LookupError for an unknown client or operator, ValueError for one client twice."""
        with self.write_lock, self.engine.begin() as connection:
            if connection.execute(select(operators.c.id).where(operators.c.name == by)).first() is None:
                raise LookupError(f"there is no operator {by!r}")
            merged = merge(connection, keep, absorb)
            note = f"client {absorb} merged into client {keep}: {merged.describe()}"
            if via:
                note += f" (via {via})"
            if reason:
                note += f"; reason: {reason}"
            record_action(connection, by, "merge", None, note, at)
            # Each conversation's own trail shows the merge too: its page now shows more history.
            for conversation_id in conversations_of(connection, keep):
                record_action(connection, by, "merge", conversation_id, note, at)
        return merged

    def verify_identity(
        self, channel: str, user_id: str, value: str, by: str, at: datetime, *, kind: str = PHONE
    ) -> Verification:
        """The company's own systems confirm that a phone is the account's owner's (source `company:<by>`):
        clients holding the same verified phone become one person. Audited (without the number).
        LookupError for an account that never wrote, ValueError for a value that is no phone."""
        if kind != PHONE:
            raise ValueError(f"only phones are confirmed, not {kind!r}")
        phone = normal_phone(value)
        if phone is None:
            raise ValueError(f"{value!r} is not a phone number")
        if not by.strip():
            raise ValueError("say who confirmed it")
        source = company_source(by.strip())
        with self.write_lock, self.engine.begin() as connection:
            client_id = client_of_account(connection, channel, user_id)
            if client_id is None:
                raise LookupError(f"nobody has written from {channel} account {user_id}")
            added = vouch(connection, client_id, kind, phone, source, at)
            person = tuple(same_person(connection, client_id))
            note = f"client {client_id}: {kind} confirmed by {source}"
            note += "" if added else " (already held)"
            if len(person) > 1:
                note += f"; one person with clients {', '.join(str(c) for c in person if c != client_id)}"
            record_action(connection, by, "verify", None, note, at)
            # The pages of the person's conversations show it in their own trail, as after a merge.
            for holder in person:
                for conversation_id in conversations_of(connection, holder):
                    record_action(connection, by, "verify", conversation_id, note, at)
        return Verification(client_id=client_id, added=added, person=person)
