"""A local stand-in for the MAX Bot API (platform-api2.max.ru), for tests and benchmarks.

A real HTTP server on 127.0.0.1 (aiohttp): a bot under test talks to it through maxapi's own unmodified
HTTP client, pointed here with ``bot.set_api_url(api.base_url)``. Nothing here contacts the real MAX, and
webhooks are posted to loopback addresses only.

It speaks the subset of the API maxapi uses for a text bot, with MAX's JSON shapes (checked against
maxapi's pydantic models, so they parse): ``GET /me``, ``GET``/``POST``/``DELETE /subscriptions``,
``GET /updates`` (``marker``, ``timeout``, ``limit``, ``types``) answering ``{"updates": [...],
"marker": N}``, ``POST /messages?chat_id=`` (or ``user_id=``) answering ``{"message": {...}}``,
``POST /answers?callback_id=``, ``POST /chats/{chat_id}/actions`` and ``GET /chats/{chat_id}`` (what maxapi
asks for every update unless ``auto_requests=False``). The token is checked in the
``Authorization`` header (as maxapi sends it) or the older ``access_token`` query parameter. Errors are
MAX's ``{"code": "...", "message": "..."}`` with the HTTP status.

Driving it from a test::

    async with MaxApiStandin() as api:
        bot = Bot(api.token)
        bot.set_api_url(api.base_url)
        api.add_start(42, "promo")          # the client opened the bot with a deep-link payload
        api.add_message(42, "Здравствуйте")  # then wrote
        calls = await api.wait_for_sent(2, chat_id=42, name="send_message")
        api.press_button(42, "Да")           # pressed a button of the bot's latest keyboard

Updates are numbered; ``marker`` in an answer points past the last one returned, and passing it back
confirms everything before it, as MAX documents. Without a marker the bot gets everything since the last
confirmation. All methods must be called from the event loop the stand-in was started on.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

__all__ = [
    "DEFAULT_TOKEN",
    "SECRET_HEADER",
    "MaxApiStandin",
    "MaxCall",
    "WebhookDelivery",
]

JsonDict = dict[str, Any]

DEFAULT_TOKEN: Final = "f9LHodD0cOIStandInTokenForTests-0123456789_abcdefghijklmnop"
"""A token shaped like MAX's (letters, digits, - and _); the stand-in accepts only this one."""

SECRET_HEADER: Final = "X-Max-Bot-Api-Secret"
"""The header MAX posts a webhook subscription's secret in."""

