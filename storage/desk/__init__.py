"""The operators' desk in storage: accounts and sessions, the audit trail, the queue and conversation
views, operators' actions, the outbox and delivery receipts, each a module behind an interface of base.py.

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
    ChatHistory,
    ClientCard,
    ClientChannel,
    ConversationView,
    CurrentState,
    DeskActions,
    DeskChange,
    DeskConflict,
    DeskViews,
    Outbox,
    OutboxItem,
    QueueItem,
    ReceiptLine,
    Receipts,
    ReplyTarget,
    Verification,
)
from storage.desk.outbox import SqlOutbox
from storage.desk.receipts import SqlReceipts
from storage.desk.views import SqlViews
from storage.tables import actions, as_utc

__all__ = [
    "Accounts",
    "AuditTrail",
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
    "Outbox",
    "OutboxItem",
    "QueueItem",
    "ReceiptLine",
    "Receipts",
    "ReplyTarget",
    "Verification",
    "actions",
    "as_utc",
    "record_action",
]


class DeskStore(SqlAccounts, SqlAudit, SqlViews, SqlActions, SqlOutbox, SqlReceipts):
    """Every concern of the desk over one database and write lock: DeskStore(engine, write_lock)."""
