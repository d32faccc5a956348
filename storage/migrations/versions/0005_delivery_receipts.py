"""delivery receipts

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 09:00:00

What a messenger reports about the messages the bot sent (WhatsApp: sent, delivered, read, failed with
a reason), kept by chat and the messenger's id of the message, each report once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_receipts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("chat_id", sa.String(), nullable=False),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "external_id", "status"),
    )
    op.create_index("ix_delivery_receipts_chat", "delivery_receipts", ["channel", "chat_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_delivery_receipts_chat", table_name="delivery_receipts")
    op.drop_table("delivery_receipts")
