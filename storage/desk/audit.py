"""The console's audit trail in SQL: who did what to which conversation, and when."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from storage.desk.sql import SqlPart
from storage.tables import actions


class SqlAudit(SqlPart):
    """The audit trail (the AuditTrail interface)."""

    def record(
        self, operator: str, action: str, conversation_id: int | None, detail: str, at: datetime
    ) -> None:
        """Add a line to the audit trail."""
        with self.write_lock, self.engine.begin() as connection:
            record_action(connection, operator, action, conversation_id, detail, at)

    def audit(self, conversation_id: int) -> list[Any]:
        """The audit trail of one conversation, oldest first."""
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    select(actions).where(actions.c.conversation_id == conversation_id).order_by(actions.c.id)
                )
            )


def record_action(
    connection: Connection, operator: str, action: str, conversation_id: int | None, detail: str, at: datetime
) -> None:
    """Add a line to the audit trail, inside the caller's transaction."""
    connection.execute(
        insert(actions).values(
            operator=operator, action=action, conversation_id=conversation_id, detail=detail, at=at
        )
    )
