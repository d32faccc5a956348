"""The operators' desk in storage: accounts and sessions, the audit trail, the queue and conversation
views, operators' actions, the outbox and delivery receipts, the task page and campaigns' funnels, each a
module behind an interface of base.py.

`DeskStore` is all of them over one database, for the wiring and for tools that need several at once;
code that needs one concern asks for its interface.
"""

from __future__ import annotations

from storage.desk.accounts import SqlAccounts
from storage.desk.actions import SqlActions
from storage.desk.audit import SqlAudit, record_action
from storage.desk.base import (
    Accounts,
    AuditTrail,
    CampaignFunnel,
    CampaignSummary,
    ChatHistory,
    ClientCard,
    ClientChannel,
    ConversationView,
    CurrentState,
    DeskActions,
    DeskChange,
    DeskConflict,
    DeskViews,
    Funnel,
    FunnelCounts,
    Outbox,
    OutboxItem,
    QueueItem,
    ReceiptLine,
    Receipts,
    RecipientLine,
    ReplyTarget,
    TaskConflict,
    TaskItem,
    Tasks,
    Verification,
)
from storage.desk.funnel import SqlFunnel
from storage.desk.outbox import SqlOutbox
from storage.desk.receipts import SqlReceipts
from storage.desk.tasks import SqlTasks
from storage.desk.views import SqlViews
from storage.tables import actions, as_utc

__all__ = [
    "Accounts",
    "AuditTrail",
    "CampaignFunnel",
    "CampaignSummary",
    "ChatHistory",
    "ClientCard",
    "ClientChannel",
    "ConversationView",
    "CurrentState",
    "DeskActions",
    "DeskChange",
    "DeskConflict",
    "DeskStore",
    "DeskViews",
    "Funnel",
    "FunnelCounts",
    "Outbox",
    "OutboxItem",
    "QueueItem",
    "ReceiptLine",
    "Receipts",
    "RecipientLine",
    "ReplyTarget",
    "TaskConflict",
    "TaskItem",
    "Tasks",
    "Verification",
    "actions",
    "as_utc",
    "record_action",
]


class DeskStore(SqlAccounts, SqlAudit, SqlViews, SqlActions, SqlOutbox, SqlReceipts, SqlTasks, SqlFunnel):
    """Every concern of the desk over one database and write lock: DeskStore(engine, write_lock)."""