TEXT_LIMIT: Final = 4000
# Where the default client of a chat gets its user id: in MAX a dialog's chat id is not its user's id.
CLIENT_ID_BASE: Final = 7_000_000_000
_SECRET_SHAPE: Final = re.compile(r"^[A-Za-z0-9-]{5,256}$")
_ACTIONS_PATH: Final = re.compile(r"^/chats/(-?\d+)/actions$")
_CHAT_PATH: Final = re.compile(r"^/chats/(-?\d+)$")
_SENDER_ACTIONS: Final = frozenset(
    {"typing_on", "sending_photo", "sending_video", "sending_audio", "sending_file", "mark_seen"}
)
# Calls that do not act on any chat; sent() leaves them out so tests see only what clients see.
_SERVICE_CALLS: Final = frozenset(
    {"me", "updates", "get_subscriptions", "subscribe", "unsubscribe", "get_chat"}
)
_ROUTES: Final[dict[tuple[str, str], str]] = {
    ("GET", "/me"): "me",
    ("GET", "/updates"): "updates",
    ("GET", "/subscriptions"): "get_subscriptions",
    ("POST", "/subscriptions"): "subscribe",
    ("DELETE", "/subscriptions"): "unsubscribe",
    ("POST", "/messages"): "send_message",
    ("POST", "/answers"): "answer",
}
_ERROR_CODES: Final[dict[int, str]] = {
    400: "proto.payload",
    401: "verify.token",
    403: "chat.denied",
    404: "not.found",
    405: "method.not.allowed",
    429: "too.many.requests",
    500: "internal.error",
    502: "bad.gateway",
    503: "service.unavailable",
    504: "gateway.timeout",
}
_HTML_PAGE: Final = (
    "<html>\r\n<head><title>{status} Error</title></head>\r\n<body>\r\n"
    "<center><h1>{status} Error</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(frozen=True)
class MaxCall:
    """One request as the stand-in saw it, with the HTTP status it answered."""

    name: str
    """What was called: me, updates, get_subscriptions, subscribe, unsubscribe, get_chat, send_message,
    answer, action."""
    query: dict[str, str]
    body: JsonDict | None
    chat_id: int | None
    """The chat the call acts on; for an answer, the chat of the pressed button."""
    at: float
    """``time.monotonic()`` when the request arrived."""
    status: int
    result: Any
    """The JSON answered on success, else None."""

    @property
    def ok(self) -> bool:
        """Whether the stand-in accepted the call."""
        return self.status == 200

    @property
    def text(self) -> str | None:
        """The sent message's text, if any."""
        value = (self.body or {}).get("text")
        return value if isinstance(value, str) else None

    @property
    def buttons(self) -> list[list[JsonDict]]:
        """The rows of the inline keyboard sent with the message (empty when none)."""
        for attachment in (self.body or {}).get("attachments") or []:
            if isinstance(attachment, dict) and attachment.get("type") == "inline_keyboard":
                rows: list[list[JsonDict]] = attachment["payload"]["buttons"]
                return rows
        return []


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to POST an update to a subscribed webhook."""

    url: str
    attempt: int
    status: int | None
    """The webhook's HTTP status; None when the connection failed."""
    at: float


class ApiError(Exception):
    """An error answer, raised inside handlers and turned into MAX's error JSON."""

    def __init__(
        self, status: int, message: str = "", *, code: str | None = None, html: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _ERROR_CODES.get(status, "error")
        self.message = message or self.code
        self.html = html

    def response(self, retry_after: int | None = None) -> web.Response:
        """The HTTP answer: MAX's JSON, or the HTML page a front proxy serves on a 5xx."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        if self.html:
            page = _HTML_PAGE.format(status=self.status)
            return web.Response(status=self.status, text=page, content_type="text/html", headers=headers)
        body = {"code": self.code, "message": self.message}
        return web.json_response(body, status=self.status, headers=headers)


@dataclass
class _Fault:
    name: str | None
    status: int
    remaining: int
    code: str | None
    message: str
    retry_after: int | None
    html: bool


@dataclass
class _Subscription:
    url: str
    time: int
    update_types: list[str] | None
    secret: str | None


@dataclass
class _Pending:
    seq: int
    update: JsonDict
    duplicate: bool


class MaxApiStandin:
    """A MAX Bot API server on 127.0.0.1 that records what a bot sends and feeds it updates.

    Use ``async with MaxApiStandin() as api:`` or ``await api.start()`` / ``await api.stop()``.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_user_id: int = 9_000_000_001,
        bot_name: str = "Тонбот",
        bot_username: str = "tonebot_test_bot",
        latency: float = 0.0,
        webhook_max_attempts: int = 3,
        webhook_retry_delay: float = 0.05,
    ) -> None:
        """Configure the stand-in; nothing listens until :meth:`start`.

        :param token: the only token accepted; others get 401 ``verify.token``.
        :param latency: seconds added before answering every request (see :meth:`set_latency`).
        :param webhook_max_attempts: POSTs of one update to a webhook before it is given up.
        """
        self.token = token
        self.bot_user_id = bot_user_id
        self.bot_name = bot_name
        self.bot_username = bot_username
        self.latency = latency
        self.webhook_max_attempts = webhook_max_attempts
        self.webhook_retry_delay = webhook_retry_delay

        self.calls: list[MaxCall] = []
        """Every request with a known route, in arrival order, failed ones included."""
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.webhook_failed: list[JsonDict] = []
        """Updates given up after ``webhook_max_attempts`` failed POSTs."""
        self._accepted: list[MaxCall] = []
        self._accepted_by_chat: dict[int | None, list[MaxCall]] = {}

        self._next_seq = 1
        self._pending: list[_Pending] = []
        self._duplicate_budget = 0
        self._users: dict[int, JsonDict] = {}
        self._chat_user: dict[int, int] = {}
        self._messages: dict[str, JsonDict] = {}
        self._keyboards: dict[int, JsonDict] = {}
        self._callbacks: dict[str, int] = {}
        self._mids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._blocked: set[int] = set()
        self._faults: list[_Fault] = []
        self._outages: list[tuple[float, str | None, int]] = []
        self._flood: tuple[int, float] | None = None
        self._call_latency: dict[str, float] = {}
        self._subscriptions: list[_Subscription] = []
        self._webhook_task: asyncio.Task[None] | None = None

        # One event for every state change; waiters re-check their own condition when it fires.
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        if self._runner is not None:
            raise RuntimeError("the stand-in is already started")
        self._closing = False
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        # Binding the socket ourselves gives the kernel-chosen port without private attributes.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = int(sock.getsockname()[1])
        await web.SockSite(runner, sock).start()
        self._runner = runner
        # trust_env=False: webhook POSTs go straight to loopback, never through a proxy.
        self._client = aiohttp.ClientSession(trust_env=False)

    async def stop(self) -> None:
        """Answer pending long polls, stop webhook delivery and close the server."""
        self._closing = True
        self._notify()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: what ``bot.set_api_url`` takes."""
        if self._port is None:
            raise RuntimeError("the stand-in is not started")
        return f"http://127.0.0.1:{self._port}"

    # ------------------------------------------------------------------ clients

    def set_user(self, user_id: int, first_name: str, *, last_name: str | None = None) -> JsonDict:
        """Set the profile later updates from ``user_id`` carry; returns the User object."""
        user: JsonDict = {
            "user_id": user_id,
            "first_name": first_name,
            "last_name": last_name,
            "username": None,
            "is_bot": False,
            "last_activity_time": _now_ms(),
            "name": first_name if last_name is None else f"{first_name} {last_name}",
        }
        self._users[user_id] = user
        return user

    def user_of(self, chat_id: int) -> int:
        """The user id of a dialog's client (the first who wrote, or the default one)."""
        return self._chat_user.get(chat_id, CLIENT_ID_BASE + chat_id)

    def block_chat(self, chat_id: int, blocked: bool = True) -> None:
        """Make sends to ``chat_id`` fail with 403 ``chat.denied`` (the client blocked the bot), or stop."""
        if blocked:
            self._blocked.add(chat_id)
        else:
            self._blocked.discard(chat_id)

    # ------------------------------------------------------------------ incoming updates

    def add_update(self, update: JsonDict) -> JsonDict:
        """Queue a raw update (MAX's JSON); returns it."""
        duplicate = self._duplicate_budget > 0
        if duplicate:
            self._duplicate_budget -= 1
        self._pending.append(_Pending(self._take_seq(), update, duplicate))
        self._notify()
        return update

    def add_message(
        self,
        chat_id: int,
        text: str | None,
        *,
        user_id: int | None = None,
        attachments: list[JsonDict] | None = None,
    ) -> JsonDict:
        """Queue a client's message (``message_created``); its ``message.body.mid`` is MAX's message id."""
        message = self._incoming(chat_id, user_id, text, attachments or [])
        return self.add_update(
            {
                "update_type": "message_created",
                "timestamp": message["timestamp"],
                "message": message,
                "user_locale": "ru",
            }
        )

    def add_start(self, chat_id: int, payload: str | None = None, *, user_id: int | None = None) -> JsonDict:
        """Queue ``bot_started``: the client pressed Start, or followed max.ru/<bot>?start=<payload>."""
        user = self._user(self._client_id(chat_id, user_id))
        update: JsonDict = {
            "update_type": "bot_started",
            "timestamp": _now_ms(),
            "chat_id": chat_id,
            "user": user,
            "user_locale": "ru",
        }
        if payload is not None:
            update["payload"] = payload
        return self.add_update(update)

    def add_edited_message(self, chat_id: int, mid: str, text: str) -> JsonDict:
        """Queue ``message_edited`` for a message the client sent earlier."""
        original = self._messages.get(mid)
        if original is None or original["sender"]["is_bot"] or original["recipient"]["chat_id"] != chat_id:
            raise ValueError(f"no client message {mid} in chat {chat_id}")
        edited = {**original, "body": {**original["body"], "text": text}}
        self._messages[mid] = edited
        return self.add_update({"update_type": "message_edited", "timestamp": _now_ms(), "message": edited})

    def add_callback(
        self,
        chat_id: int,
        payload: str,
        *,
        mid: str | None = None,
        user_id: int | None = None,
        message_gone: bool = False,
    ) -> JsonDict:
        """Queue ``message_callback``: a press of a callback button with ``payload``, by default on the
        bot's latest keyboard in the chat. Answer it with ``POST /answers?callback_id=``. ``message_gone``:
        the message was deleted before the bot got the press (MAX then sends ``"message": null``)."""
        message = self._messages.get(mid) if mid is not None else self._keyboards.get(chat_id)
        if message is None and not message_gone:
            raise ValueError(f"no bot message with a keyboard in chat {chat_id}")
        callback_id = f"cb.{next(self._callback_ids):012d}.standin"
        self._callbacks[callback_id] = chat_id
        stamp = _now_ms()
        callback = {
            "timestamp": stamp,
            "callback_id": callback_id,
            "payload": payload,
            "user": self._user(self._client_id(chat_id, user_id)),
        }
        return self.add_update(
            {
                "update_type": "message_callback",
                "timestamp": stamp,
                "callback": callback,
                "message": None if message_gone else message,
                "user_locale": "ru",
            }
        )

    def press_button(self, chat_id: int, button_text: str, *, user_id: int | None = None) -> JsonDict:
        """Queue a press of the callback button labelled ``button_text`` on the bot's latest keyboard."""
        message = self._keyboards.get(chat_id)
        if message is None:
            raise ValueError(f"the bot has sent no keyboard to chat {chat_id}")
        for row in _keyboard_rows(message["body"]["attachments"]):
            for button in row:
                if button.get("text") == button_text and button.get("type") == "callback":
                    return self.add_callback(
                        chat_id, button["payload"], mid=message["body"]["mid"], user_id=user_id
                    )
        raise ValueError(f"no callback button {button_text!r} on message {message['body']['mid']}")

    def add_attachment(
        self, chat_id: int, kind: str, *, text: str | None = None, user_id: int | None = None
    ) -> JsonDict:
        """Queue a message with one attachment: image, sticker, audio, video, file, location or share."""
        return self.add_message(chat_id, text, user_id=user_id, attachments=[_attachment(kind)])

    def add_contact(
        self, chat_id: int, phone: str, *, own: bool = True, name: str = "Клиент", user_id: int | None = None
    ) -> JsonDict:
        """Queue a shared contact; ``own``: the client shared their own card with a request_contact
        button, so its ``max_info`` is the sender's profile (anyone else's card carries another user)."""
        sender = self._user(self._client_id(chat_id, user_id))
        owner = sender if own else {**sender, "user_id": sender["user_id"] + 1, "first_name": name}
        vcf = f"BEGIN:VCARD\r\nVERSION:3.0\r\nTEL;TYPE=cell:{phone}\r\nFN:{name}\r\nEND:VCARD\r\n"
        contact = {"type": "contact", "payload": {"vcf_info": vcf, "hash": None, "max_info": owner}}
        return self.add_message(chat_id, None, user_id=user_id, attachments=[contact])

    def duplicate_next_updates(self, n: int = 1) -> None:
        """Deliver each of the next ``n`` queued updates twice (at-least-once delivery): once the bot
        confirms such an update (a later marker, or a 200 from its webhook), it comes once more."""
        self._duplicate_budget += n

    @property
    def pending_updates(self) -> list[JsonDict]:
        """Queued updates the bot has not confirmed yet."""
        return [item.update for item in self._pending]

    async def wait_until_consumed(self, timeout: float = 5.0) -> None:
        """Wait until every queued update was confirmed by the bot (or delivered to its webhook)."""
        if not await self._wait_until(lambda: not self._pending, timeout):
            raise TimeoutError(f"{len(self._pending)} update(s) still unconfirmed after {timeout}s")

    async def post_webhook(self, url: str, update: JsonDict, *, secret: str | None = None) -> int:
        """POST one update to a webhook as MAX would (with the secret header when given); its status."""
        if self._client is None:
            raise RuntimeError("the stand-in is not started")
        headers = {SECRET_HEADER: secret} if secret is not None else {}
        async with self._client.post(url, json=update, headers=headers) as response:
            return response.status

    # ------------------------------------------------------------------ what the bot sent

    def sent(self, chat_id: int | None = None, name: str | None = None) -> list[MaxCall]:
        """Accepted calls that act on chats (send_message, answer, action), in arrival order."""
        calls = self._accepted if chat_id is None else self._accepted_by_chat.get(chat_id, [])
        return list(calls) if name is None else [call for call in calls if call.name == name]

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        """Texts of the accepted messages, to one chat or to all."""
        return [call.text or "" for call in self.sent(chat_id, "send_message")]

    def send_times(self, chat_id: int) -> list[float]:
        """``time.monotonic()`` arrival times of accepted messages to a chat (rate checks)."""
        return [call.at for call in self.sent(chat_id, "send_message")]

    def keyboard(self, chat_id: int) -> list[list[JsonDict]]:
        """The rows of the bot's latest inline keyboard in a chat."""
        message = self._keyboards.get(chat_id)
        return _keyboard_rows(message["body"]["attachments"]) if message else []

    async def wait_for_sent(
        self, count: int, timeout: float = 5.0, *, chat_id: int | None = None, name: str | None = None
    ) -> list[MaxCall]:
        """Wait until at least ``count`` calls match :meth:`sent`'s filters; returns all that match."""
        if not await self._wait_until(lambda: len(self.sent(chat_id, name)) >= count, timeout):
            got = [(call.name, call.text) for call in self.sent(chat_id, name)]
            raise TimeoutError(f"expected {count} sent call(s) within {timeout}s, got {len(got)}: {got}")
        return self.sent(chat_id, name)

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        name: str | None,
        status: int = 429,
        *,
        times: int = 1,
        code: str | None = None,
        message: str = "",
        retry_after: int | None = None,
        html: bool = False,
    ) -> None:
        """Answer the next ``times`` calls named ``name`` (None: any call) with an error. ``retry_after``
        adds a Retry-After header; ``html`` answers with a proxy's HTML page instead of JSON."""
        self._faults.append(_Fault(name, status, times, code, message, retry_after, html))

    def fail_for(self, seconds: float, name: str | None = None, status: int = 503) -> None:
        """An outage: for ``seconds`` every call named ``name`` (None: any) fails with ``status``."""
        self._outages.append((time.monotonic() + seconds, name, status))

    def set_latency(self, seconds: float, name: str | None = None) -> None:
        """Delay every answer (or only those to calls named ``name``) by ``seconds``."""
        if name is None:
            self.latency = seconds
        else:
            self._call_latency[name] = seconds

    def set_flood_limit(self, max_per_chat: int | None, per_seconds: float = 1.0) -> None:
        """Answer 429 to a message that would be the (max_per_chat+1)-th in ``per_seconds`` to a chat
        (MAX allows about 2 a second per chat); None switches the limit off."""
        self._flood = None if max_per_chat is None else (max_per_chat, per_seconds)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        name = _ROUTES.get((request.method, path))
        chat_id: int | None = None
        actions = _ACTIONS_PATH.match(path)
        if actions and request.method == "POST":
            name, chat_id = "action", int(actions.group(1))
        chat = _CHAT_PATH.match(path)
        if chat and request.method == "GET":
            name, chat_id = "get_chat", int(chat.group(1))
        if name is None:
            return ApiError(404, f"no method {request.method} {path}").response()
        query = dict(request.query)
        if not self._authorized(request, query):
            return ApiError(401, "Invalid access_token").response()
        body: JsonDict | None = None
        if request.can_read_body:
            try:
                parsed = json.loads(await request.read() or b"null")
            except ValueError:
                return ApiError(400, "Invalid JSON body").response()
            if parsed is not None and not isinstance(parsed, dict):
                return ApiError(400, "The body must be a JSON object").response()
            body = parsed
        return await self._call(name, query, body, chat_id)

    def _authorized(self, request: web.Request, query: dict[str, str]) -> bool:
        # MAX now takes the token only in the header; the query parameter is what older clients sent.
        legacy = query.pop("access_token", None)
        return self.token in (request.headers.get("Authorization"), legacy)

    async def _call(
        self, name: str, query: dict[str, str], body: JsonDict | None, chat_id: int | None
    ) -> web.Response:
        arrived = time.monotonic()
        if name == "answer":
            chat_id = self._callbacks.get(query.get("callback_id", ""))
        delay = self._call_latency.get(name, self.latency)
        if delay > 0:
            await asyncio.sleep(delay)
        retry_after: int | None = None
        try:
            if name == "send_message":
                chat_id = self._message_target(query)
            fault = self._fault(name)
            if fault is not None:
                retry_after = fault.retry_after
                raise ApiError(fault.status, fault.message, code=fault.code, html=fault.html)
            result = await self._run(name, query, body or {}, chat_id, arrived)
        except ApiError as exc:
            self._record(MaxCall(name, query, body, chat_id, arrived, exc.status, None))
            return exc.response(retry_after)
        self._record(MaxCall(name, query, body, chat_id, arrived, 200, result))
        return web.json_response(result)

    async def _run(
        self, name: str, query: dict[str, str], body: JsonDict, chat_id: int | None, at: float
    ) -> Any:
        if name == "me":
            return self._bot_user()
        if name == "updates":
            return await self._get_updates(query)
        if name == "get_subscriptions":
            return {"subscriptions": [_subscription_json(s) for s in self._subscriptions]}
        if name == "subscribe":
            return self._subscribe(body)
        if name == "unsubscribe":
            url = query.get("url", "")
            self._subscriptions = [s for s in self._subscriptions if s.url != url]
            self._notify()
            return {"success": True}
        if name == "send_message":
            return {"message": self._send_message(chat_id, body, at)}
        if name == "answer":
            return self._answer(chat_id, body)
        if name == "get_chat":
            return self._chat(chat_id)
        return self._action(chat_id, body)

    def _fault(self, name: str) -> _Fault | None:
        now = time.monotonic()
        outage = next((o for o in self._outages if o[0] > now and o[1] in (None, name)), None)
        if outage is not None:
            return _Fault(name, outage[2], 1, None, "", None, False)
        for fault in self._faults:
            if fault.name in (None, name) and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _record(self, call: MaxCall) -> None:
        # Recorded when answered; sorting by arrival keeps the order the bot sent in even when latency or
        # a long poll makes answers overtake each other.
        bisect.insort(self.calls, call, key=lambda item: item.at)
        if call.ok and call.name not in _SERVICE_CALLS:
            bisect.insort(self._accepted, call, key=lambda item: item.at)
            bisect.insort(self._accepted_by_chat.setdefault(call.chat_id, []), call, key=lambda item: item.at)
        self._notify()

    # ------------------------------------------------------------------ methods

    def _bot_user(self) -> JsonDict:
        return {
            "user_id": self.bot_user_id,
            "first_name": self.bot_name,
            "last_name": None,
            "username": self.bot_username,
            "is_bot": True,
            "last_activity_time": _now_ms(),
            "name": self.bot_name,
            "description": "A stand-in bot",
            "avatar_url": None,
            "full_avatar_url": None,
            "commands": None,
        }

    async def _get_updates(self, query: dict[str, str]) -> JsonDict:
        limit = _bounded(query, "limit", 100, 1, 1000)
        timeout = _bounded(query, "timeout", 30, 0, 90)
        types = set(query["types"].split(",")) if query.get("types") else None
        marker = _optional_int(query, "marker")
        if marker is not None:
            self._confirm(marker)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            updates, next_marker = self._take_batch(limit, types)
            if updates or self._closing or loop.time() >= deadline:
                return {"updates": updates, "marker": next_marker if updates else (marker or next_marker)}
            await self._wait_for_change(deadline - loop.time())

    def _take_batch(self, limit: int, types: set[str] | None) -> tuple[list[JsonDict], int]:
        if self._subscriptions:
            # A subscribed bot gets its updates by webhook only.
            return [], self._next_marker()
        updates: list[JsonDict] = []
        marker = self._next_marker()
        for item in self._pending:
            if len(updates) == limit:
                break
            # Types the bot did not ask for are passed over (and confirmed with the marker).
            if types is None or item.update["update_type"] in types:
                updates.append(item.update)
            marker = item.seq + 1
        return updates, marker

    def _next_marker(self) -> int:
        return self._pending[0].seq if self._pending else self._next_seq

    def _take_seq(self) -> int:
        self._next_seq += 1
        return self._next_seq - 1

    def _confirm(self, marker: int) -> None:
        done = [item for item in self._pending if item.seq < marker]
        if not done:
            return
        self._pending = [item for item in self._pending if item.seq >= marker]
        for item in done:
            if item.duplicate:
                self._pending.append(_Pending(self._take_seq(), item.update, False))
        self._notify()

    def _subscribe(self, body: JsonDict) -> JsonDict:
        url = body.get("url")
        if not isinstance(url, str):
            raise ApiError(400, "url is required")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.hostname not in ("127.0.0.1", "localhost"):
            raise ApiError(400, "the stand-in posts webhooks to loopback URLs only")
        secret = body.get("secret")
        if secret is not None and not (isinstance(secret, str) and _SECRET_SHAPE.match(secret)):
            raise ApiError(400, "secret: 5 to 256 characters, A-Z, a-z, 0-9 and -")
        types = body.get("update_types")
        self._subscriptions = [s for s in self._subscriptions if s.url != url]
        self._subscriptions.append(
            _Subscription(
                url, _now_ms(), [str(t) for t in types] if isinstance(types, list) else None, secret
            )
        )
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._webhook_worker())
        self._notify()
        return {"success": True}

    def _message_target(self, query: dict[str, str]) -> int | None:
        chat_id = _optional_int(query, "chat_id")
        if chat_id is not None:
            return chat_id
        user_id = _optional_int(query, "user_id")
        if user_id is None:
            return None
        # A message to a user goes to their dialog with the bot.
        return next((chat for chat, user in self._chat_user.items() if user == user_id), user_id)

    def _send_message(self, chat_id: int | None, body: JsonDict, at: float) -> JsonDict:
        if chat_id is None:
            raise ApiError(400, "chat_id or user_id is required")
        if chat_id in self._blocked:
            raise ApiError(403, "chat.denied: the user has blocked the bot", code="chat.denied")
        text = body.get("text")
        attachments = body.get("attachments") or []
        if text is not None and not isinstance(text, str):
            raise ApiError(400, "text must be a string")
        if not text and not attachments:
            raise ApiError(400, "text or attachments are required")
        if text and len(text) > TEXT_LIMIT:
            raise ApiError(400, f"text: size must be between 0 and {TEXT_LIMIT}")
        _check_attachments(attachments)
        self._check_flood(chat_id, at)
        message = self._new_message(chat_id, self._bot_user(), text, attachments)
        if _keyboard_rows(attachments):
            self._keyboards[chat_id] = message
        return message

    def _check_flood(self, chat_id: int, at: float) -> None:
        if self._flood is None:
            return
        most, seconds = self._flood
        if len([t for t in self.send_times(chat_id) if t > at - seconds]) >= most:
            raise ApiError(429, "too.many.requests")

    def _answer(self, chat_id: int | None, body: JsonDict) -> JsonDict:
        if chat_id is None:
            raise ApiError(400, "callback_id: unknown callback")
        notification = body.get("notification")
        if notification is not None and not isinstance(notification, str):
            raise ApiError(400, "notification must be a string")
        return {"success": True}

    def _chat(self, chat_id: int | None) -> JsonDict:
        if chat_id is None or chat_id not in self._chat_user:
            raise ApiError(404, f"chat {chat_id} not found", code="chat.not.found")
        return {
            "chat_id": chat_id,
            "type": "dialog",
            "status": "active",
            "title": None,
            "icon": None,
            "last_event_time": _now_ms(),
            "participants_count": 2,
            "owner_id": None,
            "participants": None,
            "is_public": False,
            "link": None,
            "description": None,
            "dialog_with_user": self._user(self._chat_user[chat_id]),
            "messages_count": None,
        }

    def _action(self, chat_id: int | None, body: JsonDict) -> JsonDict:
        if body.get("action") not in _SENDER_ACTIONS:
            raise ApiError(400, f"action: one of {sorted(_SENDER_ACTIONS)}")
        if chat_id in self._blocked:
            raise ApiError(403, "chat.denied: the user has blocked the bot", code="chat.denied")
        return {"success": True}

    # ------------------------------------------------------------------ message building

    def _client_id(self, chat_id: int, user_id: int | None) -> int:
        user = user_id if user_id is not None else self.user_of(chat_id)
        self._chat_user.setdefault(chat_id, user)
        return user

    def _user(self, user_id: int) -> JsonDict:
        if user_id not in self._users:
            self.set_user(user_id, "Клиент", last_name=str(user_id))
        return dict(self._users[user_id])

    def _incoming(
        self, chat_id: int, user_id: int | None, text: str | None, attachments: list[JsonDict]
    ) -> JsonDict:
        return self._new_message(chat_id, self._user(self._client_id(chat_id, user_id)), text, attachments)

    def _new_message(
        self, chat_id: int, sender: JsonDict, text: str | None, attachments: list[JsonDict]
    ) -> JsonDict:
        number = next(self._mids)
        mid = f"mid.{chat_id & 0xFFFFFFFF:08x}{number:016x}"
        message: JsonDict = {
            "sender": sender,
            "recipient": {"chat_id": chat_id, "chat_type": "dialog", "user_id": self.bot_user_id},
            "timestamp": _now_ms(),
            "body": {"mid": mid, "seq": number, "text": text, "attachments": attachments},
        }
        self._messages[mid] = message
        return message

    # ------------------------------------------------------------------ waiting

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_for_change(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def _wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await self._wait_for_change(remaining)
        return True

    # ------------------------------------------------------------------ webhook delivery

    async def _webhook_worker(self) -> None:
        # Updates go out one at a time, in order; one confirmed (200) or given up is the next one's turn.
        while not self._closing and self._subscriptions:
            if not self._pending:
                await self._wait_for_change(1.0)
                continue
            item = self._pending[0]
            subscription = self._subscriptions[-1]
            wanted = (
                subscription.update_types is None or item.update["update_type"] in subscription.update_types
            )
            if wanted and not await self._deliver(subscription, item.update):
                self.webhook_failed.append(item.update)
            self._confirm(item.seq + 1)

    async def _deliver(self, subscription: _Subscription, update: JsonDict) -> bool:
        assert self._client is not None, "webhook delivery runs only while the stand-in is started"
        headers = {SECRET_HEADER: subscription.secret} if subscription.secret else {}
        for attempt in range(1, self.webhook_max_attempts + 1):
            status: int | None = None
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with self._client.post(subscription.url, json=update, headers=headers) as response:
                    status = response.status
            self.webhook_deliveries.append(
                WebhookDelivery(subscription.url, attempt, status, time.monotonic())
            )
            self._notify()
            if status == 200:
                return True
            await asyncio.sleep(self.webhook_retry_delay * attempt)
        return False


def _now_ms() -> int:
    # MAX stamps everything in milliseconds since the epoch.
    return int(time.time() * 1000)


def _optional_int(query: dict[str, str], key: str) -> int | None:
    value = query.get(key)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, f"{key} must be an integer") from None


