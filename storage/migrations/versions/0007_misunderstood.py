"""misunderstood messages

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 16:00:00

Client messages the bot did not understand, or handed over for failing to understand: the editors'
misunderstood inbox reads them.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "misunderstood",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("misunderstood", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_misunderstood_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_misunderstood_at"), ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("misunderstood", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_misunderstood_at"))
        batch_op.drop_index(batch_op.f("ix_misunderstood_conversation_id"))
    op.drop_table("misunderstood")
