"""analytics indexes

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 18:00:00

The analytics dashboard counts conversations, messages and handoffs by time ranges: one index on each of
their moments. Conversations' also holds the channel and the id, and messages' the direction and the
conversation, so a day's counts, of a channel too, are read from the indexes alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_conversations_started", "conversations", ["created_at", "channel", "id"], unique=False
    )
    op.create_index("ix_handoffs_created_at", "handoffs", ["created_at"], unique=False)
    op.create_index("ix_messages_at", "messages", ["at", "direction", "conversation_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_messages_at", table_name="messages")
    op.drop_index("ix_handoffs_created_at", table_name="handoffs")
    op.drop_index("ix_conversations_started", table_name="conversations")
