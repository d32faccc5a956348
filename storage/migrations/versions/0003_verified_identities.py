"""verified identities

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 08:00:00

Clients were tied together by any contract number they typed; now only identities a trusted party
vouched for (a phone Telegram says is the sender's own) link them, kept in a table of their own.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "verified_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "kind", "value"),
    )
    with op.batch_alter_table("verified_identities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_verified_identities_client_id"), ["client_id"], unique=False)
        batch_op.create_index("ix_verified_identities_value", ["kind", "value"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("verified_identities", schema=None) as batch_op:
        batch_op.drop_index("ix_verified_identities_value")
        batch_op.drop_index(batch_op.f("ix_verified_identities_client_id"))
    op.drop_table("verified_identities")
