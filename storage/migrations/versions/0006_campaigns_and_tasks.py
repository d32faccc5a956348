"""campaigns and tasks people see

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 16:00:00

Outbound campaigns (started campaigns, their recipients' funnel, trigger events stored once, clients'
consent and opt-out), and what the operators' task page needs of a task: when it is due, who took it,
when it was done and how it ended.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_at", Moment, nullable=True))
        batch_op.add_column(sa.Column("taken_by", sa.String(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("taken_at", Moment, nullable=True))
        batch_op.add_column(sa.Column("done_at", Moment, nullable=True))
        batch_op.add_column(sa.Column("outcome", sa.String(), nullable=False, server_default=""))
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("started_at", Moment, nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "campaign_recipients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign", sa.String(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("chat_id", sa.String(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("persona", sa.String(), nullable=False),
        sa.Column("time_zone", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("steps_sent", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("claimed_at", Moment, nullable=True),
        sa.Column("next_at", Moment, nullable=True),
        sa.Column("external_id", sa.String(), nullable=False),
        sa.Column("queued_at", Moment, nullable=False),
        sa.Column("sent_at", Moment, nullable=True),
        sa.Column("delivered_at", Moment, nullable=True),
        sa.Column("read_at", Moment, nullable=True),
        sa.Column("replied_at", Moment, nullable=True),
        sa.Column("consented_at", Moment, nullable=True),
        sa.Column("converted_at", Moment, nullable=True),
        sa.Column("ended_at", Moment, nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign", "channel", "chat_id"),
    )
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.create_index("ix_campaign_recipients_due", ["status", "next_at"], unique=False)
        batch_op.create_index("ix_campaign_recipients_conversation", ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_recipients_campaign"), ["campaign"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_recipients_client_id"), ["client_id"], unique=False)
    op.create_table(
        "trigger_events",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("campaign", sa.String(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=True),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "client_preferences",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("advertising_consent_at", Moment, nullable=True),
        sa.Column("advertising_consent_source", sa.String(), nullable=False),
        sa.Column("opted_out_at", Moment, nullable=True),
        sa.Column("opted_out_via", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"]),
        sa.PrimaryKeyConstraint("client_id"),
    )


def downgrade() -> None:
    op.drop_table("client_preferences")
    op.drop_table("trigger_events")
    with op.batch_alter_table("campaign_recipients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaign_recipients_client_id"))
        batch_op.drop_index(batch_op.f("ix_campaign_recipients_campaign"))
        batch_op.drop_index("ix_campaign_recipients_conversation")
        batch_op.drop_index("ix_campaign_recipients_due")
    op.drop_table("campaign_recipients")
    op.drop_table("campaigns")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("outcome")
        batch_op.drop_column("done_at")
        batch_op.drop_column("taken_at")
        batch_op.drop_column("taken_by")
        batch_op.drop_column("due_at")
