"""What operators' actions write in SQL: a console action's state, replies, handoff and audit line at once,
and two clients merged into one person."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from storage.desk.audit import record_action
from storage.desk.base import DeskChange, DeskConflict
from storage.desk.sql import SqlPart
from storage.identity import Merged, conversations_of, merge
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
                    change.conversation_id,
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

    def merge_clients(self, keep: int, absorb: int, by: str, at: datetime, via: str = "") -> Merged:
        """An operator's decision that two clients are one person: everything of `absorb` moves to
        `keep`, recorded in the audit trail (with `via`, the tool used). LookupError for an unknown
        client or operator, ValueError for one client twice."""
        with self.write_lock, self.engine.begin() as connection:
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
