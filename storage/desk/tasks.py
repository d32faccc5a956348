"""The operators' tasks in SQL: the task page's list, and taking, finishing and rescheduling a task, each
change and its audit line in one transaction.

A task is due at its `due_at` (a call-back's chosen time), or when it was set up when it has none. Only an
open task, or one the acting operator took, changes: a conditional UPDATE decides, so two operators acting
at once cannot both win.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.engine import Connection

from common.names import (
    ACTIVE_TASK_STATUSES,
    CAMPAIGN_PAYLOAD_PREFIX,
    FunnelStatus,
    TaskStatus,
    steps_before,
)
from storage.desk.audit import record_action
from storage.desk.base import TaskConflict, TaskItem
from storage.desk.sql import SqlPart
from storage.tables import as_utc, clients, conversations, operators, recipients, tasks

# Audit trail actions of the task page.
TAKE, DONE, RESCHEDULE = "task_take", "task_done", "task_reschedule"
# What a finished sales task's outcome starts with when the client took the product.
CONVERTED = "converted"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _due() -> ColumnElement[Any]:
    """When a task is due: its due time, or when it was set up."""
    return func.coalesce(tasks.c.due_at, tasks.c.created_at)


def _mine_or_open(operator: str) -> ColumnElement[bool]:
    """A task the operator may change: open, or taken by them."""
    return or_(
        tasks.c.status == TaskStatus.OPEN,
        and_(tasks.c.status == TaskStatus.TAKEN, tasks.c.taken_by == operator),
    )


def outcome_text(note: str, *, converted: bool) -> str:
    """The stored outcome: the operator's note, marked "converted" first when the client took the product."""
    note = " ".join(note.split())
    if not converted:
        return note
    return f"{CONVERTED}: {note}" if note else CONVERTED


def is_converted(outcome: str) -> bool:
    """Whether a stored outcome says the client took the product."""
    return outcome == CONVERTED or outcome.startswith(f"{CONVERTED}: ")


class SqlTasks(SqlPart):
    """The task page's storage (the Tasks interface)."""

    def active_tasks(self, now: datetime, kind: str = "") -> list[TaskItem]:
        """Open and taken tasks (of one kind, when given): overdue first, then by due time.

        Ordering by the due time alone puts the overdue first: they are the ones due before now."""
        now = now.astimezone(UTC)
        query = _listing().where(tasks.c.status.in_(ACTIVE_TASK_STATUSES))
        if kind:
            query = query.where(tasks.c.kind == kind)
        with self.engine.connect() as connection:
            rows = list(connection.execute(query.order_by(_due(), tasks.c.id)))
        return [_item(row, now) for row in rows]

    def active_counts(self) -> dict[str, int]:
        """How many open and taken tasks of each kind there are."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(tasks.c.kind, func.count())
                .where(tasks.c.status.in_(ACTIVE_TASK_STATUSES))
                .group_by(tasks.c.kind)
            )
            return {str(kind): int(count) for kind, count in rows}

    def done_tasks(self, since: datetime, limit: int = 20) -> list[TaskItem]:
        """Tasks finished since a moment, the latest first."""
        query = (
            _listing()
            .where(tasks.c.status == TaskStatus.DONE, tasks.c.done_at >= since.astimezone(UTC))
            .order_by(tasks.c.done_at.desc(), tasks.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
        return [_item(row, since) for row in rows]

    def task(self, task_id: int, now: datetime) -> TaskItem | None:
        """One task; None when there is no such task."""
        with self.engine.connect() as connection:
            row = connection.execute(_listing().where(tasks.c.id == task_id)).first()
        return None if row is None else _item(row, now)

    def take_task(self, task_id: int, operator: str, at: datetime) -> TaskItem:
        """Take an open task, audited. Taking one's own task again changes nothing; LookupError for no such
        task, TaskConflict when someone else has it or it is done."""
        at = at.astimezone(UTC)
        with self.write_lock, self.engine.begin() as connection:
            changed = connection.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.status == TaskStatus.OPEN)
                .values(status=TaskStatus.TAKEN, taken_by=operator, taken_at=at)
            )
            if not changed.rowcount:
                found = _found(connection, task_id, at)
                if found.status == TaskStatus.TAKEN and found.taken_by == operator:
                    return found
                raise _conflict(found)
            found = _found(connection, task_id, at)
            record_action(connection, operator, TAKE, found.conversation_id, _describe(found), at)
        return found

    def finish_task(
        self, task_id: int, operator: str, at: datetime, outcome: str = "", *, converted: bool = False
    ) -> TaskItem:
        """Mark a task done with what came of it, audited in the same transaction. `converted` (the client
        took the product) moves the conversation's campaign recipient forward to converted: of the task's
        campaign when it came from one, else of every campaign that wrote in that conversation; a
        recipient already further (or out of the funnel) stays where it is."""
        stored = outcome_text(outcome, converted=converted)
        at = at.astimezone(UTC)
        with self.write_lock, self.engine.begin() as connection:
            changed = connection.execute(
                update(tasks)
                .where(tasks.c.id == task_id, _mine_or_open(operator))
                .values(
                    status=TaskStatus.DONE,
                    done_at=at,
                    outcome=stored,
                    taken_by=operator,
                    taken_at=func.coalesce(tasks.c.taken_at, at),
                )
            )
            found = _found(connection, task_id, at)
            if not changed.rowcount:
                raise _conflict(found)
            moved = _convert(connection, found, at) if converted else 0
            note = _describe(found) + (f": {stored}" if stored else "")
            if converted:
                note += f"; campaign recipients converted: {moved}"
            record_action(connection, operator, DONE, found.conversation_id, note, at)
        return found

    def reschedule_task(
        self, task_id: int, operator: str, at: datetime, due_at: datetime, note: str = ""
    ) -> TaskItem:
        """Move a task's due time (a note, when given, becomes its outcome so far), audited in the same
        transaction; LookupError for no such task, TaskConflict when another has it or it is done."""
        due, at = due_at.astimezone(UTC), at.astimezone(UTC)
        note = " ".join(note.split())
        values: dict[str, Any] = {"due_at": due}
        if note:
            values["outcome"] = note
        with self.write_lock, self.engine.begin() as connection:
            before = _found(connection, task_id, at)
            changed = connection.execute(
                update(tasks).where(tasks.c.id == task_id, _mine_or_open(operator)).values(**values)
            )
            if not changed.rowcount:
                raise _conflict(_found(connection, task_id, at))
            found = _found(connection, task_id, at)
            detail = f"{_describe(found)}: due {before.due_at.isoformat()} → {due.isoformat()}"
            detail += f"; {note}" if note else ""
            record_action(connection, operator, RESCHEDULE, found.conversation_id, detail, at)
        return found


def _listing() -> Any:
    """Tasks with their conversation's channel and client, and the display name of who took them."""
    return (
        select(
            tasks,
            conversations.c.channel,
            conversations.c.chat_id,
            conversations.c.client_id,
            clients.c.display_name.label("client_name"),
            operators.c.display_name.label("taken_by_name"),
        )
        .join(conversations, conversations.c.id == tasks.c.conversation_id)
        .join(clients, clients.c.id == conversations.c.client_id)
        .outerjoin(operators, operators.c.name == tasks.c.taken_by)
    )


