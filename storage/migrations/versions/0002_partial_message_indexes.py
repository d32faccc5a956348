"""partial message indexes

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 19:00:00

Every message is written once; the indexes on `handled` and `delivery` held every row although queries
only ever look for the few unhandled or outbox ones, and the incoming-id index held outgoing rows too.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PARTIAL = {
    "ix_messages_external": (["conversation_id", "external_id"], "direction = 'in'", "direction = 'in'"),
    "ix_messages_unhandled": (["conversation_id"], "handled IS 0", "handled IS false"),
    "ix_messages_pending": (["conversation_id"], "delivery = 'pending'", "delivery = 'pending'"),
    "ix_messages_sending": (["conversation_id"], "delivery = 'sending'", "delivery = 'sending'"),
}


def upgrade() -> None:
    op.drop_index("ix_messages_external", table_name="messages")
    op.drop_index("ix_messages_handled", table_name="messages")
    op.drop_index("ix_messages_delivery", table_name="messages")
    for name, (columns, sqlite_where, postgresql_where) in _PARTIAL.items():
        op.create_index(
            name,
            "messages",
            columns,
            unique=False,
            sqlite_where=sa.text(sqlite_where),
            postgresql_where=sa.text(postgresql_where),
        )


def downgrade() -> None:
    for name in _PARTIAL:
        op.drop_index(name, table_name="messages")
    op.create_index("ix_messages_delivery", "messages", ["delivery"], unique=False)
    op.create_index("ix_messages_handled", "messages", ["handled"], unique=False)
    op.create_index("ix_messages_external", "messages", ["conversation_id", "direction", "external_id"])
