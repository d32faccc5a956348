"""The clients' web chat: a channel like Telegram, served through the same conversation service."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from common.messages import IncomingMessage
from dialogs.safetext import clean_json_body
from dialogs.service import ConversationService
from storage.desk import DeskStore
from storage.repository import conversations, messages
from web.limits import TOO_LARGE_CHAT, ChatLimits, NewChatBudget, StreamSlots
from web.live import ChangeHub, ChatFeed, News
from web.render import Pages

log = logging.getLogger(__name__)
CHANNEL = "web"
# The visitor's secret: the page sends it in VISITOR_HEADER (from localStorage, else from the page, which
# takes it from the cookie or makes a new one); only a derived id is stored, shown and logged.
VISITOR_COOKIE = "tonebot_visitor"
VISITOR_HEADER = "x-tonebot-visitor"
VISITOR_COOKIE_DAYS = 365
# Plain HTML forms on other sites cannot set this header, and cross-site scripts would need a CORS
# permission we never give: this is the chat's CSRF guard.
CHAT_HEADER = "x-tonebot-chat"
MAX_TEXT_CHARS = 4096
STREAM_PAGE = 200
STREAM_KEEPALIVE_S = 15.0
# The largest id SQLite and PostgreSQL (bigint) hold: an `after` beyond it is a malformed request.
MAX_ID = 2**63 - 1
NO_VISITOR = "Обновите страницу чата, пожалуйста."
TOO_MANY_CHATS = (
    "С вашего адреса начато слишком много новых разговоров. Попробуйте, пожалуйста, через несколько минут."
)
TOO_MANY_STREAMS = "Чат открыт в слишком многих окнах. Закройте, пожалуйста, лишние."


class ChatPost(BaseModel):
    """One message from the chat page."""

    id: str = Field(min_length=1, max_length=64)
    text: str = Field(default="", max_length=MAX_TEXT_CHARS)
    payload: str | None = Field(default=None, max_length=128)


def _problem(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def message_json(row: Any) -> dict[str, Any]:
    """What the page needs of a stored message."""
    return {
        "id": row.id,
        "direction": row.direction,
        "text": row.text,
        "author": row.author,
        "buttons": json.loads(row.buttons_json or "[]") if row.direction == "out" else [],
        "at": row.at.replace(tzinfo=UTC).isoformat() if row.at.tzinfo is None else row.at.isoformat(),
    }


def visitor_id(secret: str) -> str:
    """The chat id stored, shown to operators and logged: it names the visitor without opening their chat."""
    return "web-" + hashlib.sha256(secret.encode()).hexdigest()[:16]


def visitor_cookie(secret: str, *, secure: bool) -> str:
    """The Set-Cookie value for a visitor's secret (written by hand: Python 3.11 cannot say Partitioned).
    Behind TLS it is partitioned (CHIPS): browsers that block third-party cookies still keep it for the
    chat framed on the company's site, apart from other sites' frames. On plain http it cannot be Secure,
    so it stays first-party (SameSite=Lax); the page's header still carries the visitor in a frame."""
    attributes = "HttpOnly; Secure; SameSite=None; Partitioned" if secure else "HttpOnly; SameSite=Lax"
    return f"{VISITOR_COOKIE}={secret}; Max-Age={VISITOR_COOKIE_DAYS * 24 * 3600}; Path=/; {attributes}"


def visitor_secret(request: Request) -> str:
    """The visitor's secret from the page's header, else from the cookie; "" when neither is valid."""
    sent = request.headers.get(VISITOR_HEADER)
    if sent is not None:
        return sent if _valid_visitor(sent) else ""
    cookie = request.cookies.get(VISITOR_COOKIE, "")
    return cookie if _valid_visitor(cookie) else ""


def client_address(request: Request) -> str:
    """The address budgets are kept for (see web/limits.py about proxies)."""
    return request.client.host if request.client else "unknown"


class CountedStream(StreamingResponse):
    """A stream that gives its address's slot back however it ends."""

    def __init__(self, content: AsyncIterator[str], slots: StreamSlots, address: str) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self.slots, self.address = slots, address

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slots.give_back(self.address)


