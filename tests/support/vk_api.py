"""A local stand-in for the VK API (a community's side of it), for tests and benchmarks.

A real HTTP server on 127.0.0.1 (aiohttp): a bot under test reaches it through its library's own HTTP
client (vkbottle's), pointed at it with ``API.API_URL = f"{standin.base_url}/method/"``. Nothing here
contacts VK. It speaks the subset a community bot uses, in API version 5.199:

- ``POST /method/<name>`` (form or query parameters, ``access_token``, ``v``) answering
  ``{"response": ...}`` or ``{"error": {"error_code": N, "error_msg": "...", "request_params": [...]}}``:
  groups.getById, groups.getLongPollServer, messages.send (deduplicated by random_id, as VK does),
  messages.setActivity, messages.sendMessageEventAnswer, and execute with code of the one shape
  ``return [API.messages.send({...}), ...];`` (each inner call recorded as a call of its own);
- the Bots Long Poll server, ``GET|POST /longpoll?act=a_check&key=...&ts=...&wait=...``, with VK's
  ``failed`` answers on demand;
- the Callback API's side: events POSTed to a bot's URL with the secret, and the confirmation request.

Driving it::

    async with VkApiStandin() as vk:
        ...  # start the bot against vk.base_url, then
        await vk.wait_until_polling()  # it asked for the long-poll server
        vk.add_message(1001, "Здравствуйте")
        await vk.wait_for_messages(1, peer_id=1001)
        vk.press_button(1001, "Да")

Like VK, the long poll hands out only events that come after the ts of ``groups.getLongPollServer``:
events added before a bot first asked for the server are never delivered to it.

All methods must be called on the event loop the stand-in was started on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import re
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
from aiohttp import web

__all__ = [
    "DEFAULT_GROUP_ID",
    "DEFAULT_TOKEN",
    "CallbackDelivery",
    "SentMessage",
    "VkApiStandin",
    "VkCall",
]

JsonDict = dict[str, Any]

DEFAULT_TOKEN: Final = "vk1.a.StandInCommunityTokenForTestsOnly_" + "x" * 48
DEFAULT_GROUP_ID: Final = 218_000_001
API_VERSION: Final = "5.199"
TEXT_LIMIT: Final = 4096
# Kept as VK keeps them: a send with a random_id seen within this time is not sent again.
RANDOM_ID_MEMORY_S: Final = 3600.0
# VK names no cap on the updates in one long-poll answer; the same as Telegram's getUpdates.
DEFAULT_BATCH_LIMIT: Final = 100
ALL_BUTTON_ACTIONS: Final = (
    "text",
    "vkpay",
    "open_app",
    "location",
    "open_link",
    "callback",
    "intent_subscribe",
    "intent_unsubscribe",
)
# VK's inline keyboards: 10 buttons, 5 in a row, 6 rows; a label of 40 characters, a payload of 255.
MAX_INLINE_BUTTONS, MAX_IN_ROW, MAX_INLINE_ROWS, MAX_ROWS = 10, 5, 6, 10
MAX_LABEL, MAX_PAYLOAD = 40, 255
_ERRORS: Final[dict[int, str]] = {
    1: "Unknown error occurred",
    5: "User authorization failed: invalid access_token (4).",
    6: "Too many requests per second",
    8: "Invalid request: v (version) is required",
    9: "Flood control",
    10: "Internal server error",
    100: "One of the parameters specified was missing or invalid",
    900: "Can't send messages for users from blacklist",
    901: "Can't send messages for users without permission",
    902: "Can't send messages to this user due to their privacy settings",
    911: "Keyboard format is invalid",
    914: "Message is too long",
}


@dataclass(frozen=True)
class VkCall:
    """One API method call as the stand-in saw it."""

    method: str
    params: JsonDict
    """Parameters as sent (strings), ``access_token`` and ``v`` included."""
    at: float
    """``time.monotonic()`` when the request arrived."""
    error_code: int | None
    """VK's error code, or None when the call succeeded (or its answer was lost)."""
    http_status: int
    """200 for VK's answers, errors included; 5xx for injected server failures; 0 for a lost answer."""
    result: Any = None
    via: str = "http"
    """``http``, or ``execute`` for a call made inside an execute's code."""

    @property
    def ok(self) -> bool:
        """Whether VK carried the call out (a lost answer counts: the bot just never heard)."""
        return self.error_code is None and self.http_status in (0, 200)

    @property
    def peer_id(self) -> int | None:
        """The peer the call acts on, if it names one."""
        return _int(self.params.get("peer_id"))


