"""Delivery receipts in SQL: what messengers report about the messages the bot sent (WhatsApp's statuses)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from common.messages import DeliveryReceipt
from common.names import Delivery, Direction, FunnelStatus, ReceiptStatus, steps_before
from storage.desk.base import ReceiptLine
from storage.desk.sql import SqlPart
from storage.tables import as_utc, conversations, messages, receipts, recipients

# A later report may arrive first (read before delivered): the furthest step a message reached counts.
_RANK = {ReceiptStatus.SENT: 0, ReceiptStatus.DELIVERED: 1, ReceiptStatus.READ: 2, ReceiptStatus.FAILED: 3}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Each sent message has at most one report of each status.
_ROWS_PER_MESSAGE = len(_RANK)


class SqlReceipts(SqlPart):
    """Receipts (the Receipts interface)."""

    def record_receipts(self, reports: Sequence[DeliveryReceipt]) -> None:
        """Store the reports, each (channel, message id, status) once however often the messenger sends
        it; a message the outbox knows by that id and the messenger failed to deliver is marked failed."""
        rows = {
            (r.channel, r.external_id, r.status): {
                "channel": r.channel,
                "chat_id": r.chat_id,
                "external_id": r.external_id,
                "status": r.status,
                "at": r.at,
                "error": r.error,
            }
            for r in reports
            if r.external_id
        }
        if not rows:
            return
        with self.write_lock, self.engine.begin() as connection:
            connection.execute(_insert_new(connection), list(rows.values()))
            failed = [r for r in reports if r.status == ReceiptStatus.FAILED and r.external_id]
            for report in failed:
                _mark_failed(connection, report)
            for report in reports:
                if report.external_id:
                    _campaign_progress(connection, report)

    def receipts_of(self, chats: Sequence[tuple[str, str]], limit: int = 20) -> list[ReceiptLine]:
        """The latest status of each sent message in these (channel, chat id) chats, newest first."""
        if not chats:
            return []
        with self.engine.connect() as connection:
            return receipts_in(connection, chats, limit)


def receipts_in(connection: Connection, chats: Sequence[tuple[str, str]], limit: int) -> list[ReceiptLine]:
    """`receipts_of` inside the caller's connection."""
    if not chats:
        return []
    where = or_(*(and_(receipts.c.channel == ch, receipts.c.chat_id == chat) for ch, chat in chats))
    rows = list(
        connection.execute(
            select(receipts)
            .where(where)
            .order_by(receipts.c.at.desc(), receipts.c.id.desc())
            .limit(limit * _ROWS_PER_MESSAGE)
        )
    )
    return latest_statuses(rows)[:limit]


def latest_statuses(rows: Sequence[Any]) -> list[ReceiptLine]:
    """Per message, the report of the furthest step it reached; messages first seen last come first."""
    best: dict[tuple[str, str], tuple[int, datetime, Any]] = {}
    first_seen: dict[tuple[str, str], datetime] = {}
    for row in rows:
        key = (str(row.channel), str(row.external_id))
        at = as_utc(row.at) or EPOCH
        first_seen[key] = min(at, first_seen.get(key, at))
        ranked = (_RANK.get(row.status, -1), at, row)
        held = best.get(key)
        if held is None or ranked[:2] > held[:2]:
            best[key] = ranked
    ordered = sorted(best, key=lambda key: first_seen[key], reverse=True)
    return [_line(best[key][2]) for key in ordered]


def _line(row: Any) -> ReceiptLine:
    at = as_utc(row.at)
    assert at is not None
    return ReceiptLine(
        str(row.channel), str(row.chat_id), str(row.external_id), str(row.status), at, row.error
    )


def _insert_new(connection: Connection) -> Any:
    """An INSERT that skips a report already stored (the unique channel, message id and status)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(receipts).on_conflict_do_nothing(
        index_elements=[receipts.c.channel, receipts.c.external_id, receipts.c.status]
    )


def _mark_failed(connection: Connection, report: DeliveryReceipt) -> None:
    chat = select(conversations.c.id).where(
        conversations.c.channel == report.channel, conversations.c.chat_id == report.chat_id
    )
    connection.execute(
        update(messages)
        .where(
            messages.c.conversation_id.in_(chat),
            messages.c.external_id == report.external_id,
            messages.c.direction == Direction.OUT,
        )
        .values(delivery=Delivery.FAILED)
    )


# A campaign's recipient reaches these funnel steps when the messenger reports them for its message.
_FUNNEL_OF_RECEIPT = {
    ReceiptStatus.DELIVERED: (FunnelStatus.DELIVERED, "delivered_at"),
    ReceiptStatus.READ: (FunnelStatus.READ, "read_at"),
}


def _campaign_progress(connection: Connection, report: DeliveryReceipt) -> None:
    """A report about a campaign's message moves its recipient forward (never back): delivered, read; a
    failure fails a recipient who had got no further than sent."""
    mine = and_(recipients.c.channel == report.channel, recipients.c.external_id == report.external_id)
    if report.status == ReceiptStatus.FAILED:
        connection.execute(
            update(recipients)
            .where(mine, recipients.c.status == FunnelStatus.SENT)
            .values(
                status=FunnelStatus.FAILED,
                reason=(report.error or "не доставлено")[:200],
                ended_at=report.at,
                next_at=None,
            )
        )
        return
    step = _FUNNEL_OF_RECEIPT.get(ReceiptStatus(report.status))
    if step is None:
        return
    status, column = step
    connection.execute(
        update(recipients)
        .where(mine, recipients.c.status.in_(steps_before(status)))
        .values(status=status, **{column: report.at})
    )
