"""The clients' web chat: a channel like Telegram, served through the same conversation service."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from common.messages import IncomingMessage
from common.names import Direction
from dialogs.safetext import clean_json_body
from dialogs.service import ConversationService
from storage.desk.base import ChatHistory, News
from storage.desk.outbox import stored_buttons
from web.limits import TOO_LARGE_CHAT, ChatLimits, NewChatBudget, StreamSlots
from web.live import ChangeHub, ChatFeed
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
        "buttons": (
            [{"text": b.text, "payload": b.payload} for b in stored_buttons(row.buttons_json)]
            if row.direction == Direction.OUT
            else []
        ),
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


@dataclass(slots=True)
class WebChat:
    """What the chat's routes share; one per app, in `app.state.chat`."""

    service: ConversationService
    history: ChatHistory
    pages: Pages
    hub: ChangeHub
    new_chats: NewChatBudget
    streams: StreamSlots
    feed: ChatFeed
    secure_cookies: bool = False


def web_chat(
    service: ConversationService,
    history: ChatHistory,
    pages: Pages,
    hub: ChangeHub,
    *,
    limits: ChatLimits | None = None,
    secure_cookies: bool = False,
) -> WebChat:
    """The chat's shared objects: budgets from `limits`, and one feed reading the chats' news."""
    limits = limits or ChatLimits()

    async def news(floor: int | None) -> News:
        return await run_in_threadpool(history.chat_news, CHANNEL, floor)

    return WebChat(
        service,
        history,
        pages,
        hub,
        NewChatBudget(limits.new_chats, limits.new_chats_window_s),
        StreamSlots(limits.streams),
        ChatFeed(hub, news),
        secure_cookies,
    )


async def shared(request: Request) -> WebChat:
    """Dependency: the app's web chat objects."""
    chat: WebChat = request.app.state.chat
    return chat


# Module level: FastAPI resolves postponed annotations in the module's namespace.
Shared = Annotated[WebChat, Depends(shared)]
router = APIRouter(prefix="/chat")


@router.get("", response_class=HTMLResponse)
async def page(request: Request, chat: Shared) -> Response:
    """The chat page, which may be framed by the company's site."""
    cookie = request.cookies.get(VISITOR_COOKIE) or ""
    secret = cookie if _valid_visitor(cookie) else secrets.token_urlsafe(18)
    # The page hands the secret to its script, which keeps the one it already has, if any.
    response = chat.pages.render(request, "chat.html", {"visitor": secret}, embeddable=True)
    response.headers["Cache-Control"] = "no-store"
    if secret != cookie:
        response.headers.append("set-cookie", visitor_cookie(secret, secure=chat.secure_cookies))
    return response


@router.post("/api/messages")
async def post(request: Request, chat: Shared) -> Response:
    """One message from the page, run through the conversation service; replies arrive on the stream."""
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
        too_long = any(err["type"] == "string_too_long" and err["loc"] == ("text",) for err in exc.errors())
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
        refused = await _refuse_new_chat(request, chat, chat_id)
        if refused is not None:
            return refused
        await run_in_threadpool(chat.service.handle, message)
    except Exception:
        log.exception("web chat message could not be handled")
        apology = chat.service.apology().replies[0].text
        return _problem(503, apology)
    return JSONResponse({"ok": True}, status_code=202)


@router.get("/api/stream")
async def stream(request: Request, chat: Shared) -> Response:
    """The visitor's messages as server-sent events, from a given id on."""
    secret = visitor_secret(request)
    if not secret:
        return _problem(401, NO_VISITOR)
    start = _start_after(request)
    if start is None:
        return _problem(400, "Неверный номер сообщения.")
    address = client_address(request)
    if not chat.streams.take(address):
        return _problem(429, TOO_MANY_STREAMS, {"Retry-After": "10"})
    return CountedStream(_events(request, chat, visitor_id(secret), start), chat.streams, address)


async def _refuse_new_chat(request: Request, chat: WebChat, chat_id: str) -> Response | None:
    """A 429 when a visitor the chat does not know yet would pass their address's budget of new chats.
    A visitor with a stored conversation is never refused: nobody is locked out of their own chat."""
    known = await run_in_threadpool(chat.history.chat_messages, CHANNEL, chat_id, 0, 1)
    if known:
        return None
    address = client_address(request)
    if chat.new_chats.allow(address, chat_id):
        return None
    if chat.new_chats.first_refusal(address):
        log.warning("web chat: %s started too many new conversations; refusing more for a while", address)
    wait = str(chat.new_chats.retry_after(address))
    return _problem(429, TOO_MANY_CHATS, {"Retry-After": wait})


async def _events(request: Request, chat: WebChat, chat_id: str, after: int) -> AsyncIterator[str]:
    # A stream reads its chat when it opens and when the shared feed says the chat has news, never on a
    # timer: idle streams cost the database nothing.
    feed = chat.feed
    feed.listen(chat_id)
    try:
        yield "retry: 1000\n\n"
        while not await request.is_disconnected():
            mark = feed.mark(chat_id)
            rows = await run_in_threadpool(chat.history.chat_messages, CHANNEL, chat_id, after, STREAM_PAGE)
            for row in rows:
                after = row.id
                yield f"id: {row.id}\ndata: {json.dumps(message_json(row), ensure_ascii=False)}\n\n"
            if len(rows) == STREAM_PAGE:
                continue
            while not await feed.wait(chat_id, mark, STREAM_KEEPALIVE_S):
                if await request.is_disconnected():
                    return
                yield ": keep-alive\n\n"
    finally:
        feed.leave(chat_id)


def _start_after(request: Request) -> int | None:
    """The id to stream after (Last-Event-ID wins over `after`); None when either is not a valid id."""
    raw = (request.headers.get("last-event-id") or request.query_params.get("after") or "0").strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > MAX_ID:
        return None
    return int(raw)


def _valid_visitor(visitor: str) -> bool:
    return 16 <= len(visitor) <= 64 and all(c.isascii() and (c.isalnum() or c in "-_") for c in visitor)