def _bounded(query: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    value = _optional_int(query, key)
    if value is None:
        return default
    if not low <= value <= high:
        raise ApiError(400, f"{key} must be between {low} and {high}")
    return value


def _subscription_json(subscription: _Subscription) -> JsonDict:
    return {"url": subscription.url, "time": subscription.time, "update_types": subscription.update_types}


def _keyboard_rows(attachments: list[JsonDict]) -> list[list[JsonDict]]:
    for attachment in attachments:
        if attachment.get("type") == "inline_keyboard":
            rows: list[list[JsonDict]] = attachment["payload"]["buttons"]
            return rows
    return []


def _check_attachments(attachments: Any) -> None:
    if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
        raise ApiError(400, "attachments must be a list of objects")
    for attachment in attachments:
        if attachment.get("type") != "inline_keyboard":
            continue
        rows = (attachment.get("payload") or {}).get("buttons")
        if not isinstance(rows, list) or not rows or not all(isinstance(row, list) and row for row in rows):
            raise ApiError(400, "inline_keyboard: buttons must be non-empty rows")
        for button in itertools.chain.from_iterable(rows):
            text = button.get("text") if isinstance(button, dict) else None
            if not isinstance(text, str) or not 1 <= len(text) <= 128:
                raise ApiError(400, "button text: 1 to 128 characters")
            if button.get("type") == "callback" and not isinstance(button.get("payload"), str):
                raise ApiError(400, "a callback button needs a payload")


def _attachment(kind: str) -> JsonDict:
    url = f"https://i.oneme.ru/standin/{kind}"
    shapes: dict[str, JsonDict] = {
        "image": {"type": "image", "payload": {"photo_id": 1, "token": "photo-token", "url": url}},
        "sticker": {
            "type": "sticker",
            "payload": {"url": url, "code": "sticker-1"},
            "width": 256,
            "height": 256,
        },
        "audio": {"type": "audio", "payload": {"url": url, "token": "audio-token"}},
        "video": {
            "type": "video",
            "payload": {"url": url, "token": "video-token"},
            "width": 640,
            "height": 480,
            "duration": 5,
        },
        "file": {
            "type": "file",
            "payload": {"url": url, "token": "file-token"},
            "filename": "a.pdf",
            "size": 1,
        },
        "location": {"type": "location", "latitude": 55.03, "longitude": 82.92},
        "share": {"type": "share", "payload": {"url": "https://example.org"}, "title": "Ссылка"},
    }
    if kind not in shapes:
        raise ValueError(f"unknown attachment kind {kind!r}; one of {sorted(shapes)}")
    return shapes[kind]