class WebChat:
    """Routes of the web chat."""

    def __init__(
        self,
        service: ConversationService,
        store: DeskStore,
        pages: Pages,
        hub: ChangeHub,
        *,
        limits: ChatLimits | None = None,
        secure_cookies: bool = False,
    ) -> None:
        self.service, self.store, self.pages, self.hub = service, store, pages, hub
        limits = limits or ChatLimits()
        self.new_chats = NewChatBudget(limits.new_chats, limits.new_chats_window_s)
        self.streams = StreamSlots(limits.streams)
        self.feed = ChatFeed(hub, self._news)
        self.secure_cookies = secure_cookies
        self.router = APIRouter(prefix="/chat")
        self._routes()

    def _routes(self) -> None:
        router = self.router

        @router.get("", response_class=HTMLResponse)
        async def page(request: Request) -> Response:
            cookie = request.cookies.get(VISITOR_COOKIE) or ""
            secret = cookie if _valid_visitor(cookie) else secrets.token_urlsafe(18)
            # The page hands the secret to its script, which keeps the one it already has, if any.
            response = self.pages.render(request, "chat.html", {"visitor": secret}, embeddable=True)
            response.headers["Cache-Control"] = "no-store"
            if secret != cookie:
                response.headers.append("set-cookie", visitor_cookie(secret, secure=self.secure_cookies))
            return response

        @router.post("/api/messages")
        async def post(request: Request) -> Response:
            if request.headers.get(CHAT_HEADER) != "1":
                return _problem(403, "Отправляйте сообщения со страницы чата.")
            secret = visitor_secret(request)
            if not secret:
                return _problem(401, NO_VISITOR)
            # The body's size is limited while it arrives (web/limits.py); this is at most 64 KiB.
            body = await request.body()
            try:
                # A lone surrogate (`\ud800`) or a stray byte reads as U+FFFD: the message is kept.
                sent = ChatPost.model_validate_json(clean_json_body(body))
            except ValidationError as exc:
                too_long = any(
                    err["type"] == "string_too_long" and err["loc"] == ("text",) for err in exc.errors()
                )
                if too_long:
                    return _problem(413, TOO_LARGE_CHAT)
                return _problem(422, "Не получилось прочитать сообщение. Попробуйте отправить ещё раз.")
            if not sent.text.strip() and not sent.payload:
                return _problem(422, "Сообщение пустое.")
            chat_id = visitor_id(secret)
            message = IncomingMessage(
                channel=CHANNEL,
                chat_id=chat_id,
                user_id=chat_id,
                text=sent.text,
                at=datetime.now(UTC),
                message_id=sent.id,
                button_payload=sent.payload,
            )
            try:
                refused = await self._refuse_new_chat(request, chat_id)
                if refused is not None:
                    return refused
                await run_in_threadpool(self.service.handle, message)
            except Exception:
                log.exception("web chat message could not be handled")
                apology = self.service.apology().replies[0].text
                return _problem(503, apology)
            return JSONResponse({"ok": True}, status_code=202)

        @router.get("/api/stream")
        async def stream(request: Request) -> Response:
            secret = visitor_secret(request)
            if not secret:
                return _problem(401, NO_VISITOR)
            start = _start_after(request)
            if start is None:
                return _problem(400, "Неверный номер сообщения.")
            address = client_address(request)
            if not self.streams.take(address):
                return _problem(429, TOO_MANY_STREAMS, {"Retry-After": "10"})
            return CountedStream(self._events(request, visitor_id(secret), start), self.streams, address)

    async def _refuse_new_chat(self, request: Request, chat_id: str) -> Response | None:
        """A 429 when a visitor the chat does not know yet would pass their address's budget of new chats.
        A visitor with a stored conversation is never refused: nobody is locked out of their own chat."""
        known = await run_in_threadpool(self.store.chat_messages, CHANNEL, chat_id, 0, 1)
        if known:
            return None
        address = client_address(request)
        if self.new_chats.allow(address, chat_id):
            return None
        if self.new_chats.first_refusal(address):
            log.warning("web chat: %s started too many new conversations; refusing more for a while", address)
        wait = str(self.new_chats.retry_after(address))
        return _problem(429, TOO_MANY_CHATS, {"Retry-After": wait})

    async def _news(self, floor: int | None) -> News:
        return await run_in_threadpool(_chat_news, self.store, floor)

    async def _events(self, request: Request, chat_id: str, after: int) -> AsyncIterator[str]:
        # A stream reads its chat when it opens and when the shared feed says the chat has news, never on
        # a timer: idle streams cost the database nothing.
        self.feed.listen(chat_id)
        try:
            yield "retry: 1000\n\n"
            while not await request.is_disconnected():
                mark = self.feed.mark(chat_id)
                rows = await run_in_threadpool(self.store.chat_messages, CHANNEL, chat_id, after, STREAM_PAGE)
                for row in rows:
                    after = row.id
                    yield f"id: {row.id}\ndata: {json.dumps(message_json(row), ensure_ascii=False)}\n\n"
                if len(rows) == STREAM_PAGE:
                    continue
                while not await self.feed.wait(chat_id, mark, STREAM_KEEPALIVE_S):
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
        finally:
            self.feed.leave(chat_id)


def _chat_news(store: DeskStore, floor: int | None) -> News:
    """The newest message id, and (id, chat id) of web-chat messages above `floor` (none without one)."""
    with store.engine.connect() as connection:
        newest = int(connection.execute(select(func.coalesce(func.max(messages.c.id), 0))).scalar_one())
        if floor is None:
            return newest, []
        rows = connection.execute(
            select(messages.c.id, conversations.c.chat_id)
            .join(conversations, conversations.c.id == messages.c.conversation_id)
            .where(conversations.c.channel == CHANNEL, messages.c.id > floor)
            .order_by(messages.c.id)
        )
        return newest, [(int(row.id), str(row.chat_id)) for row in rows]


def _start_after(request: Request) -> int | None:
    """The id to stream after (Last-Event-ID wins over `after`); None when either is not a valid id."""
    raw = (request.headers.get("last-event-id") or request.query_params.get("after") or "0").strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_ID:
        return None
    return int(raw)


def _valid_visitor(visitor: str) -> bool:
    return 16 <= len(visitor) <= 64 and all(c.isascii() and (c.isalnum() or c in "-_") for c in visitor)
