"""The operators' console: sign-in, the queue, one conversation, and the actions on it.

Routes are plain module-level endpoints on `router`; what they share (the desk, its storage, the guard,
the pages) is the app's `Console`, kept in `app.state.console`. Every route that shows or changes
anything asks for the signed-in operator first (`Who`), and every conversation route then makes the one
permission check (`_refusal`) before it reads or renders anything.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from common.channels import title, window_hours
from common.names import (
    ConversationStatus,
    Direction,
    HandoffReason,
    OperatorRole,
    ReceiptStatus,
    urgent_reason,
)
from dialogs.content import Content
from operators.desk import (
    MAX_REASON_CHARS,
    DeskError,
    OperatorDesk,
    ReplyRoute,
    may_merge,
    may_see_campaigns,
)
from storage.desk.base import AuditTrail, DeskConflict, DeskViews
from storage.desk.outbox import stored_buttons
from storage.privacy import ClientData
from web.auth import (
    DEVICE_COOKIE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    Guard,
    SignedIn,
    same,
)
from web.live import ChangeHub
from web.render import Pages

PERSONA_TITLES = {
    "neutral": "нейтральный",
    "unsure": "неуверенный",
    "talker": "собеседник",
    "positive": "позитивчик",
    "aggressor": "агрессор",
    "sysadmin": "сисадмин",
}
REASON_TITLES: dict[str, str] = {
    HandoffReason.CLIENT_ASKED: "клиент попросил человека",
    HandoffReason.ACCEPTED_OFFER: "согласился на предложение позвать человека",
    HandoffReason.NOT_SOLVED: "решение бота не помогло",
    HandoffReason.STUCK: "разговор с ботом не двигается",
    HandoffReason.ESCALATION: "гнев или угроза: срочно",
    HandoffReason.SCENARIO: "запрос, который решают люди",
    HandoffReason.MISSED_POINT: "клиент говорит, что бот его не понимает",
    HandoffReason.TRIED_BASICS: "клиент уже сделал первые шаги",
    HandoffReason.CAMPAIGN_INTEREST: "заинтересовался предложением из рассылки",
}
STATUS_TITLES: dict[str, str] = {
    ConversationStatus.BOT: "с ботом",
    ConversationStatus.HANDED_OFF: "ждёт человека",
    ConversationStatus.WITH_OPERATOR: "у специалиста",
    ConversationStatus.CLOSED: "закрыт",
}


def reason_titles(content: Content) -> dict[str, str]:
    """How each handoff reason reads to operators: the fixed ones, and the company's urgent situations."""
    urgent = {
        urgent_reason(name): f"срочная ситуация: {spec.title or name}"
        for name, spec in content.lexicons.urgent.situations.items()
    }
    return {**REASON_TITLES, **urgent}


RECEIPT_TITLES: dict[str, str] = {
    ReceiptStatus.SENT: "отправлено",
    ReceiptStatus.DELIVERED: "доставлено",
    ReceiptStatus.READ: "прочитано",
    ReceiptStatus.FAILED: "не доставлено",
}
# The reply form warns when the channel's free-form window closes sooner than this.
WINDOW_WARNING = timedelta(hours=1)
MERGE_REFUSED = "Объединять клиентов могут руководители групп и администраторы."


STREAM_POLL_S = 1.0
STREAM_KEEPALIVE_S = 15.0
# A browser's device token (web/throttle.py) outlives sessions: it exempts the owner from guess delays.
DEVICE_LIFETIME_S = 365 * 24 * 3600
# The largest id the databases store (64-bit signed); a larger one in a URL names nothing.
MAX_ID = 2**63 - 1
STALE_FORM = "Форма устарела: обновите страницу."
NO_CONVERSATION = "Такого разговора нет."


@dataclass(frozen=True, slots=True)
class Console:
    """What the console's routes share; one per app, in `app.state.console`."""

    desk: OperatorDesk
    views: DeskViews
    audit: AuditTrail
    client_data: ClientData
    guard: Guard
    pages: Pages
    hub: ChangeHub