def _found(connection: Connection, task_id: int, now: datetime) -> TaskItem:
    row = connection.execute(_listing().where(tasks.c.id == task_id)).first()
    if row is None:
        raise LookupError(f"there is no task {task_id}")
    return _item(row, now)


def _conflict(found: TaskItem) -> TaskConflict:
    return TaskConflict(found.id, found.status, found.taken_by, found.taken_by_name)


def _describe(task: TaskItem) -> str:
    return f"task {task.id} ({task.kind})"


def _convert(connection: Connection, task: TaskItem, at: datetime) -> int:
    """Move the conversation's campaign recipients forward to converted; how many moved."""
    query = update(recipients).where(
        recipients.c.conversation_id == task.conversation_id,
        recipients.c.status.in_(steps_before(FunnelStatus.CONVERTED)),
    )
    if task.scenario_id.startswith(CAMPAIGN_PAYLOAD_PREFIX):
        # A campaign's sales task names its campaign: only that campaign's funnel moves.
        query = query.where(recipients.c.campaign == task.scenario_id.removeprefix(CAMPAIGN_PAYLOAD_PREFIX))
    moved = connection.execute(
        query.values(
            status=FunnelStatus.CONVERTED,
            converted_at=func.coalesce(recipients.c.converted_at, at),
        )
    )
    return int(moved.rowcount or 0)


def _details(payload: str | None) -> dict[str, str]:
    try:
        found = orjson.loads(payload or "{}")
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(name): str(value) for name, value in found.items()}


def _item(row: Any, now: datetime) -> TaskItem:
    created = as_utc(row.created_at) or _EPOCH
    due = as_utc(row.due_at) or created
    active = row.status in ACTIVE_TASK_STATUSES
    return TaskItem(
        id=int(row.id),
        conversation_id=int(row.conversation_id),
        kind=str(row.kind),
        category=str(row.category),
        scenario_id=str(row.scenario_id),
        details=_details(row.payload_json),
        status=str(row.status),
        created_at=created,
        due_at=due,
        taken_by=str(row.taken_by or ""),
        taken_by_name=str(row.taken_by_name or row.taken_by or ""),
        taken_at=as_utc(row.taken_at),
        done_at=as_utc(row.done_at),
        outcome=str(row.outcome or ""),
        channel=str(row.channel),
        chat_id=str(row.chat_id),
        client_id=int(row.client_id),
        client_name=str(row.client_name or f"#{row.client_id}"),
        overdue=active and due < now,
    )
