"""The operators' console: sign-in, the queue, one conversation, and the actions on it."""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from dialogs.content import Content
from operators.desk import DeskError, OperatorDesk
from storage.desk import DeskConflict, DeskStore
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
REASON_TITLES = {
    "client_asked": "клиент попросил человека",
    "accepted_offer": "согласился на предложение позвать человека",
    "not_solved": "решение бота не помогло",
    "stuck": "разговор с ботом не двигается",
    "escalation": "гнев или угроза: срочно",
    "scenario": "запрос, который решают люди",
    "missed_point": "клиент говорит, что бот его не понимает",
    "tried_basics": "клиент уже сделал первые шаги",
}
URGENT_REASON = "urgent:"


def reason_titles(content: Content) -> dict[str, str]:
    """How each handoff reason reads to operators: the fixed ones, and the company's urgent situations."""
    urgent = {
        f"{URGENT_REASON}{name}": f"срочная ситуация: {spec.title or name}"
        for name, spec in content.lexicons.urgent.situations.items()
    }
    return {**REASON_TITLES, **urgent}


STATUS_TITLES = {
    "bot": "с ботом",
    "handed_off": "ждёт человека",
    "with_operator": "у специалиста",
    "closed": "закрыт",
}
STREAM_POLL_S = 1.0
STREAM_KEEPALIVE_S = 15.0
# A browser's device token (web/throttle.py) outlives sessions: it exempts the owner from guess delays.
DEVICE_LIFETIME_S = 365 * 24 * 3600
# The largest id the databases store (64-bit signed); a larger one in a URL names nothing.
MAX_ID = 2**63 - 1


def _now() -> datetime:
    return datetime.now(UTC)


def signed_in(request: Request) -> SignedIn:
    """Dependency: the signed-in operator (SignInRequired otherwise); the app keeps its Guard in state."""
    guard: Guard = request.app.state.guard
    return guard.current(request)


# Module level: FastAPI resolves postponed annotations in the module's namespace.
Who = Annotated[SignedIn, Depends(signed_in)]


