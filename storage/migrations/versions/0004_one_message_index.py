"""one index for a conversation's messages

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 10:30:00

Every message was written into two indexes led by its conversation: one for reading a conversation's
messages, one (incoming only) for finding a message again by its id in the chat. One index on
(conversation_id, external_id) serves both, so a turn writes about one index page fewer to the log.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_messages_conversation", "messages", ["conversation_id", "external_id"], unique=False)
    op.drop_index("ix_messages_external", table_name="messages")
    op.drop_index("ix_messages_conversation_id", table_name="messages")


def downgrade() -> None:
    op.create_index("ix_messages_conversation_id", "messages", ["conversation_id"], unique=False)
    op.create_index(
        "ix_messages_external",
        "messages",
        ["conversation_id", "external_id"],
        unique=False,
        sqlite_where=sa.text("direction = 'in'"),
        postgresql_where=sa.text("direction = 'in'"),
    )
    op.drop_index("ix_messages_conversation", table_name="messages")
