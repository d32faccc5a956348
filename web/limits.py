"""Request limits: bodies counted while they arrive, and per-address budgets for the web chat.

Budgets are per process and keyed by the client address uvicorn gives (`request.client.host`). Behind a
reverse proxy that address is the proxy's unless uvicorn trusts its X-Forwarded-For: it does for a proxy
on 127.0.0.1 by default; a proxy elsewhere needs FORWARDED_ALLOW_IPS=its address.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wiring.settings import SettingsError, environment

KIB = 1024
CHAT_BODY = 64 * KIB
CONSOLE_BODY = 64 * KIB
# A 20,000-character reply, url-encoded: up to 12 bytes a character (4-byte UTF-8, each byte %XX).
REPLY_BODY = 256 * KIB
EVENTS_BODY = 64 * KIB
DEFAULT_BODY = 16 * KIB
# (path prefix, path suffix, limit): the first rule that fits the path decides.
BODY_RULES: tuple[tuple[str, str, int], ...] = (
    ("/chat/api/messages", "", CHAT_BODY),
    ("/console/conversations/", "/reply", REPLY_BODY),
    ("/console/", "", CONSOLE_BODY),
    ("/api/events", "", EVENTS_BODY),
)
TOO_LARGE_CHAT = "Сообщение слишком длинное. Разбейте его, пожалуйста, на несколько."
TOO_LARGE_OTHER = "Слишком большой запрос."
TOO_LARGE_API = "request body too large"


def body_limit(path: str, rules: Sequence[tuple[str, str, int]] = BODY_RULES) -> int:
    """The most bytes a request body to `path` may have."""
    for prefix, suffix, limit in rules:
        if path.startswith(prefix) and path.endswith(suffix):
            return limit
    return DEFAULT_BODY


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a body passes its limit; an HTTPException so FastAPI lets it through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


def too_large_message(path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of the 413 answer; the connection is closed so the rest is never read."""
    if path.startswith("/chat/"):
        body = json.dumps({"error": TOO_LARGE_CHAT}, ensure_ascii=False).encode()
        kind = b"application/json"
    elif path.startswith("/api/"):
        body, kind = json.dumps({"error": TOO_LARGE_API}).encode(), b"application/json"
    else:
        body, kind = TOO_LARGE_OTHER.encode(), b"text/plain; charset=utf-8"
    headers = [
        (b"content-type", kind),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    return 413, headers, body


async def send_too_large(path: str, send: Send) -> None:
    """Answer 413 at once, whatever of the body has arrived."""
    status, headers, body = too_large_message(path)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def declared_length(scope: Scope) -> int | None:
    """The Content-Length header as a number; None when absent (chunked) or unreadable."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimit:
    """Refuses a body over its route's limit before reading it (Content-Length) or as soon as the bytes
    received pass it (chunked or lying clients), so no route ever holds more than its limit."""

    def __init__(self, app: ASGIApp, rules: Sequence[tuple[str, str, int]] = BODY_RULES) -> None:
        self.app, self.rules = app, rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = body_limit(path, self.rules)
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await send_too_large(path, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await send_too_large(path, send)


NEW_CHATS = 5
NEW_CHATS_WINDOW_S = 600.0
STREAMS = 10


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """What one client address may do in the web chat (per web process)."""

    # New conversations (first messages of visitors the chat does not know yet) per window.
    new_chats: int = NEW_CHATS
    new_chats_window_s: float = NEW_CHATS_WINDOW_S
    # Chat streams (open chat pages) held open at once.
    streams: int = STREAMS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ChatLimits:
        """From TONEBOT_CHAT_NEW_PER_ADDRESS ("5", or "5/600": chats per seconds) and
        TONEBOT_CHAT_STREAMS_PER_ADDRESS; the defaults where they are not set."""
        env = environment() if env is None else env
        chats, window = NEW_CHATS, NEW_CHATS_WINDOW_S
        spec = env.get("TONEBOT_CHAT_NEW_PER_ADDRESS", "").strip()
        if spec:
            count, _, seconds = spec.partition("/")
            if not count.isdigit() or (seconds and not seconds.isdigit()):
                raise SettingsError(
                    f"TONEBOT_CHAT_NEW_PER_ADDRESS must be N or N/SECONDS (e.g. 5/600), got {spec!r}"
                )
            chats, window = int(count), float(seconds or window)
        streams_spec = env.get("TONEBOT_CHAT_STREAMS_PER_ADDRESS", "").strip()
        if streams_spec and not streams_spec.isdigit():
            raise SettingsError(
                f"TONEBOT_CHAT_STREAMS_PER_ADDRESS must be a whole number, got {streams_spec!r}"
            )
        streams = int(streams_spec) if streams_spec else STREAMS
        return cls(new_chats=chats, new_chats_window_s=window, streams=streams)


class NewChatBudget:
    """A sliding window of the visitors each address started; a visitor already counted is free."""

    def __init__(self, per_window: int, window_s: float) -> None:
        self.per_window, self.window_s = per_window, window_s
        self._started: dict[str, deque[tuple[float, str]]] = {}
        self._refused: dict[str, float] = {}
        self._calls = 0

    def allow(self, address: str, visitor: str, now: float | None = None) -> bool:
        """Count `visitor` as a new chat of `address` if the budget allows; False when it is spent."""
        now = time.monotonic() if now is None else now
        self._sweep(now)
        started = self._started.setdefault(address, deque())
        while started and started[0][0] <= now - self.window_s:
            started.popleft()
        if any(seen == visitor for _at, seen in started):
            return True
        if len(started) >= self.per_window:
            return False
        started.append((now, visitor))
        return True

    def first_refusal(self, address: str, now: float | None = None) -> bool:
        """True once per window for an address being refused: what a log should say, not every refusal."""
        now = time.monotonic() if now is None else now
        if now - self._refused.get(address, -self.window_s) < self.window_s:
            return False
        self._refused[address] = now
        return True

    def retry_after(self, address: str, now: float | None = None) -> int:
        """Seconds until `address` may start another chat."""
        now = time.monotonic() if now is None else now
        started = self._started.get(address)
        if not started:
            return 0
        return max(1, int(started[0][0] + self.window_s - now) + 1)

    def _sweep(self, now: float) -> None:
        # Addresses seen once must not stay in memory forever: drop the idle ones now and then.
        self._calls += 1
        if self._calls % 1000:
            return
        for address in [a for a, s in self._started.items() if not s or s[-1][0] <= now - self.window_s]:
            del self._started[address]
        for address in [a for a, at in self._refused.items() if at <= now - self.window_s]:
            del self._refused[address]


class StreamSlots:
    """Open streams per address, capped."""

    def __init__(self, per_address: int) -> None:
        self.per_address = per_address
        self._open: dict[str, int] = {}

    def take(self, address: str) -> bool:
        """Hold a slot for `address`; False when all its slots are in use."""
        held = self._open.get(address, 0)
        if held >= self.per_address:
            return False
        self._open[address] = held + 1
        return True

    def give_back(self, address: str) -> None:
        """Free a slot taken with `take`."""
        held = self._open.get(address, 0) - 1
        if held > 0:
            self._open[address] = held
        else:
            self._open.pop(address, None)

    def held(self, address: str) -> int:
        """How many streams `address` has open."""
        return self._open.get(address, 0)