class Console:
    """Routes of the console over the desk; one instance per app."""

    def __init__(
        self,
        desk: OperatorDesk,
        store: DeskStore,
        guard: Guard,
        pages: Pages,
        hub: ChangeHub,
        client_data: ClientData,
    ) -> None:
        self.desk, self.store, self.guard, self.pages, self.hub = desk, store, guard, pages, hub
        self.client_data = client_data
        self.router = APIRouter(prefix="/console", route_class=_PrivateRoute)
        self._routes()

    # --- helpers ------------------------------------------------------------------------------------
    def _access(self, who: SignedIn, conversation_id: int, action: str) -> int:
        """200, 403 or 404: operators see conversations handed to people, admins any; refusals are audited."""
        if not 1 <= conversation_id <= MAX_ID or not self.store.exists(conversation_id):
            return 404
        if who.role == "admin" or self.store.was_handed_off(conversation_id):
            return 200
        self.store.record(who.name, "refused", conversation_id, action, _now())
        return 403

    async def _refusal(
        self, request: Request, who: SignedIn, conversation_id: int, action: str
    ) -> Response | None:
        """The one permission check every conversation route makes before it reads or renders anything."""
        status = await run_in_threadpool(self._access, who, conversation_id, action)
        if status == 404:
            return self.pages.render(request, "error.html", {"message": "Такого разговора нет."}, 404)
        if status == 403:
            return self.pages.render(
                request, "error.html", {"message": "Этот разговор не передавали людям."}, 403
            )
        return None

    def _categories(self) -> dict[str, str]:
        return {name: c.title for name, c in self.desk.engine.live.get().scenarios.categories.items()}

    def _queue_context(self, who: SignedIn) -> dict[str, Any]:
        now = _now()
        self.store.mark_breaches(now)
        items = self.store.queue(now)
        mine = set(self.desk.engine.live.get().teams.categories_of(who.name))
        return {
            "mine": [item for item in items if item.category in mine],
            "others": [item for item in items if item.category not in mine],
            "now": now,
            "categories": self._categories(),
            "personas": PERSONA_TITLES,
            "reasons": reason_titles(self.desk.engine.live.get()),
        }

    def _conversation_context(self, who: SignedIn, conversation_id: int, *, record: bool) -> dict[str, Any]:
        if record:
            view = self.desk.view(conversation_id, who.name)
        else:
            found = self.store.conversation(conversation_id)
            if found is None:
                raise DeskError("no such conversation")
            view = found
        content = self.desk.engine.live.get()
        category = view.handoff.category if view.handoff else ""
        categories = self._categories()
        staff = content.teams.staff(category) if category else None
        history = []
        # A pressed button is stored as its payload ("rate:2"); operators read the label the client saw.
        labels: dict[str, str] = {}
        for row in view.history:
            buttons = json.loads(row.buttons_json or "[]")
            labels.update({b["payload"]: b["text"] for b in buttons})
            pressed = labels.get(row.text) if row.direction == "in" else None
            history.append({"row": row, "buttons": [b["text"] for b in buttons], "pressed": pressed})
        persona = view.state.persona
        # Cues of the label the client has now come first: they say why this label.
        cues = sorted(view.state.persona_cues[::-1], key=lambda cue: not cue.startswith(f"{persona}:"))
        return {
            "view": view,
            "history": history,
            "cues": cues,
            "suggestions": self.desk.suggestions(view, who.display_name),
            "categories": categories,
            "category_title": categories.get(category, category),
            "staff": staff,
            "personas": PERSONA_TITLES,
            "reasons": reason_titles(content),
            "statuses": STATUS_TITLES,
            "details_titles": {name: spec.title for name, spec in content.scenarios.details.items()},
            "now": _now(),
        }

    async def _act(
        self,
        request: Request,
        who: SignedIn,
        conversation_id: int,
        csrf: str,
        name: str,
        action: Callable[[], None],
    ) -> Response:
        refusal = await self._refusal(request, who, conversation_id, name)
        if refusal is not None:
            return refusal
        if not same(csrf, who.csrf):
            return self.pages.render(
                request, "error.html", {"message": "Форма устарела: обновите страницу."}, 403
            )
        try:
            await run_in_threadpool(action)
        except (DeskError, DeskConflict) as exc:
            context = await run_in_threadpool(self._conversation_context, who, conversation_id, record=False)
            context.update(who=who, error=str(exc))
            return self.pages.render(request, "conversation.html", context, 409)
        return RedirectResponse(f"/console/conversations/{conversation_id}", status_code=303)

    async def _stream(self, request: Request, marker: Callable[[], Awaitable[Any]]) -> AsyncIterator[str]:
        """Server-sent events: "change" whenever the marker moves; comments keep proxies from closing it."""
        seen = self.hub.version
        last = await marker()
        quiet = 0.0
        yield "retry: 1000\n\n"
        while not await request.is_disconnected():
            await self.hub.wait(seen, STREAM_POLL_S)
            seen = self.hub.version
            current = await marker()
            if current != last:
                last, quiet = current, 0.0
                yield "event: change\ndata: {}\n\n"
            else:
                quiet += STREAM_POLL_S
                if quiet >= STREAM_KEEPALIVE_S:
                    quiet = 0.0
                    yield ": keep-alive\n\n"

    # --- routes -------------------------------------------------------------------------------------
    def _routes(self) -> None:
        router, pages = self.router, self.pages

        @router.get("/login", response_class=HTMLResponse)
        async def login_form(request: Request, next: str = "/console") -> Response:
            token = request.cookies.get(LOGIN_CSRF_COOKIE) or _new_token()
            response = pages.render(request, "login.html", {"csrf": token, "next": _safe_next(next)})
            return _strict_cookie(response, LOGIN_CSRF_COOKIE, token, self.guard)

        @router.post("/login")
        async def login(
            request: Request,
            name: Annotated[str, Form(max_length=100)],
            password: Annotated[str, Form(max_length=200)],
            csrf: Annotated[str, Form(max_length=100)],
            next: Annotated[str, Form(max_length=300)] = "/console",
        ) -> Response:
            if not same(csrf, request.cookies.get(LOGIN_CSRF_COOKIE, "")):
                context = {
                    "csrf": _new_token(),
                    "next": _safe_next(next),
                    "error": "Форма устарела, войдите ещё раз.",
                }
                refused = pages.render(request, "login.html", context, 403)
                return _strict_cookie(refused, LOGIN_CSRF_COOKIE, context["csrf"], self.guard)
            address = request.client.host if request.client else "unknown"
            device = request.cookies.get(DEVICE_COOKIE, "")
            outcome = await self.guard.sign_in(name.strip(), password, address, _valid_token(device))
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
            _strict_cookie(response, SESSION_COOKIE, outcome.token, self.guard, path="/", max_age=lifetime)
            _strict_cookie(
                response,
                DEVICE_COOKIE,
                outcome.device,
                self.guard,
                path="/console/login",
                max_age=DEVICE_LIFETIME_S,
            )
            response.delete_cookie(LOGIN_CSRF_COOKIE)
            return response

        @router.post("/logout")
        async def logout(request: Request, who: Who, csrf: Annotated[str, Form(max_length=100)]) -> Response:
            # A forged or stale form changes nothing: the browser keeps its cookie only while the session
            # lives, so the two never disagree.
            if not same(csrf, who.csrf):
                return pages.render(
                    request, "error.html", {"message": "Форма устарела: обновите страницу."}, 403
                )
            await run_in_threadpool(self.guard.sign_out, who)
            response = RedirectResponse("/console/login", status_code=303)
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response

        @router.get("", response_class=HTMLResponse)
        async def queue(request: Request, who: Who) -> Response:
            context = await run_in_threadpool(self._queue_context, who)
            context["who"] = who
            return pages.render(request, "queue.html", context)

        @router.get("/queue/rows", response_class=HTMLResponse)
        async def queue_rows(request: Request, who: Who) -> Response:
            context = await run_in_threadpool(self._queue_context, who)
            context["who"] = who
            return pages.render(request, "queue_rows.html", context)

        @router.get("/clients/{client_id}/export")
        async def export_client(request: Request, who: Who, client_id: int) -> Response:
            if who.role != "admin":
                await run_in_threadpool(
                    self.store.record, who.name, "refused", None, f"export client {client_id}", _now()
                )
                return pages.render(
                    request,
                    "error.html",
                    {"message": "Выгрузка данных клиента — только для администраторов."},
                    403,
                )
            data = None
            if 1 <= client_id <= MAX_ID:
                data = await run_in_threadpool(self.client_data.export, client_id, who.name, _now())
            if data is None:
                return pages.render(request, "error.html", {"message": "Такого клиента нет."}, 404)
            return JSONResponse(
                data,
                headers={
                    "Content-Disposition": f'attachment; filename="client-{client_id}.json"',
                    "Cache-Control": "no-store",
                },
            )

        @router.get("/conversations/{conversation_id}", response_class=HTMLResponse)
        async def conversation(request: Request, who: Who, conversation_id: int) -> Response:
            refusal = await self._refusal(request, who, conversation_id, "view")
            if refusal is not None:
                return refusal
            try:
                context = await run_in_threadpool(
                    self._conversation_context, who, conversation_id, record=True
                )
            except DeskError:
                return pages.render(request, "error.html", {"message": "Такого разговора нет."}, 404)
            context["who"] = who
            return pages.render(request, "conversation.html", context)

        @router.get("/conversations/{conversation_id}/live", response_class=HTMLResponse)
        async def conversation_live(request: Request, who: Who, conversation_id: int) -> Response:
            refusal = await self._refusal(request, who, conversation_id, "view")
            if refusal is not None:
                return refusal
            try:
                context = await run_in_threadpool(
                    self._conversation_context, who, conversation_id, record=False
                )
            except DeskError:
                return pages.render(request, "error.html", {"message": "Такого разговора нет."}, 404)
            context["who"] = who
            return pages.render(request, "conversation_live.html", context)

        @router.post("/conversations/{conversation_id}/take")
        async def take(
            who: Who, request: Request, conversation_id: int, csrf: Annotated[str, Form()]
        ) -> Response:
            return await self._act(
                request, who, conversation_id, csrf, "take",
                lambda: self.desk.take(conversation_id, who.name, who.display_name),
            )  # fmt: skip

        @router.post("/conversations/{conversation_id}/reply")
        async def reply(
            who: Who,
            request: Request,
            conversation_id: int,
            csrf: Annotated[str, Form()],
            text: Annotated[str, Form(max_length=20000)],
        ) -> Response:
            return await self._act(
                request, who, conversation_id, csrf, "reply",
                lambda: self.desk.reply(conversation_id, who.name, who.display_name, text),
            )  # fmt: skip

        @router.post("/conversations/{conversation_id}/hand-back")
        async def hand_back(
            who: Who, request: Request, conversation_id: int, csrf: Annotated[str, Form()]
        ) -> Response:
            return await self._act(
                request, who, conversation_id, csrf, "hand_back",
                lambda: self.desk.hand_back(conversation_id, who.name),
            )  # fmt: skip

        @router.post("/conversations/{conversation_id}/close")
        async def close(
            who: Who, request: Request, conversation_id: int, csrf: Annotated[str, Form()]
        ) -> Response:
            return await self._act(
                request,
                who,
                conversation_id,
                csrf,
                "close",
                lambda: self.desk.close(conversation_id, who.name),
            )

        @router.post("/conversations/{conversation_id}/transfer")
        async def transfer(
            who: Who,
            request: Request,
            conversation_id: int,
            csrf: Annotated[str, Form()],
            category: Annotated[str, Form(max_length=100)],
        ) -> Response:
            return await self._act(
                request, who, conversation_id, csrf, "transfer",
                lambda: self.desk.transfer(conversation_id, who.name, category),
            )  # fmt: skip

        @router.get("/stream")
        async def stream(request: Request, who: Who) -> Response:
            async def marker() -> Any:
                return await run_in_threadpool(self.store.change_marker)

            return StreamingResponse(
                self._stream(request, marker),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )


class _PrivateRoute(APIRoute):
    """Every console answer, pages, refusals and errors alike, is kept out of browser and proxy caches."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def private(request: Request) -> Response:
            response = await handler(request)
            response.headers["Cache-Control"] = "no-store"
            return response

        return private


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
