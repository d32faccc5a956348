"""The operators' task page: call-backs at the client's chosen time, follow-ups after a low rating, moving
and connection requests, campaign replies waiting for sales; take, done, reschedule.

Every signed-in operator sees and works the tasks. Actions check the session (`Who`), then the form's CSRF
token, before anything is read; each change and its audit line are stored together (storage/desk/tasks.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from common.channels import title
from common.names import TaskKind, TaskStatus
from storage.desk.base import TaskConflict, TaskItem, Tasks
from storage.desk.tasks import CONVERTED, is_converted
from web.auth import SignedIn, same
from web.console import MAX_ID, STALE_FORM, Console, PrivateRoute, Shared, Who

TASK_TITLES: dict[str, str] = {
    TaskKind.CALLBACK: "Обратный звонок",
    TaskKind.FOLLOW_UP: "Связаться после низкой оценки",
    TaskKind.SALES: "Ответ на рассылку: продажи",
    "tariff_change": "Смена тарифа",
    "connection_request": "Подключение",
    "moving": "Переезд",
    "statement": "Выписка или справка",
}
NO_TASK = "Такой задачи нет."
CONVERTED_TITLE = "продукт оформлен"
MAX_NOTE_CHARS = 300
# Finished tasks the page still shows, so the operator sees what just happened to them.
DONE_SHOWN_FOR = timedelta(days=1)
_WEEKDAYS = ("пн", "вт", "ср", "чт", "пт", "сб", "вс")
# A stored call-back time (dialogs/details/when.py): "2026-11-24 10:00-12:00", "2026-11-24", "14:00-16:00".
_CHOSEN = re.compile(r"^(?:(\d{4}-\d{2}-\d{2}))?\s*(\d{2}:\d{2})?(-)?(\d{2}:\d{2})?$")
_KIND = re.compile(r"^[a-z0-9_]{1,40}$")


def task_store(request: Request) -> Tasks:
    """Dependency: the task storage the app keeps in `app.state.tasks`."""
    store: Tasks = request.app.state.tasks
    return store


TaskStore = Annotated[Tasks, Depends(task_store)]
router = APIRouter(prefix="/console", route_class=PrivateRoute)


class BadInput(ValueError):
    """A form value the page cannot use, with a message for the operator."""


def chosen_time(value: str) -> str:
    """A client's chosen call-back time as operators read it: «пн 07.12.2026, 10:00–12:00»."""
    text = value.strip()
    if text == "any":
        return "в любое время"
    found = _CHOSEN.match(text)
    if not text or found is None:
        return value
    day, start, dash, end = found.groups()
    parts = []
    if day:
        moment = datetime.fromisoformat(day)
        parts.append(f"{_WEEKDAYS[moment.weekday()]} {moment:%d.%m.%Y}")
    if start and end:
        parts.append(f"{start}–{end}")
    elif start:
        parts.append(f"после {start}" if dash else start)
    elif end:
        parts.append(f"до {end}")
    return ", ".join(parts) or value


def outcome_title(outcome: str) -> str:
    """A finished task's outcome as operators read it: a sale reads «продукт оформлен»."""
    if is_converted(outcome):
        note = outcome.removeprefix(CONVERTED).removeprefix(": ")
        return f"{CONVERTED_TITLE}: {note}" if note else CONVERTED_TITLE
    return outcome


def task_title(task: TaskItem, console: Console) -> str:
    """A task's kind in Russian; a scenario's own kind reads as the scenario's title."""
    if task.kind in TASK_TITLES:
        return TASK_TITLES[task.kind]
    scenario = console.desk.engine.live.get().scenarios.scenario(task.scenario_id)
    return scenario.title if scenario is not None else task.kind


@router.get("/tasks", response_class=HTMLResponse)
async def tasks_page(
    request: Request, who: Who, console: Shared, tasks: TaskStore, kind: str = ""
) -> Response:
    """The task page: the active tasks (of one kind, when chosen), overdue first, and those just done."""
    context = await run_in_threadpool(_context, console, tasks, _kind(kind))
    return console.pages.render(request, "tasks.html", {**context, "who": who})