@dataclass(frozen=True)
class SentMessage:
    """A message the community sent, as the client sees it."""

    id: int
    peer_id: int
    conversation_message_id: int
    text: str
    keyboard: JsonDict | None
    random_id: int
    at: float

    def buttons(self) -> list[JsonDict]:
        """The keyboard's buttons' actions, row after row."""
        rows = self.keyboard.get("buttons", []) if self.keyboard else []
        return [button["action"] for row in rows for button in row]


@dataclass(frozen=True)
class CallbackDelivery:
    """One POST of an event to a bot's Callback API URL."""

    event_type: str
    status: int | None
    body: str
    at: float


@dataclass
class _Fault:
    method: str | None
    remaining: int
    error_code: int | None = None
    http_status: int | None = None
    lose_answer: bool = False


@dataclass
class _Client:
    """What a user's VK app can show."""

    button_actions: tuple[str, ...] = ALL_BUTTON_ACTIONS
    inline_keyboard: bool = True


@dataclass(frozen=True)
class _Executed:
    """An execute's whole answer: its response and, beside it, execute_errors."""

    body: JsonDict


class _MethodError(Exception):
    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or _ERRORS.get(code, "Error"))
        self.code = code


@dataclass
class _Callback:
    url: str
    secret: str
    cursor: int
    attempts: int
    task: asyncio.Task[None] | None = None


@dataclass
class _Dialog:
    cmids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    sent: list[SentMessage] = field(default_factory=list)