def _now() -> datetime:
    return datetime.now(UTC)


def signed_in(request: Request) -> SignedIn:
    """Dependency: the signed-in operator (SignInRequired otherwise); the app keeps its Guard in state."""
    guard: Guard = request.app.state.guard
    return guard.current(request)


async def shared(request: Request) -> Console:
    """Dependency: the app's console objects."""
    console: Console = request.app.state.console
    return console


# Module level: FastAPI resolves postponed annotations in the module's namespace.
Who = Annotated[SignedIn, Depends(signed_in)]
Shared = Annotated[Console, Depends(shared)]


class PrivateRoute(APIRoute):
    """Every console answer, pages, refusals and errors alike, is kept out of browser and proxy caches."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def private(request: Request) -> Response:
            response = await handler(request)
            response.headers["Cache-Control"] = "no-store"
            return response

        return private


router = APIRouter(prefix="/console", route_class=PrivateRoute)


# --- signing in and out -------------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, console: Shared, next: str = "/console") -> Response:
    """The sign-in form, with a fresh CSRF token in a strict cookie."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or _new_token()
    response = console.pages.render(request, "login.html", {"csrf": token, "next": _safe_next(next)})
    return _strict_cookie(response, LOGIN_CSRF_COOKIE, token, console.guard)


@router.post("/login")
async def login(
    request: Request,
    console: Shared,
    name: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=100)],
    next: Annotated[str, Form(max_length=300)] = "/console",
) -> Response:
    """Check the password (throttled); a session cookie and a redirect on success."""
    pages, guard = console.pages, console.guard
    if not same(csrf, request.cookies.get(LOGIN_CSRF_COOKIE, "")):
        context = {
            "csrf": _new_token(),
            "next": _safe_next(next),
            "error": "Форма устарела, войдите ещё раз.",
        }
        refused = pages.render(request, "login.html", context, 403)
        return _strict_cookie(refused, LOGIN_CSRF_COOKIE, context["csrf"], guard)
    address = request.client.host if request.client else "unknown"
    device = request.cookies.get(DEVICE_COOKIE, "")
    outcome = await guard.sign_in(name.strip(), password, address, _valid_token(device))
    if outcome.token is None:
        context = {"csrf": csrf, "next": _safe_next(next), "name": name}
        if outcome.wait_s > 0:
            context["error"] = (
                f"Слишком много попыток входа. Попробуйте ещё раз через {_wait(outcome.wait_s)}."
            )
            refused = pages.render(request, "login.html", context, 429)
            refused.headers["Retry-After"] = str(math.ceil(outcome.wait_s))
            return refused
        context["error"] = "Неверное имя или пароль."
        return pages.render(request, "login.html", context, 401)
    response = RedirectResponse(_safe_next(next), status_code=303)
    lifetime = int(SESSION_LIFETIME.total_seconds())
    _strict_cookie(response, SESSION_COOKIE, outcome.token, guard, path="/", max_age=lifetime)
    _strict_cookie(
        response, DEVICE_COOKIE, outcome.device, guard, path="/console/login", max_age=DEVICE_LIFETIME_S
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(
    request: Request, who: Who, console: Shared, csrf: Annotated[str, Form(max_length=100)]
) -> Response:
    """End the session."""
    # A forged or stale form changes nothing: the browser keeps its cookie only while the session lives,
    # so the two never disagree.
    if not same(csrf, who.csrf):
        return console.pages.render(request, "error.html", {"message": STALE_FORM}, 403)
    await run_in_threadpool(console.guard.sign_out, who)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- the queue ------------------------------------------------------------------------------------------
@router.get("", response_class=HTMLResponse)
async def queue(request: Request, who: Who, console: Shared) -> Response:
    """The queue page."""
    context = await run_in_threadpool(_queue_context, console, who)
    return console.pages.render(request, "queue.html", {**context, "who": who})


@router.get("/queue/rows", response_class=HTMLResponse)
async def queue_rows(request: Request, who: Who, console: Shared) -> Response:
    """The queue's rows, for the live page to swap in."""
    context = await run_in_threadpool(_queue_context, console, who)
    return console.pages.render(request, "queue_rows.html", {**context, "who": who})


@router.get("/stream")
async def stream(request: Request, who: Who, console: Shared) -> Response:
    """Server-sent "change" events for the live pages."""

    async def marker() -> Any:
        return await run_in_threadpool(console.views.change_marker)

    return StreamingResponse(
        _changes(request, console.hub, marker),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# --- clients --------------------------------------------------------------------------------------------
@router.get("/clients/{client_id}/export")
async def export_client(request: Request, who: Who, console: Shared, client_id: int) -> Response:
    """Everything stored about a client, as a JSON download: admins only, and audited."""
    if who.role != OperatorRole.ADMIN:
        await run_in_threadpool(
            console.audit.record, who.name, "refused", None, f"export client {client_id}", _now()
        )
        message = "Выгрузка данных клиента — только для администраторов."
        return console.pages.render(request, "error.html", {"message": message}, 403)
    data = None
    if 1 <= client_id <= MAX_ID:
        data = await run_in_threadpool(console.client_data.export, client_id, who.name, _now())
    if data is None:
        return console.pages.render(request, "error.html", {"message": "Такого клиента нет."}, 404)
    return JSONResponse(
        data,
        headers={
            "Content-Disposition": f'attachment; filename="client-{client_id}.json"',
            "Cache-Control": "no-store",
        },
    )


# --- one conversation -----------------------------------------------------------------------------------
@router.get("/conversations/{conversation_id}", response_class=HTMLResponse)
async def conversation(request: Request, who: Who, console: Shared, conversation_id: int) -> Response:
    """The conversation page; opening it is recorded in the audit trail."""
    return await _conversation_page(request, who, console, conversation_id, "conversation.html", record=True)


@router.get("/conversations/{conversation_id}/live", response_class=HTMLResponse)
async def conversation_live(request: Request, who: Who, console: Shared, conversation_id: int) -> Response:
    """The conversation page's changing part, for the live page to swap in (not audited again)."""
    return await _conversation_page(
        request, who, console, conversation_id, "conversation_live.html", record=False
    )


@router.post("/conversations/{conversation_id}/take")
async def take(
    request: Request, who: Who, console: Shared, conversation_id: int, csrf: Annotated[str, Form()]
) -> Response:
    """Take a waiting conversation."""
    return await _act(
        request, who, console, conversation_id, csrf, "take",
        lambda: console.desk.take(conversation_id, who.name, who.display_name),
    )  # fmt: skip


@router.post("/conversations/{conversation_id}/reply")
async def reply(
    request: Request,
    who: Who,
    console: Shared,
    conversation_id: int,
    csrf: Annotated[str, Form()],
    text: Annotated[str, Form(max_length=20000)],
) -> Response:
    """Send the client what the operator wrote."""
    return await _act(
        request, who, console, conversation_id, csrf, "reply",
        lambda: console.desk.reply(conversation_id, who.name, who.display_name, text),
    )  # fmt: skip


@router.post("/conversations/{conversation_id}/hand-back")
async def hand_back(
    request: Request, who: Who, console: Shared, conversation_id: int, csrf: Annotated[str, Form()]
) -> Response:
    """Give the conversation back to the bot."""
    return await _act(
        request, who, console, conversation_id, csrf, "hand_back",
        lambda: console.desk.hand_back(conversation_id, who.name),
    )  # fmt: skip


@router.post("/conversations/{conversation_id}/close")
async def close(
    request: Request, who: Who, console: Shared, conversation_id: int, csrf: Annotated[str, Form()]
) -> Response:
    """Close the conversation; the client is asked to rate the help."""
    return await _act(
        request, who, console, conversation_id, csrf, "close",
        lambda: console.desk.close(conversation_id, who.name),
    )  # fmt: skip


@router.post("/conversations/{conversation_id}/transfer")
async def transfer(
    request: Request,
    who: Who,
    console: Shared,
    conversation_id: int,
    csrf: Annotated[str, Form()],
    category: Annotated[str, Form(max_length=100)],
) -> Response:
    """Move the conversation to another category's queue."""
    return await _act(
        request, who, console, conversation_id, csrf, "transfer",
        lambda: console.desk.transfer(conversation_id, who.name, category),
    )  # fmt: skip


@router.post("/conversations/{conversation_id}/merge")
async def merge(
    request: Request,
    who: Who,
    console: Shared,
    conversation_id: int,
    csrf: Annotated[str, Form()],
    other: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=MAX_REASON_CHARS * 2)] = "",
    keep: Annotated[str, Form(max_length=40)] = "",
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Merge another client into this conversation's client: team leads and admins, after a confirmation
    page that shows both clients; the reason goes into the audit trail."""
    refusal = await _refusal(request, who, console, conversation_id, "merge")
    if refusal is not None:
        return refusal
    if not same(csrf, who.csrf):
        return console.pages.render(request, "error.html", {"message": STALE_FORM}, 403)
    if not may_merge(who.role):
        await run_in_threadpool(console.audit.record, who.name, "refused", conversation_id, "merge", _now())
        return console.pages.render(request, "error.html", {"message": MERGE_REFUSED}, 403)
    context = await run_in_threadpool(_conversation_context, console, who, conversation_id, record=False)
    context["who"] = who
    own = int(context["view"].conversation.client_id)
    reason = " ".join(reason.split())
    absorb = _client_number(other)
    problem = ""
    if absorb is None:
        problem = "Укажите номер другого клиента: он есть на странице его разговора."
    elif absorb == own:
        problem = "Это тот же клиент."
    elif not reason:
        problem = "Напишите коротко, почему это один человек: это попадёт в журнал."
    elif len(reason) > MAX_REASON_CHARS:
        problem = f"Причина длиннее {MAX_REASON_CHARS} символов: сократите её."
    card = None
    if not problem and absorb is not None:
        card = await run_in_threadpool(console.views.client_card, absorb)
        if card is None:
            problem = f"Клиента с номером {absorb} нет."
    if problem or card is None or absorb is None:
        context.update(error=problem, merge_other=other, merge_reason=reason)
        return console.pages.render(request, "conversation.html", context, 422)
    if confirm != "yes":
        this = await run_in_threadpool(console.views.client_card, own)
        context.update(this=this, other=card, reason=reason)
        return console.pages.render(request, "merge_confirm.html", context)
    if keep != str(own):
        # The conversation's client changed since the confirmation was shown (merged meanwhile).
        return console.pages.render(request, "error.html", {"message": STALE_FORM}, 409)
    try:
        await run_in_threadpool(console.desk.merge_clients, own, absorb, who.name, reason)
    except DeskError as exc:
        context = await run_in_threadpool(_conversation_context, console, who, conversation_id, record=False)
        context.update(who=who, error=str(exc))
        return console.pages.render(request, "conversation.html", context, 409)
    return RedirectResponse(f"/console/conversations/{conversation_id}", status_code=303)


# --- what the routes share ------------------------------------------------------------------------------
def _access(console: Console, who: SignedIn, conversation_id: int, action: str) -> int:
    """200, 403 or 404: operators see conversations handed to people (or with a task for people), team
    leads also those a campaign wrote in (its funnel's drill-down), admins any; refusals are audited."""
    if not 1 <= conversation_id <= MAX_ID or not console.views.exists(conversation_id):
        return 404
    if who.role == OperatorRole.ADMIN or console.views.was_handed_off(conversation_id):
        return 200
    if may_see_campaigns(who.role) and console.views.campaign_wrote(conversation_id):
        return 200
    console.audit.record(who.name, "refused", conversation_id, action, _now())
    return 403


async def _refusal(
    request: Request, who: SignedIn, console: Console, conversation_id: int, action: str
) -> Response | None:
    """The one permission check every conversation route makes before it reads or renders anything."""
    status = await run_in_threadpool(_access, console, who, conversation_id, action)
    if status == 404:
        return console.pages.render(request, "error.html", {"message": NO_CONVERSATION}, 404)
    if status == 403:
        message = "Этот разговор не передавали людям."
        return console.pages.render(request, "error.html", {"message": message}, 403)
    return None


async def _conversation_page(
    request: Request, who: SignedIn, console: Console, conversation_id: int, template: str, *, record: bool
) -> Response:
    refusal = await _refusal(request, who, console, conversation_id, "view")
    if refusal is not None:
        return refusal
    try:
        context = await run_in_threadpool(_conversation_context, console, who, conversation_id, record=record)
    except DeskError:
        return console.pages.render(request, "error.html", {"message": NO_CONVERSATION}, 404)
    return console.pages.render(request, template, {**context, "who": who})


async def _act(
    request: Request,
    who: SignedIn,
    console: Console,
    conversation_id: int,
    csrf: str,
    name: str,
    action: Callable[[], None],
) -> Response:
    """Permission, then CSRF, then the action; a refused action shows the page again with why."""
    refusal = await _refusal(request, who, console, conversation_id, name)
    if refusal is not None:
        return refusal
    if not same(csrf, who.csrf):
        return console.pages.render(request, "error.html", {"message": STALE_FORM}, 403)
    try:
        await run_in_threadpool(action)
    except (DeskError, DeskConflict) as exc:
        context = await run_in_threadpool(_conversation_context, console, who, conversation_id, record=False)
        context.update(who=who, error=str(exc))
        return console.pages.render(request, "conversation.html", context, 409)
    return RedirectResponse(f"/console/conversations/{conversation_id}", status_code=303)


def _categories(console: Console) -> dict[str, str]:
    return {name: c.title for name, c in console.desk.engine.live.get().scenarios.categories.items()}


def _queue_context(console: Console, who: SignedIn) -> dict[str, Any]:
    now = _now()
    console.views.mark_breaches(now)
    items = console.views.queue(now)
    content = console.desk.engine.live.get()
    mine = set(content.teams.categories_of(who.name))
    return {
        "mine": [item for item in items if item.category in mine],
        "others": [item for item in items if item.category not in mine],
        "now": now,
        "categories": _categories(console),
        "personas": PERSONA_TITLES,
        "reasons": reason_titles(content),
    }


def _conversation_context(
    console: Console, who: SignedIn, conversation_id: int, *, record: bool
) -> dict[str, Any]:
    if record:
        view = console.desk.view(conversation_id, who.name)
    else:
        found = console.views.conversation(conversation_id)
        if found is None:
            raise DeskError("no such conversation")
        view = found
    content = console.desk.engine.live.get()
    category = view.handoff.category if view.handoff else ""
    categories = _categories(console)
    staff = content.teams.staff(category) if category else None
    history = []
    # A pressed button is stored as its payload ("rate:2"); operators read the label the client saw.
    labels: dict[str, str] = {}
    for row in view.history:
        buttons = stored_buttons(row.buttons_json)
        labels.update({b.payload: b.text for b in buttons})
        pressed = labels.get(row.text) if row.direction == Direction.IN else None
        history.append({"row": row, "buttons": [b.text for b in buttons], "pressed": pressed})
    persona = view.state.persona
    # Cues of the label the client has now come first: they say why this label.
    cues = sorted(view.state.persona_cues[::-1], key=lambda cue: not cue.startswith(f"{persona}:"))
    route = console.desk.route(conversation_id)
    # One line per verified identity, with everyone who vouched for it.
    verified: dict[tuple[str, str], list[str]] = {}
    for kind, value, source in view.verified:
        sources = verified.setdefault((kind, value), [])
        if source not in sources:
            sources.append(source)
    return {
        "view": view,
        "verified": verified,
        "route": route,
        "route_notes": route_notes(route, _now()),
        "may_merge": may_merge(who.role),
        "receipt_titles": RECEIPT_TITLES,
        "history": history,
        "cues": cues,
        "suggestions": console.desk.suggestions(view, who.display_name),
        "categories": categories,
        "category_title": categories.get(category, category),
        "staff": staff,
        "personas": PERSONA_TITLES,
        "reasons": reason_titles(content),
        "statuses": STATUS_TITLES,
        "details_titles": {name: spec.title for name, spec in content.scenarios.details.items()},
        "now": _now(),
    }


def route_notes(route: ReplyRoute, now: datetime) -> list[str]:
    """What the reply form says before anything is sent: a closed or closing window, a skipped channel."""
    notes = []
    name = route.title
    if route.refusal:
        notes.append(
            f"Клиент писал в {name} больше {window_hours(route.channel)} часов назад: {name} разрешает "
            "написать только шаблоном. Ответ не отправится."
        )
    elif route.closes_at is not None and route.closes_at - now <= WINDOW_WARNING:
        minutes = max(1, math.ceil((route.closes_at - now).total_seconds() / 60))
        notes.append(
            f"Окно {name} закроется через {minutes} мин: после этого написать можно будет только шаблоном."
        )
    if route.passed_over and not route.refusal:
        skipped = ", ".join(title(channel) for channel in route.passed_over)
        notes.append(f"Позже клиент писал в {skipped}, но там окно для ответа уже закрыто.")
    return notes


def _client_number(raw: str) -> int | None:
    """A client number typed into a form ("#12" too); None when it is none."""
    digits = raw.strip().removeprefix("#").strip()
    if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= MAX_ID:
        return None
    return int(digits)


async def _changes(
    request: Request, hub: ChangeHub, marker: Callable[[], Awaitable[Any]]
) -> AsyncIterator[str]:
    """Server-sent events: "change" whenever the marker moves; comments keep proxies from closing it."""
    seen = hub.version
    last = await marker()
    quiet = 0.0
    yield "retry: 1000\n\n"
    while not await request.is_disconnected():
        await hub.wait(seen, STREAM_POLL_S)
        seen = hub.version
        current = await marker()
        if current != last:
            last, quiet = current, 0.0
            yield "event: change\ndata: {}\n\n"
        else:
            quiet += STREAM_POLL_S
            if quiet >= STREAM_KEEPALIVE_S:
                quiet = 0.0
                yield ": keep-alive\n\n"


def _new_token() -> str:
    return secrets.token_urlsafe(24)


def _wait(seconds: float) -> str:
    """How long to wait, as an operator reads it."""
    return f"{math.ceil(seconds)} с" if seconds < 60 else f"{math.ceil(seconds / 60)} мин"


def _valid_token(token: str) -> str:
    """A token of ours in shape (url-safe, of a sane length), or empty."""
    return token if 16 <= len(token) <= 64 and all(c.isalnum() or c in "-_" for c in token) else ""


def _safe_next(target: str) -> str:
    """Only our own console pages: an open redirect would help phishing."""
    return (
        target if target.startswith("/console") and "//" not in target and "\\" not in target else "/console"
    )


def _strict_cookie(
    response: Response, name: str, value: str, guard: Guard, *, path: str = "/", max_age: int | None = None
) -> Response:
    """Every console cookie: unreadable to scripts, never sent from another site, Secure when configured."""
    response.set_cookie(
        name, value, max_age=max_age, path=path, httponly=True, samesite="strict", secure=guard.secure_cookies
    )
    return response
