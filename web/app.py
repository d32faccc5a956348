"""The FastAPI app: the console under /console, the web chat under /chat, static files under /static."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.analytics import SqlAnalytics
from storage.inbox import SqlInbox
from web import (
    analytics_pages,
    campaign_pages,
    console,
    events_api,
    inbox_pages,
    metrics,
    tasks_pages,
    webchat,
)
from web.auth import Guard, SignInRequired
from web.limits import BodyLimit, BodyTooLarge, ChatLimits, too_large_message
from web.live import ChangeHub
from web.render import Pages
from wiring.runtime import Runtime

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
BREACH_CHECK_S = 10.0
RETENTION_EVERY_S = 3600.0
# How often one query per process looks for changes other processes wrote, for all live streams at once.
CHANGE_WATCH_S = 1.0


def create_app(
    runtime: Runtime,
    *,
    secure_cookies: bool = False,
    chat_limits: ChatLimits | None = None,
    events: events_api.EventsSettings | None = None,
) -> FastAPI:
    """The web app over a runtime; the same runtime may serve Telegram in the same process.
    `chat_limits` and `events` default to the environment's (TONEBOT_CHAT_*, TONEBOT_EVENTS_*)."""
    hub = ChangeHub()
    pages = Pages(runtime.content.get().scenarios.company.timezone)
    desk_store = runtime.desk_store
    guard = Guard(desk_store, desk_store, secure_cookies=secure_cookies)
    limits = ChatLimits.from_env() if chat_limits is None else chat_limits
    chat = webchat.web_chat(
        runtime.service, desk_store, pages, hub, limits=limits, secure_cookies=secure_cookies
    )

    async def change_marker() -> object:
        return await run_in_threadpool(desk_store.change_marker)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        hub.bind(asyncio.get_running_loop())
        runtime.service.listeners.append(hub.notify)
        jobs = [
            asyncio.create_task(_record_breaches(runtime)),
            asyncio.create_task(_retention(runtime)),
            asyncio.create_task(hub.watch(change_marker, CHANGE_WATCH_S)),
            asyncio.create_task(chat.feed.run()),
        ]
        try:
            yield
        finally:
            for job in jobs:
                job.cancel()
            # A job cancelled inside a database call finishes that call first (threads cannot be
            # interrupted): wait for it, so that no pooled connection is still out when the process, or a
            # test, closes the pools and drops the database.
            await asyncio.gather(*jobs, return_exceptions=True)
            runtime.service.listeners.remove(hub.notify)

    app = FastAPI(title="tonebot", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.hub = hub
    app.state.guard = guard
    app.state.pages = pages
    app.state.console = console.Console(
        runtime.desk, desk_store, desk_store, runtime.client_data, guard, pages, hub
    )
    app.state.chat = chat
    app.state.events = events_api.events_api(runtime, events)
    # The campaign senders of this process put their wake() here; the events API calls them.
    app.state.campaign_listeners = []
    app.state.tasks = app.state.funnel = desk_store
    app.state.inbox = SqlInbox(runtime.store.engine)
    app.state.analytics = SqlAnalytics(runtime.store.engine)
    app.include_router(console.router)
    app.include_router(tasks_pages.router)
    app.include_router(campaign_pages.router)
    app.include_router(inbox_pages.router)
    app.include_router(analytics_pages.router)
    app.include_router(webchat.router)
    app.include_router(events_api.router)
    app.include_router(metrics.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Added last = outermost: the 413s of BodyLimit get nosniff too.
    app.add_middleware(BodyLimit)
    app.add_middleware(NoSniff)

    app.add_exception_handler(BodyTooLarge, body_too_large)
    app.add_exception_handler(SignInRequired, sign_in_first)
    app.include_router(router)
    return app


router = APIRouter()


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> Response:
    """The start page: links to the chat and the console."""
    pages: Pages = request.app.state.pages
    return pages.render(request, "index.html", {})


@router.get("/healthz")
async def health() -> dict[str, str]:
    """For load balancers and process managers."""
    return {"status": "ok"}


async def body_too_large(request: Request, _exc: Exception) -> Response:
    """The 413 of a body over its limit (web/limits.py)."""
    status, headers, body = too_large_message(request.url.path)
    return Response(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})


async def sign_in_first(request: Request, _exc: Exception) -> Response:
    """Pages send the browser to the sign-in form; streams and forms get a plain 401."""
    if request.method == "GET" and not request.url.path.endswith("/stream"):
        return RedirectResponse(f"/console/login?next={request.url.path}", status_code=303)
    return Response("sign in first", status_code=401)


class NoSniff:
    """Every response says X-Content-Type-Options: nosniff (exports, static files, plain errors too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, marked)


async def _retention(runtime: Runtime) -> None:
    """Delete conversations older than the retention period, hourly (no-op when it is not set)."""
    while runtime.retention_days > 0:
        try:
            now = datetime.now(UTC)
            cutoff = now - timedelta(days=runtime.retention_days)
            erased = await run_in_threadpool(runtime.client_data.purge, cutoff, "retention", now)
            if erased.conversations:
                log.info("retention: %s", erased.describe())
        except Exception:
            log.exception("the retention job failed; will retry")
        await asyncio.sleep(RETENTION_EVERY_S)


async def _record_breaches(runtime: Runtime) -> None:
    """Overdue first replies are recorded even when nobody has the queue open."""
    while True:
        await asyncio.sleep(BREACH_CHECK_S)
        try:
            await run_in_threadpool(runtime.desk_store.mark_breaches, datetime.now(UTC))
        except Exception:
            log.exception("recording target breaches failed; will retry")