class VkApiStandin:
    """The VK API and Bots Long Poll server on 127.0.0.1, recording what a bot does, feeding it events."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        group_id: int = DEFAULT_GROUP_ID,
        *,
        latency: float = 0.0,
        rate_limit: float | None = None,
        batch_limit: int = DEFAULT_BATCH_LIMIT,
    ) -> None:
        """Configure the stand-in; nothing listens until :meth:`start`.

        :param latency: seconds added before answering every method call (see :meth:`set_latency`).
        :param rate_limit: answer error 6 past this many method calls in any second, as VK does past
            20 with a community token; None (the default) lifts the limit.
        :param batch_limit: the most updates in one long-poll answer.
        """
        self.token = token
        self.group_id = group_id
        self.latency = latency
        self.rate_limit = rate_limit
        self.batch_limit = batch_limit

        self.calls: list[VkCall] = []
        """Every method call, in arrival order, failed ones included."""
        self.polls = 0
        """Long-poll requests answered."""
        self.callback_deliveries: list[CallbackDelivery] = []
        self.on_sent: Callable[[SentMessage], None] | None = None
        """Called with every message the community sends (not with a deduplicated resend)."""

        self._events: list[JsonDict] = []
        self._key = ""
        self._key_ts = 0
        self._poll_failures: deque[int] = deque()
        self._duplicate_budget = 0
        self._duplicates: set[str] = set()
        self._event_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._dialogs: dict[int, _Dialog] = {}
        self._random_ids: dict[tuple[int, int], tuple[int, float]] = {}
        self._open_events: dict[str, tuple[int, int]] = {}
        self._answered_events: set[str] = set()
        self._clients: dict[int, _Client] = {}
        self._denied: set[int] = set()
        self._faults: list[_Fault] = []
        self._method_latency: dict[str, float] = {}
        self._recent_calls: deque[float] = deque()
        self._callback: _Callback | None = None

        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._port: int | None = None
        self._methods: dict[str, Callable[[JsonDict], Any]] = {
            "groups.getById": self._get_by_id,
            "groups.getLongPollServer": self._get_long_poll_server,
            "messages.send": self._send,
            "messages.setActivity": self._set_activity,
            "messages.sendMessageEventAnswer": self._send_message_event_answer,
        }
        self.executes = 0
        """execute calls answered (each carries several method calls)."""
        self._new_key()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        if self._runner is not None:
            raise RuntimeError("the stand-in is already started")
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_route("*", "/method/{method}", self._handle_method)
        app.router.add_route("*", "/longpoll", self._handle_long_poll)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = int(sock.getsockname()[1])
        await web.SockSite(runner, sock).start()
        self._runner = runner
        # trust_env=False: callback POSTs go straight to loopback, never through a proxy.
        self._client = aiohttp.ClientSession(trust_env=False)

    async def stop(self) -> None:
        """Answer pending long polls, stop callback delivery and close the server."""
        self._closing = True
        self._notify()
        if self._callback is not None and self._callback.task is not None:
            self._callback.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._callback.task
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
        """``http://127.0.0.1:PORT``: the API base (methods are under ``/method/``)."""
        if self._port is None:
            raise RuntimeError("the stand-in is not started")
        return f"http://127.0.0.1:{self._port}"

    # ------------------------------------------------------------------ clients and their events

    def set_client(
        self, user_id: int, *, callback_buttons: bool = True, inline_keyboard: bool = True
    ) -> None:
        """What the user's app can show (sent with each message as client_info)."""
        actions = (
            ALL_BUTTON_ACTIONS
            if callback_buttons
            else tuple(a for a in ALL_BUTTON_ACTIONS if a != "callback")
        )
        self._clients[user_id] = _Client(actions, inline_keyboard)

    def add_event(self, kind: str, obj: JsonDict) -> JsonDict:
        """Queue an event of any type for the long poll (and the callback URL, if one is set)."""
        number = next(self._event_ids)
        event_id = hashlib.sha1(f"{self.group_id}:{number}".encode()).hexdigest()
        event: JsonDict = {
            "group_id": self.group_id,
            "type": kind,
            "event_id": event_id,
            "v": API_VERSION,
            "object": obj,
        }
        if self._duplicate_budget > 0:
            self._duplicate_budget -= 1
            self._duplicates.add(event_id)
        self._events.append(event)
        self._notify()
        return event

    def add_message(
        self,
        peer_id: int,
        text: str,
        *,
        user_id: int | None = None,
        payload: JsonDict | None = None,
        attachments: Iterable[JsonDict] = (),
        geo: JsonDict | None = None,
        ref: str | None = None,
    ) -> JsonDict:
        """A message from a user to the community (in their dialog, peer_id = user_id by default)."""
        sender = user_id if user_id is not None else peer_id
        message = self._message(peer_id, sender, text)
        message["attachments"] = list(attachments)
        if payload is not None:
            message["payload"] = json.dumps(payload, ensure_ascii=False)
        if geo is not None:
            message["geo"] = geo
        if ref is not None:
            message["ref"], message["ref_source"] = ref, "link"
        client = self._clients.get(sender, _Client())
        info = {
            "button_actions": list(client.button_actions),
            "keyboard": True,
            "inline_keyboard": client.inline_keyboard,
            "carousel": True,
            "lang_id": 0,
        }
        return self.add_event("message_new", {"message": message, "client_info": info})

    def add_start(self, peer_id: int, ref: str | None = None) -> JsonDict:
        """The "Начать" button of a new dialog (sent with a vk.me link's ?ref= when there is one)."""
        return self.add_message(peer_id, "Начать", payload={"command": "start"}, ref=ref)

    def add_attachment(self, peer_id: int, kind: str, text: str = "") -> JsonDict:
        """A message with one attachment: photo, sticker, audio_message, doc, video, wall, link; or geo."""
        owner = peer_id
        number = next(self._message_ids)
        if kind == "geo":
            point = {"type": "point", "coordinates": {"latitude": 55.03, "longitude": 82.92}}
            return self.add_message(peer_id, text, geo=point)
        bodies: dict[str, JsonDict] = {
            "photo": {
                "album_id": -3,
                "date": int(time.time()),
                "id": number,
                "owner_id": owner,
                "has_tags": False,
                "sizes": [
                    {"height": 480, "width": 640, "type": "x", "url": self._file(f"photo{number}.jpg")}
                ],
                "text": "",
            },
            "sticker": {
                "product_id": 1,
                "sticker_id": number,
                "images": [{"url": self._file(f"sticker{number}.png"), "width": 128, "height": 128}],
                "inner_type": "base_sticker_new",
            },
            "audio_message": {
                "duration": 3,
                "id": number,
                "owner_id": owner,
                "link_ogg": self._file(f"voice{number}.ogg"),
                "link_mp3": self._file(f"voice{number}.mp3"),
                "waveform": [0, 4, 12, 4, 0],
            },
            "doc": {
                "id": number,
                "owner_id": owner,
                "title": "scan.pdf",
                "size": 48_213,
                "ext": "pdf",
                "date": int(time.time()),
                "type": 1,
                "url": self._file(f"doc{number}.pdf"),
            },
            "video": {
                "id": number,
                "owner_id": owner,
                "title": "video",
                "duration": 5,
                "date": int(time.time()),
            },
            "wall": {"id": number, "owner_id": -1, "from_id": -1, "date": int(time.time()), "text": "Пост"},
            "link": {"url": self._file("page.html"), "title": "Страница", "description": ""},
        }
        if kind not in bodies:
            raise ValueError(f"unknown attachment kind {kind!r}")
        return self.add_message(peer_id, text, attachments=[{"type": kind, kind: bodies[kind]}])

    def add_edit(self, peer_id: int, conversation_message_id: int, text: str) -> JsonDict:
        """The user edited one of their messages (message_edit carries the message itself)."""
        message = self._message(peer_id, peer_id, text, conversation_message_id=conversation_message_id)
        message["update_time"] = int(time.time()) + 1
        return self.add_event("message_edit", message)

    def press_button(self, peer_id: int, label: str, *, user_id: int | None = None) -> JsonDict:
        """Press a button of the community's latest keyboard in the dialog: a callback button sends
        message_event, a text button a message_new with its label and payload."""
        user = user_id if user_id is not None else peer_id
        for message in reversed(self.sent(peer_id)):
            for action in message.buttons():
                if action.get("label") != label:
                    continue
                payload = _loads(action.get("payload"))
                if action.get("type") == "callback":
                    return self._press_callback(peer_id, user, message, payload)
                return self.add_message(peer_id, label, user_id=user, payload=payload)
            if message.keyboard:
                break
        raise ValueError(f"no button {label!r} on the latest keyboard in dialog {peer_id}")

    def deny_messages(self, user_id: int, *, event: bool = True) -> None:
        """The user has not allowed (or withdrew) messages from the community: sends get error 901."""
        self._denied.add(user_id)
        if event:
            self.add_event("message_deny", {"user_id": user_id})

    def allow_messages(self, user_id: int, *, event: bool = True) -> None:
        """The user allows messages from the community (message_allow)."""
        self._denied.discard(user_id)
        if event:
            self.add_event("message_allow", {"user_id": user_id, "key": "tonebot"})

    def duplicate_next_updates(self, n: int = 1) -> None:
        """Deliver each of the next ``n`` events twice (VK delivers at least once): once seen by a bot, the
        very same event (same event_id) comes again in a later answer."""
        self._duplicate_budget += n

    def fail_next_poll(self, failed: int) -> None:
        """The next long-poll request answers ``{"failed": N}``: 1 history outdated (with the current ts),
        2 the key expired (the key changes), 3 information lost (key and ts change)."""
        if failed not in (1, 2, 3):
            raise ValueError("VK's long poll fails with 1, 2 or 3")
        self._poll_failures.append(failed)

    async def wait_until_polling(self, servers: int = 1, timeout: float = 5.0) -> None:
        """Wait until bots asked for the long-poll server ``servers`` times in all: events added from then
        on reach the latest of them."""
        await self.wait_for_calls("groups.getLongPollServer", servers, timeout)

    @property
    def events(self) -> list[JsonDict]:
        """Every event queued so far, redeliveries of duplicated ones included, in delivery order."""
        return list(self._events)

    @property
    def pending(self) -> int:
        """Events no long poll has fetched yet (since the latest key's ts)."""
        return max(0, len(self._events) - self._key_ts)

    # ------------------------------------------------------------------ what the bot did

    def sent(self, peer_id: int | None = None) -> list[SentMessage]:
        """Messages the community sent (each once, however often its send was retried)."""
        if peer_id is not None:
            dialog = self._dialogs.get(peer_id)
            return list(dialog.sent) if dialog else []
        return sorted((m for d in self._dialogs.values() for m in d.sent), key=lambda m: m.at)

    def sent_texts(self, peer_id: int | None = None) -> list[str]:
        """The texts of :meth:`sent`."""
        return [message.text for message in self.sent(peer_id)]

    def api_calls(self, method: str | None = None, peer_id: int | None = None) -> list[VkCall]:
        """Method calls, failed ones included, by method and peer."""
        return [
            call
            for call in self.calls
            if (method is None or call.method == method) and (peer_id is None or call.peer_id == peer_id)
        ]

    async def wait_for_messages(
        self, count: int, timeout: float = 5.0, *, peer_id: int | None = None
    ) -> list[str]:
        """Wait until at least ``count`` messages were sent (to a peer); their texts."""
        if not await self._wait_until(lambda: len(self.sent(peer_id)) >= count, timeout):
            raise TimeoutError(
                f"expected {count} message(s) within {timeout} s, got {self.sent_texts(peer_id)}"
            )
        return self.sent_texts(peer_id)

    async def wait_for_calls(
        self, method: str, count: int, timeout: float = 5.0, *, peer_id: int | None = None
    ) -> list[VkCall]:
        """Wait until at least ``count`` successful calls of a method were made."""

        def done() -> list[VkCall]:
            return [call for call in self.api_calls(method, peer_id) if call.ok]

        if not await self._wait_until(lambda: len(done()) >= count, timeout):
            raise TimeoutError(f"expected {count} {method} call(s) within {timeout} s, got {len(done())}")
        return done()

    async def wait_until_consumed(self, timeout: float = 5.0) -> None:
        """Wait until a long poll fetched every queued event."""
        if not await self._wait_until(lambda: self.pending == 0, timeout):
            raise TimeoutError(f"{self.pending} event(s) still unfetched after {timeout} s")

    # ------------------------------------------------------------------ faults

    def fail_next(self, method: str | None, error_code: int = 6, *, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` (None: any) with VK error ``error_code``; a call
        inside an execute fails alone (false in its place), as VK reports it."""
        self._faults.append(_Fault(method, times, error_code=error_code))

    def fail_next_http(self, method: str | None, status: int = 502, *, times: int = 1) -> None:
        """Answer the next ``times`` HTTP requests for ``method`` (execute for a batch of sends) with an
        HTTP error page (the front proxy's), not JSON."""
        self._faults.append(_Fault(method, times, http_status=status))

    def lose_next_answers(self, method: str | None, *, times: int = 1) -> None:
        """Carry out the next ``times`` calls, then drop the connection before answering (the bot cannot
        tell whether the call happened: a retried send must not show twice)."""
        self._faults.append(_Fault(method, times, lose_answer=True))

    def set_latency(self, seconds: float, method: str | None = None) -> None:
        """Delay answers to one method (or to all that have no delay of their own)."""
        if method is None:
            self.latency = seconds
        else:
            self._method_latency[method] = seconds

    # ------------------------------------------------------------------ the Callback API's side

    async def confirm(self, url: str) -> tuple[int, str]:
        """VK's confirmation request for a callback server: (HTTP status, body); the body must be the code."""
        return await self.post_event(url, {"type": "confirmation", "group_id": self.group_id})

    async def post_event(self, url: str, event: JsonDict, secret: str | None = None) -> tuple[int, str]:
        """POST one event to a callback URL (with ``secret`` put in, when given): (HTTP status, body)."""
        body = dict(event)
        if secret is not None:
            body["secret"] = secret
        assert self._client is not None, "the stand-in is not started"
        async with self._client.post(url, json=body, timeout=aiohttp.ClientTimeout(total=10)) as response:
            text = await response.text()
            self.callback_deliveries.append(
                CallbackDelivery(str(body.get("type")), response.status, text, time.monotonic())
            )
            self._notify()
            return response.status, text

    def set_callback(self, url: str, secret: str, *, attempts: int = 5) -> None:
        """Deliver every event from now on to ``url`` (with ``secret``), one at a time, in order, each
        until the bot answers "ok" (at most ``attempts`` times), as VK's Callback API does."""
        self._callback = _Callback(url, secret, len(self._events), attempts)
        self._callback.task = asyncio.create_task(self._push_events(self._callback))

    async def wait_until_pushed(self, timeout: float = 5.0) -> None:
        """Wait until every event was delivered to the callback URL."""
        hook = self._callback
        if hook is None:
            raise RuntimeError("no callback URL is set")
        if not await self._wait_until(lambda: hook.cursor >= len(self._events), timeout):
            raise TimeoutError(f"{len(self._events) - hook.cursor} event(s) still undelivered")

    # ------------------------------------------------------------------ HTTP

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["method"]
        params: JsonDict = dict(request.query)
        if request.body_exists:
            form = await request.post()
            params.update({key: value for key, value in form.items() if isinstance(value, str)})
        arrived = time.monotonic()
        delay = self._method_latency.get(name, self.latency)
        if delay > 0:
            await asyncio.sleep(delay)
        fault = self._take_fault(name)
        if fault is not None and fault.http_status is not None:
            self._record(VkCall(name, params, arrived, None, fault.http_status))
            return web.Response(
                status=fault.http_status, text=_error_page(fault.http_status), content_type="text/html"
            )
        try:
            if fault is not None and fault.error_code is not None:
                raise _MethodError(fault.error_code)
            result = self._call(name, params, arrived)
            if name == "execute":
                result = self._execute(str(params.get("code", "")), arrived)
        except _MethodError as exc:
            self._record(VkCall(name, params, arrived, exc.code, 200))
            return _json(
                {
                    "error": {
                        "error_code": exc.code,
                        "error_msg": str(exc),
                        "request_params": _echo(name, params),
                    }
                }
            )
        if fault is not None and fault.lose_answer:
            self._record(VkCall(name, params, arrived, None, 0, result))
            if request.transport is not None:
                request.transport.abort()
            return web.Response()
        self._record(VkCall(name, params, arrived, None, 200, result))
        return _json(result.body if isinstance(result, _Executed) else {"response": result})

    def _call(self, name: str, params: JsonDict, arrived: float) -> Any:
        if params.get("access_token") != self.token:
            raise _MethodError(5)
        if not params.get("v"):
            raise _MethodError(8)
        handler = self._methods.get(name)
        if handler is None and name != "execute":
            raise _MethodError(3, "Unknown method passed")
        if self.rate_limit is not None:
            window = self._recent_calls
            while window and window[0] <= arrived - 1.0:
                window.popleft()
            if len(window) >= self.rate_limit:
                raise _MethodError(6)
            window.append(arrived)
        return handler(params) if handler is not None else None

    def _execute(self, code: str, arrived: float) -> _Executed:
        """Run `return [API.method({...}), ...];`: each call on its own, a failed one as false in its place
        and its error in execute_errors, as VK does."""
        self.executes += 1
        results: list[Any] = []
        errors: list[JsonDict] = []
        for name, args in _calls_in(code):
            params = {
                key: value if isinstance(value, str) else json.dumps(value) for key, value in args.items()
            }
            handler = self._methods.get(name)
            fault = self._take_fault(name)
            try:
                if handler is None:
                    raise _MethodError(3, "Unknown method passed")
                if fault is not None and fault.error_code is not None:
                    raise _MethodError(fault.error_code)
                result = handler(params)
            except _MethodError as exc:
                self._record(VkCall(name, params, arrived, exc.code, 200, via="execute"))
                results.append(False)
                errors.append({"method": name, "error_code": exc.code, "error_msg": str(exc)})
                continue
            self._record(VkCall(name, params, arrived, None, 200, result, via="execute"))
            results.append(result)
        body: JsonDict = {"response": results}
        if errors:
            body["execute_errors"] = errors
        return _Executed(body)

    async def _handle_long_poll(self, request: web.Request) -> web.StreamResponse:
        params: JsonDict = dict(request.query)
        if request.body_exists:
            form = await request.post()
            params.update({key: value for key, value in form.items() if isinstance(value, str)})
        if params.get("act") != "a_check":
            return _json({"failed": 4, "min_version": 0, "max_version": 3})
        answer = await self._a_check(params)
        self.polls += 1
        self._notify()
        return _json(answer)

    async def _a_check(self, params: JsonDict) -> JsonDict:
        if self._poll_failures:
            failed = self._poll_failures.popleft()
            if failed == 1:
                return {"failed": 1, "ts": str(len(self._events))}
            self._new_key(keep_ts=failed == 2)
            return {"failed": failed}
        if params.get("key") != self._key:
            return {"failed": 2}
        ts = _int(params.get("ts"))
        if ts is None or ts < 0:
            return {"failed": 1, "ts": str(len(self._events))}
        ts = min(ts, len(self._events))
        wait = min(max(_int(params.get("wait")) or 0, 0), 90)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while len(self._events) <= ts and not self._closing and loop.time() < deadline:
            await self._wait_for_change(deadline - loop.time())
        updates = self._events[ts : ts + self.batch_limit]
        self._key_ts = max(self._key_ts, ts + len(updates))
        for event in updates:
            if event["event_id"] in self._duplicates:
                # Seen once: VK may hand the very same event over again.
                self._duplicates.discard(event["event_id"])
                self._events.append(event)
        return {"ts": str(ts + len(updates)), "updates": updates}

    # ------------------------------------------------------------------ methods

    def _get_by_id(self, params: JsonDict) -> JsonDict:
        group = {
            "id": self.group_id,
            "name": "Сибирские сети",
            "screen_name": f"club{self.group_id}",
            "is_closed": 0,
            "type": "group",
        }
        return {"groups": [group], "profiles": []}

    def _get_long_poll_server(self, params: JsonDict) -> JsonDict:
        if _int(params.get("group_id")) != self.group_id:
            raise _MethodError(
                100, "One of the parameters specified was missing or invalid: group_id is invalid"
            )
        self._key_ts = max(self._key_ts, len(self._events))
        return {"key": self._key, "server": f"{self.base_url}/longpoll", "ts": str(len(self._events))}

    def _send(self, params: JsonDict) -> Any:
        random_id = _int(params.get("random_id"))
        if random_id is None:
            raise _MethodError(
                100, "One of the parameters specified was missing or invalid: random_id is required"
            )
        text = str(params.get("message") or "")
        if not text.strip() and not params.get("attachment"):
            raise _MethodError(
                100, "One of the parameters specified was missing or invalid: message is empty"
            )
        if len(text) > TEXT_LIMIT:
            raise _MethodError(914)
        keyboard = _keyboard(params.get("keyboard"))
        if "peer_ids" in params:
            peers = [int(peer) for peer in str(params["peer_ids"]).split(",")]
            sent = [self._deliver(peer, text, keyboard, random_id) for peer in peers]
            return [
                {
                    "peer_id": m.peer_id,
                    "message_id": m.id,
                    "conversation_message_id": m.conversation_message_id,
                }
                for m in sent
            ]
        peer = _int(params.get("peer_id")) or _int(params.get("user_id"))
        if peer is None:
            raise _MethodError(
                100, "One of the parameters specified was missing or invalid: peer_id is undefined"
            )
        return self._deliver(peer, text, keyboard, random_id).id

    def _deliver(self, peer: int, text: str, keyboard: JsonDict | None, random_id: int) -> SentMessage:
        if peer in self._denied:
            raise _MethodError(901)
        now = time.monotonic()
        dialog = self._dialogs.setdefault(peer, _Dialog())
        if random_id:
            seen = self._random_ids.get((peer, random_id))
            if seen is not None and now - seen[1] < RANDOM_ID_MEMORY_S:
                # VK's idempotency: the same random_id to the same peer is the message sent before.
                return next(m for m in dialog.sent if m.id == seen[0])
        message = SentMessage(
            next(self._message_ids), peer, next(dialog.cmids), text, keyboard, random_id, now
        )
        dialog.sent.append(message)
        if random_id:
            self._random_ids[peer, random_id] = (message.id, now)
        if self.on_sent is not None:
            self.on_sent(message)
        return message

    def _set_activity(self, params: JsonDict) -> int:
        if params.get("type") not in ("typing", "audiomessage") or _int(params.get("peer_id")) is None:
            raise _MethodError(100, "One of the parameters specified was missing or invalid: type is invalid")
        return 1

    def _send_message_event_answer(self, params: JsonDict) -> int:
        event_id = str(params.get("event_id"))
        who = (_int(params.get("user_id")), _int(params.get("peer_id")))
        if self._open_events.get(event_id) != who or event_id in self._answered_events:
            raise _MethodError(
                100, "One of the parameters specified was missing or invalid: event_id is invalid"
            )
        self._answered_events.add(event_id)
        return 1

    # ------------------------------------------------------------------ helpers

    def _record(self, call: VkCall) -> None:
        self.calls.append(call)
        self._notify()

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method in (None, method) and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _new_key(self, *, keep_ts: bool = True) -> None:
        self._key = hashlib.sha1(f"{self.group_id}:{time.monotonic_ns()}".encode()).hexdigest()
        if not keep_ts:
            # Information lost: whatever was not fetched is gone for the bot.
            self._key_ts = len(self._events)

    def _message(
        self, peer_id: int, sender: int, text: str, *, conversation_message_id: int | None = None
    ) -> JsonDict:
        dialog = self._dialogs.setdefault(peer_id, _Dialog())
        return {
            "date": int(time.time()),
            "from_id": sender,
            "id": next(self._message_ids),
            "out": 0,
            "version": next(self._message_ids),
            "attachments": [],
            "conversation_message_id": conversation_message_id or next(dialog.cmids),
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
            "peer_id": peer_id,
            "random_id": 0,
            "text": text,
        }

    def _press_callback(self, peer_id: int, user: int, message: SentMessage, payload: Any) -> JsonDict:
        event_id = hashlib.sha1(f"press:{next(self._event_ids)}".encode()).hexdigest()[:12]
        self._open_events[event_id] = (user, peer_id)
        obj = {
            "user_id": user,
            "peer_id": peer_id,
            "event_id": event_id,
            "payload": payload,
            "conversation_message_id": message.conversation_message_id,
        }
        return self.add_event("message_event", obj)

    def _file(self, name: str) -> str:
        return f"{self.base_url}/files/{name}"

    async def _push_events(self, hook: _Callback) -> None:
        while not self._closing:
            if hook.cursor >= len(self._events):
                await self._wait_for_change(1.0)
                continue
            event = self._events[hook.cursor]
            for _ in range(hook.attempts):
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    status, body = await self.post_event(hook.url, event, hook.secret)
                    if status == 200 and body == "ok":
                        break
                await asyncio.sleep(0.05)
            hook.cursor += 1
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_for_change(self, timeout: float) -> None:
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(timeout, 0))

    async def _wait_until(self, condition: Callable[[], object], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await self._wait_for_change(remaining)
        return True


# ---------------------------------------------------------------------- module helpers


def _json(body: Any) -> web.Response:
    return web.json_response(body, dumps=lambda obj: json.dumps(obj, ensure_ascii=False))


def _int(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return None


def _loads(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _echo(method: str, params: JsonDict) -> list[JsonDict]:
    """VK's request_params: what the call sent, the token left out."""
    echoed = [{"key": "method", "value": method}, {"key": "oauth", "value": "1"}]
    return echoed + [{"key": k, "value": str(v)} for k, v in params.items() if k != "access_token"]


_API_CALL = re.compile(r"\s*API\.([A-Za-z]+\.[A-Za-z]+)\(")
MAX_EXECUTE_CALLS: Final = 25


def _calls_in(code: str) -> list[tuple[str, JsonDict]]:
    """The calls of `return [API.a.b({...}), ...];` (the one shape of VKScript the stand-in reads)."""
    text = code.strip()
    if not text.startswith("return [") or not text.endswith("];"):
        raise _MethodError(12, "Unable to compile code: only return [API.x.y({...}), ...]; is understood")
    body, at, calls = text[len("return [") : -2], 0, []
    decoder = json.JSONDecoder()
    while at < len(body):
        found = _API_CALL.match(body, at)
        if found is None:
            raise _MethodError(12, f"Unable to compile code at {at}")
        try:
            args, at = decoder.raw_decode(body, found.end())
        except ValueError as exc:
            raise _MethodError(12, f"Unable to compile code: {exc}") from exc
        if not isinstance(args, dict) or body[at : at + 1] != ")":
            raise _MethodError(12, f"Unable to compile code at {at}")
        calls.append((found.group(1), args))
        at += 1
        if body[at : at + 1] == ",":
            at += 1
    if len(calls) > MAX_EXECUTE_CALLS:
        raise _MethodError(13, "Runtime error occurred during code invocation: Too many API calls")
    return calls


def _error_page(status: int) -> str:
    return f"<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center></body></html>"


def _keyboard(raw: Any) -> JsonDict | None:
    """A keyboard checked against VK's rules; error 911 when it breaks one."""
    if raw is None or raw == "":
        return None
    try:
        keyboard = json.loads(str(raw))
        rows = keyboard["buttons"]
        inline = bool(keyboard.get("inline"))
        buttons = [button for row in rows for button in row]
        actions = [button["action"] for button in buttons]
    except (ValueError, KeyError, TypeError) as exc:
        raise _MethodError(911) from exc
    too_many = len(buttons) > MAX_INLINE_BUTTONS if inline else len(buttons) > 40
    too_long = any(len(row) > MAX_IN_ROW for row in rows) or len(rows) > (
        MAX_INLINE_ROWS if inline else MAX_ROWS
    )
    labels = [
        str(action.get("label", "")) for action in actions if action.get("type") in ("text", "callback")
    ]
    # VK takes a payload as a JSON string; vkbottle also passes objects through, which VK accepts as well.
    payloads = [
        p if isinstance(p, str | None) else json.dumps(p) for p in (a.get("payload") for a in actions)
    ]
    if (
        too_many
        or too_long
        or any(not label or len(label) > MAX_LABEL for label in labels)
        or any(len(p or "") > MAX_PAYLOAD for p in payloads)
        or any(action.get("type") == "callback" and not action.get("payload") for action in actions)
    ):
        raise _MethodError(911)
    return dict(keyboard)