@router.post("/tasks/{task_id}/take")
async def take(
    request: Request,
    who: Who,
    console: Shared,
    tasks: TaskStore,
    task_id: int,
    csrf: Annotated[str, Form(max_length=100)],
    kind: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Take a task: it is yours until done or rescheduled."""
    return await _act(
        request, who, console, tasks, task_id, csrf, kind, lambda at: tasks.take_task(task_id, who.name, at)
    )


@router.post("/tasks/{task_id}/done")
async def done(
    request: Request,
    who: Who,
    console: Shared,
    tasks: TaskStore,
    task_id: int,
    csrf: Annotated[str, Form(max_length=100)],
    outcome: Annotated[str, Form(max_length=MAX_NOTE_CHARS * 2)] = "",
    converted: Annotated[str, Form(max_length=10)] = "",
    kind: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Finish a task with what came of it; a sales task «продукт оформлен» moves the campaign's funnel."""

    def finish(at: datetime) -> TaskItem:
        note = _note(outcome)
        found = tasks.task(task_id, at)
        if found is None:
            raise LookupError(task_id)
        # Only a sales task can end in a product: a forged flag on another task changes no funnel.
        sold = bool(converted) and found.kind == TaskKind.SALES
        return tasks.finish_task(task_id, who.name, at, note, converted=sold)

    return await _act(request, who, console, tasks, task_id, csrf, kind, finish)


@router.post("/tasks/{task_id}/reschedule")
async def reschedule(
    request: Request,
    who: Who,
    console: Shared,
    tasks: TaskStore,
    task_id: int,
    csrf: Annotated[str, Form(max_length=100)],
    due: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=MAX_NOTE_CHARS * 2)] = "",
    kind: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """Move a task to another time (typed in the company's time zone)."""

    def move(at: datetime) -> TaskItem:
        moment = _local_moment(due, console)
        if moment < at - timedelta(minutes=1):
            raise BadInput("Это время уже прошло: выберите время впереди.")
        return tasks.reschedule_task(task_id, who.name, at, moment, _note(note))

    return await _act(request, who, console, tasks, task_id, csrf, kind, move)


# --- what the routes share ------------------------------------------------------------------------------
async def _act(
    request: Request,
    who: SignedIn,
    console: Console,
    tasks: Tasks,
    task_id: int,
    csrf: str,
    kind: str,
    action: Callable[[datetime], TaskItem],
) -> Response:
    """CSRF first, then the action; a task someone else got to shows the page again with who."""
    if not same(csrf, who.csrf):
        return console.pages.render(request, "error.html", {"message": STALE_FORM}, 403)
    chosen = _kind(kind)
    if not 1 <= task_id <= MAX_ID:
        return console.pages.render(request, "error.html", {"message": NO_TASK}, 404)
    try:
        await run_in_threadpool(action, datetime.now(UTC))
    except LookupError:
        return console.pages.render(request, "error.html", {"message": NO_TASK}, 404)
    except (TaskConflict, BadInput) as exc:
        status, message = (409, _conflict(exc)) if isinstance(exc, TaskConflict) else (422, str(exc))
        context = await run_in_threadpool(_context, console, tasks, chosen)
        context.update(who=who, error=message, error_task=task_id)
        return console.pages.render(request, "tasks.html", context, status)
    query = f"?{urlencode({'kind': chosen})}" if chosen else ""
    return RedirectResponse(f"/console/tasks{query}", status_code=303)


def _conflict(exc: TaskConflict) -> str:
    """Why the action did nothing, politely."""
    who = exc.taken_by_name or exc.taken_by or "другой специалист"
    if exc.status == TaskStatus.DONE:
        return f"Эту задачу уже выполнил(а) {who}. Список обновлён."
    return f"Эту задачу уже взял(а) {who}. Список обновлён: выберите другую."


def _context(console: Console, tasks: Tasks, kind: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    content = console.desk.engine.live.get()
    active = tasks.active_tasks(now, kind)
    finished = tasks.done_tasks(now - DONE_SHOWN_FOR)
    counts = tasks.active_counts()
    zone = console.pages.zone
    return {
        "tasks": active,
        "finished": finished,
        "kind": kind,
        "counts": counts,
        "total": sum(counts.values()),
        "titles": {task.id: task_title(task, console) for task in [*active, *finished]},
        "kind_titles": {name: TASK_TITLES.get(name, name) for name in counts},
        "categories": {name: c.title for name, c in content.scenarios.categories.items()},
        "details_titles": {
            "campaign": "рассылка",
            **{name: spec.title for name, spec in content.scenarios.details.items()},
        },
        "local_due": {task.id: task.due_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M") for task in active},
        "chosen_time": chosen_time,
        "task_details": task_details,
        "channel_title": title,
        "outcome_title": outcome_title,
        "TaskKind": TaskKind,
        "TaskStatus": TaskStatus,
        "now": now,
    }


def _kind(value: str) -> str:
    """A kind filter in shape, or none."""
    return value if _KIND.match(value) else ""


def _note(value: str) -> str:
    note = " ".join(value.split())
    if len(note) > MAX_NOTE_CHARS:
        raise BadInput(f"Заметка длиннее {MAX_NOTE_CHARS} символов: сократите её.")
    return note


def _local_moment(value: str, console: Console) -> datetime:
    """A datetime-local field's value ("2026-11-24T10:00") in the company's time zone, as an aware moment."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput("Укажите новую дату и время.") from None
    if moment.tzinfo is not None:
        raise BadInput("Укажите новую дату и время.")
    return moment.replace(tzinfo=console.pages.zone)


def task_details(task: TaskItem) -> list[tuple[str, str]]:
    """(name, value) of what the bot collected for a task, in a stable order (the chosen time first)."""
    return sorted(task.details.items(), key=lambda item: (item[0] != "callback_time", item[0] != "phone"))
