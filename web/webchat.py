"""The clients' web chat: a channel like Telegram, served through the same conversation service."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from dialogs.messages import IncomingMessage
from dialogs.service import ConversationService
from storage.desk import DeskStore
from web.live import ChangeHub
from web.render import Pages

log = logging.getLogger(__name__)
CHANNEL = "web"
VISITOR_COOKIE = "tonebot_visitor"
# Plain HTML forms on other sites cannot set this header, and cross-site scripts would need a CORS
# permission we never give: together with SameSite cookies this is the chat's CSRF guard.
CHAT_HEADER = "x-tonebot-chat"
MAX_TEXT_CHARS = 4096
MAX_BODY_BYTES = 64 * 1024
STREAM_POLL_S = 1.0
STREAM_KEEPALIVE_S = 15.0


class ChatPost(BaseModel):
    """One message from the chat page."""

    id: str = Field(min_length=1, max_length=64)
    text: str = Field(default="", max_length=MAX_TEXT_CHARS)
    payload: str | None = Field(default=None, max_length=128)


def _problem(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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


class WebChat:
    """Routes of the web chat."""

    def __init__(self, service: ConversationService, store: DeskStore, pages: Pages, hub: ChangeHub) -> None:
        self.service, self.store, self.pages, self.hub = service, store, pages, hub
        self.router = APIRouter(prefix="/chat")
        self._routes()

    def _routes(self) -> None:
        router = self.router

        @router.get("", response_class=HTMLResponse)
        async def page(request: Request) -> Response:
            visitor = request.cookies.get(VISITOR_COOKIE) or ""
            response = self.pages.render(request, "chat.html", {}, embeddable=True)
            if not _valid_visitor(visitor):
                response.set_cookie(
                    VISITOR_COOKIE,
                    secrets.token_urlsafe(18),
                    httponly=True,
                    samesite="lax",
                    max_age=365 * 24 * 3600,
                )
            return response

        @router.post("/api/messages")
        async def post(request: Request) -> Response:
            visitor = request.cookies.get(VISITOR_COOKIE, "")
            if request.headers.get(CHAT_HEADER) != "1":
                return _problem(403, "Отправляйте сообщения со страницы чата.")
            if not _valid_visitor(visitor):
                return _problem(401, "Обновите страницу чата, пожалуйста.")
            body = await request.body()
            if len(body) > MAX_BODY_BYTES:
                return _problem(413, "Сообщение слишком длинное. Разбейте его, пожалуйста, на несколько.")
            try:
                sent = ChatPost.model_validate_json(body)
            except ValidationError as exc:
                too_long = any(
                    err["type"] == "string_too_long" and err["loc"] == ("text",) for err in exc.errors()
                )
                if too_long:
                    return _problem(413, "Сообщение слишком длинное. Разбейте его, пожалуйста, на несколько.")
                return _problem(422, "Не получилось прочитать сообщение. Попробуйте отправить ещё раз.")
            if not sent.text.strip() and not sent.payload:
                return _problem(422, "Сообщение пустое.")
            message = IncomingMessage(
                channel=CHANNEL,
                chat_id=visitor,
                user_id=visitor,
                text=sent.text,
                at=datetime.now(UTC),
                message_id=sent.id,
                button_payload=sent.payload,
            )
            try:
                await run_in_threadpool(self.service.handle, message)
            except Exception:
                log.exception("web chat message could not be handled")
                apology = self.service.apology().replies[0].text
                return _problem(503, apology)
            return JSONResponse({"ok": True}, status_code=202)

        @router.get("/api/stream")
        async def stream(request: Request, after: int = 0) -> Response:
            visitor = request.cookies.get(VISITOR_COOKIE, "")
            if not _valid_visitor(visitor):
                return _problem(401, "Обновите страницу чата, пожалуйста.")
            last_event = request.headers.get("last-event-id", "")
            start = int(last_event) if last_event.isdigit() else max(after, 0)
            return StreamingResponse(
                self._events(request, visitor, start),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )

    async def _events(self, request: Request, visitor: str, after: int) -> AsyncIterator[str]:
        quiet = 0.0
        yield "retry: 1000\n\n"
        while not await request.is_disconnected():
            seen = self.hub.version
            rows = await run_in_threadpool(self.store.chat_messages, CHANNEL, visitor, after)
            for row in rows:
                after = row.id
                yield f"id: {row.id}\ndata: {json.dumps(message_json(row), ensure_ascii=False)}\n\n"
            if rows:
                quiet = 0.0
                continue
            await self.hub.wait(seen, STREAM_POLL_S)
            quiet += STREAM_POLL_S
            if quiet >= STREAM_KEEPALIVE_S:
                quiet = 0.0
                yield ": keep-alive\n\n"


def _valid_visitor(visitor: str) -> bool:
    return 16 <= len(visitor) <= 64 and all(c.isalnum() or c in "-_" for c in visitor)
