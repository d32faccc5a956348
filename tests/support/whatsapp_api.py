"""A local stand-in for the WhatsApp Cloud API, for tests and benchmarks.

Two sides, both real HTTP on 127.0.0.1 (aiohttp); nothing here ever contacts Meta:

* the Graph API a bot sends through, with its own unmodified client (pywa's httpx session):
  ``POST /{version}/{phone_number_id}/messages`` for text, interactive reply buttons and lists, and
  read receipts with the typing indicator. It checks the Bearer token, the phone number id, WhatsApp's
  limits on interactive messages and the 24-hour window, and answers as the Graph API does:
  ``{"messaging_product": "whatsapp", "contacts": [...], "messages": [{"id": "wamid..."}]}`` or
  ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``;
* Meta's webhook: a driver POSTing signed envelopes (a client's messages, button and list replies,
  statuses of the bot's messages) to the bot's webhook URL, one at a time per call, as Meta signs them
  (``X-Hub-Signature-256``), or signed wrongly, or not at all.

Faults can be injected: the next N sends answered with 429/130429 or a 5xx, latency, duplicate webhook
deliveries, 131047 for a chat whose window is closed. Every request is recorded.

    async with GraphApiStandin() as api:
        settings = WhatsAppSettings.from_env(api.env())       # the bot's client points at api.base_url
        api.connect("http://127.0.0.1:8080/whatsapp/webhook")  # where the driver posts
        await api.client_text("79130000001", "Здравствуйте")
        calls = await api.wait_for_sent(1, to="79130000001")
        await api.press("79130000001", "Все лампочки горят")

One simplification: the real Cloud API accepts a message outside the 24-hour window and reports 131047 later
in a "failed" status; the stand-in refuses the request itself (``fail_status`` posts the late kind).
All methods must be called from the event loop the stand-in was started on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Literal, Self
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

__all__ = [
    "DEFAULT_APP_SECRET",
    "DEFAULT_PHONE_NUMBER_ID",
    "DEFAULT_TOKEN",
    "DEFAULT_VERIFY_TOKEN",
    "SIGNATURE_HEADER",
    "GraphApiStandin",
    "GraphCall",
    "WebhookPost",
    "sign",
]

JsonDict = dict[str, Any]
Signing = Literal["right", "wrong", "none"]

DEFAULT_TOKEN: Final = "EAAStandInAccessTokenForTestsOnly0123456789"
DEFAULT_PHONE_NUMBER_ID: Final = "106540352242922"
DEFAULT_APP_SECRET: Final = "0123456789abcdef0123456789abcdef"
DEFAULT_VERIFY_TOKEN: Final = "stand-in-verify-token"
WABA_ID: Final = "102290129340398"
DISPLAY_NUMBER: Final = "15550783881"
SIGNATURE_HEADER: Final = "X-Hub-Signature-256"
WINDOW_S: Final = 24 * 3600

_VERSION: Final = re.compile(r"^v\d+\.\d+$")
_LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
_REENGAGEMENT: Final = (
    "Message failed to send because more than 24 hours have passed since the customer last replied to "
    "this number."
)
_HTML_502: Final = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
    "</body></html>"
)


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value Meta sends with ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class GraphCall:
    """One Graph API request as the stand-in saw it, with the status it answered."""

    kind: str
    """``text``, ``interactive``, ``typing`` (a read receipt with the indicator), ``read``, or ``other``."""
    to: str | None
    body: JsonDict
    status: int
    at: float
    """``time.monotonic()`` when the request arrived."""
    wamid: str | None = None
    """The id given to an accepted message."""
    error_code: int | None = None

    @property
    def ok(self) -> bool:
        """Whether the stand-in accepted the call."""
        return self.status == 200

    @property
    def text(self) -> str:
        """What the client reads: a text's body, or an interactive message's body."""
        if self.kind == "text":
            return str(self.body.get("text", {}).get("body", ""))
        if self.kind == "interactive":
            return str(self.body.get("interactive", {}).get("body", {}).get("text", ""))
        return ""

    @property
    def interactive_type(self) -> str | None:
        """``button`` or ``list`` for an interactive message."""
        return str(self.body["interactive"].get("type")) if self.kind == "interactive" else None

    @property
    def choices(self) -> list[JsonDict]:
        """Reply buttons as ``{"id", "title"}``, or list rows as ``{"id", "title", "description"?}``."""
        if self.kind != "interactive":
            return []
        action = self.body["interactive"].get("action", {})
        if self.interactive_type == "button":
            return [dict(button["reply"]) for button in action.get("buttons", [])]
        return [dict(row) for section in action.get("sections", []) for row in section.get("rows", [])]


@dataclass(frozen=True)
class WebhookPost:
    """One POST of an envelope to the bot's webhook."""

    body: JsonDict
    status: int | None
    """The webhook's HTTP status; None when the connection failed."""
    error: str | None
    at: float


@dataclass
class _Fault:
    status: int
    code: int
    message: str
    remaining: int
    kinds: frozenset[str]
    to: str | None
    as_html: bool


class _GraphError(Exception):
    """A Graph API error answer, raised while checking a request."""

    def __init__(
        self, status: int, code: int, message: str, *, subcode: int | None = None, details: str = ""
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.subcode, self.details = subcode, details

    def body(self) -> JsonDict:
        error: JsonDict = {
            "message": self.message,
            "type": "OAuthException",
            "code": self.code,
            "fbtrace_id": f"AStandIn{self.code}",
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        return {"error": error}


def _invalid(details: str) -> _GraphError:
    return _GraphError(400, 131009, "(#131009) Parameter value is not valid", details=details)


def _check_length(value: Any, low: int, high: int, what: str) -> None:
    if not isinstance(value, str) or not low <= len(value) <= high:
        shown = len(value) if isinstance(value, str) else type(value).__name__
        raise _invalid(f"{what} must be {low} to {high} characters, got {shown}")


def _check_interactive(interactive: Any) -> None:
    """WhatsApp's rules for interactive reply buttons and lists (what the Graph API refuses)."""
    if not isinstance(interactive, dict):
        raise _invalid("interactive must be an object")
    kind = interactive.get("type")
    action = interactive.get("action") or {}
    body = (interactive.get("body") or {}).get("text")
    if kind == "button":
        _check_length(body, 1, 1024, "body.text")
        buttons = action.get("buttons") or []
        if not 1 <= len(buttons) <= 3:
            raise _invalid(f"a message has 1 to 3 reply buttons, got {len(buttons)}")
        replies = [button.get("reply") or {} for button in buttons]
        for button, reply in zip(buttons, replies, strict=True):
            if button.get("type") != "reply":
                raise _invalid("button type must be reply")
            _check_length(reply.get("id"), 1, 256, "button id")
            _check_length(reply.get("title"), 1, 20, "button title")
        if len({r["id"] for r in replies}) < len(replies) or len({r["title"] for r in replies}) < len(
            replies
        ):
            raise _invalid("button ids and titles must be unique")
    elif kind == "list":
        _check_length(body, 1, 4096, "body.text")
        _check_length(action.get("button"), 1, 20, "list button")
        sections = action.get("sections") or []
        rows = [row for section in sections for row in section.get("rows") or []]
        if not 1 <= len(sections) <= 10 or not 1 <= len(rows) <= 10:
            raise _invalid(f"a list has 1 to 10 rows in all, got {len(rows)}")
        for section in sections:
            if len(sections) > 1 or "title" in section:
                _check_length(section.get("title"), 1, 24, "section title")
        for row in rows:
            _check_length(row.get("id"), 1, 200, "row id")
            _check_length(row.get("title"), 1, 24, "row title")
            if "description" in row:
                _check_length(row["description"], 1, 72, "row description")
        if len({row["id"] for row in rows}) < len(rows):
            raise _invalid("row ids must be unique")
    else:
        raise _invalid(f"interactive type {kind!r} is not served by the stand-in")


def _bsuid(wa_id: str) -> str:
    """A client's business-scoped user id (Meta sends it beside the wa_id; pywa reads it)."""
    return f"RU.{int(hashlib.sha256(wa_id.encode()).hexdigest()[:15], 16)}"


def _kind(body: JsonDict) -> str:
    if body.get("status") == "read":
        return "typing" if body.get("typing_indicator") else "read"
    if body.get("type") in ("text", "interactive"):
        return str(body["type"])
    return "other"


class GraphApiStandin:
    """The WhatsApp Cloud API on 127.0.0.1: records what a bot sends and posts it webhooks.

    Use ``async with GraphApiStandin() as api:`` or ``await api.start()`` / ``await api.stop()``.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
        app_secret: str = DEFAULT_APP_SECRET,
        verify_token: str = DEFAULT_VERIFY_TOKEN,
        latency: float = 0.0,
        strict_windows: bool = False,
    ) -> None:
        """Configure the stand-in; nothing listens until :meth:`start`.

        :param latency: seconds added before answering every Graph API request.
        :param strict_windows: refuse (131047) messages to clients who never wrote through the driver, as
            WhatsApp does; off by default so a test may send to any number.
        """
        self.token = token
        self.phone_number_id = phone_number_id
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.latency = latency
        self.strict_windows = strict_windows
        self.signing: Signing = "right"
        """How the driver signs its posts: with the app secret, with another secret, or not at all."""

        self.calls: list[GraphCall] = []
        """Every Graph API request, in arrival order, refused ones included."""
        self.webhook_posts: list[WebhookPost] = []
        """Every POST the driver made, duplicates included."""
        self.send_listeners: list[Callable[[GraphCall], None]] = []
        """Called with every accepted message (a benchmark's clients wake up on it)."""
        self._accepted: list[GraphCall] = []
        self._accepted_to: dict[str, list[GraphCall]] = {}
        self._by_wamid: dict[str, GraphCall] = {}
        self._inbound_ids: set[str] = set()
        self._last_inbound: dict[str, float] = {}
        self._closed_windows: set[str] = set()
        self._faults: list[_Fault] = []
        self._duplicates = 0
        self._out_ids = itertools.count(1)
        self._in_ids = itertools.count(1)
        self._webhook_url: str | None = None
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        if self._runner is not None:
            raise RuntimeError("the stand-in is already started")
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/{version}/{phone_number_id}/messages", self._messages)
        app.router.add_route("*", "/{tail:.*}", self._unknown_path)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = int(sock.getsockname()[1])
        await web.SockSite(runner, sock).start()
        self._runner = runner
        # trust_env=False: webhook POSTs go straight to loopback, never through a proxy.
        self._client = aiohttp.ClientSession(trust_env=False)

    async def stop(self) -> None:
        """Close the driver's session and the server."""
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
        """What WHATSAPP_API_BASE must be for a bot to send here."""
        if self._port is None:
            raise RuntimeError("the stand-in is not started")
        return f"http://127.0.0.1:{self._port}"

    def env(self) -> dict[str, str]:
        """The WHATSAPP_* settings of a bot talking to this stand-in."""
        return {
            "WHATSAPP_TOKEN": self.token,
            "WHATSAPP_PHONE_NUMBER_ID": self.phone_number_id,
            "WHATSAPP_APP_SECRET": self.app_secret,
            "WHATSAPP_VERIFY_TOKEN": self.verify_token,
            "WHATSAPP_API_BASE": self.base_url,
        }

    # ------------------------------------------------------------------ what the bot sent

    def sent(self, to: str | None = None, kind: str | None = None) -> list[GraphCall]:
        """Accepted messages (text and interactive; read receipts are in :meth:`typing_calls`)."""
        calls = self._accepted if to is None else self._accepted_to.get(to, [])
        return list(calls) if kind is None else [call for call in calls if call.kind == kind]

    def sent_texts(self, to: str) -> list[str]:
        """The texts a client read, in order (interactive messages' bodies included)."""
        return [call.text for call in self.sent(to)]

    def refused(self, to: str | None = None) -> list[GraphCall]:
        """Message sends the stand-in answered with an error."""
        return [
            c
            for c in self.calls
            if not c.ok and c.kind in ("text", "interactive") and (to is None or c.to == to)
        ]

    def typing_calls(self, message_id: str | None = None) -> list[GraphCall]:
        """Accepted read receipts with the typing indicator (for one inbound message, if given)."""
        return [
            c
            for c in self.calls
            if c.ok and c.kind == "typing" and (message_id is None or c.body.get("message_id") == message_id)
        ]

    def send_times(self, to: str) -> list[float]:
        """``time.monotonic()`` arrival times of the accepted messages to a client."""
        return [call.at for call in self.sent(to)]

    async def wait_for_sent(
        self, count: int, timeout: float = 5.0, *, to: str | None = None
    ) -> list[GraphCall]:
        """Wait until at least ``count`` messages (to ``to``) were accepted; returns them all."""
        deadline = time.monotonic() + timeout
        while len(self.sent(to)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got = [(c.kind, c.text[:60]) for c in self.sent(to)]
                raise TimeoutError(f"expected {count} message(s) within {timeout}s, got {len(got)}: {got}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return self.sent(to)

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        times: int = 1,
        *,
        status: int = 429,
        code: int = 130429,
        message: str | None = None,
        to: str | None = None,
        kinds: Iterable[str] = ("text", "interactive"),
        as_html: bool = False,
    ) -> None:
        """Answer the next ``times`` requests of these kinds (to ``to``, if given) with a Graph error;
        ``as_html`` answers with the HTML page a proxy in front of the API serves on a 502."""
        text = message or {
            130429: "(#130429) Rate limit hit",
            80007: "(#80007) Rate limit issues",
            131000: "(#131000) Something went wrong",
            131026: "(#131026) Message undeliverable",
            131047: "(#131047) Re-engagement message",
        }.get(code, f"(#{code}) Error")
        self._faults.append(_Fault(status, code, text, times, frozenset(kinds), to, as_html))

    def close_window(self, wa_id: str) -> None:
        """Refuse messages to this client with 131047, as if they last wrote over 24 hours ago."""
        self._closed_windows.add(wa_id)

    def duplicate_next_posts(self, n: int = 1) -> None:
        """Post each of the next ``n`` envelopes twice, as Meta does when an answer comes late."""
        self._duplicates += n

    # ------------------------------------------------------------------ Graph API

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        if self.latency:
            await asyncio.sleep(self.latency)
        raw = await request.read()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            body = {"raw": raw.decode("utf-8", "replace")}
        kind = _kind(body)
        to = str(body["to"]) if body.get("to") is not None else None
        fault = self._take_fault(kind, to)
        if fault is not None:
            self._record(GraphCall(kind, to, body, fault.status, arrived, error_code=fault.code))
            if fault.as_html:
                return web.Response(status=fault.status, text=_HTML_502, content_type="text/html")
            error = _GraphError(fault.status, fault.code, fault.message)
            return web.json_response(error.body(), status=fault.status)
        try:
            result, wamid = self._accept(request, body, kind, to)
        except _GraphError as exc:
            self._record(GraphCall(kind, to, body, exc.status, arrived, error_code=exc.code))
            return web.json_response(exc.body(), status=exc.status)
        self._record(GraphCall(kind, to, body, 200, arrived, wamid))
        return web.json_response(result)

    def _take_fault(self, kind: str, to: str | None) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and kind in fault.kinds and fault.to in (None, to):
                fault.remaining -= 1
                return fault
        return None

    def _accept(
        self, request: web.Request, body: JsonDict, kind: str, to: str | None
    ) -> tuple[JsonDict, str | None]:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            raise _GraphError(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if not _VERSION.match(request.match_info["version"]):
            raise _GraphError(400, 2500, "Unknown path components")
        phone_number_id = request.match_info["phone_number_id"]
        if phone_number_id != self.phone_number_id:
            raise _GraphError(
                400,
                100,
                f"Unsupported post request. Object with ID '{phone_number_id}' does not exist, cannot be "
                "loaded due to missing permissions, or does not support this operation.",
                subcode=33,
            )
        if body.get("messaging_product") != "whatsapp":
            raise _GraphError(400, 100, "(#100) The parameter messaging_product is required.")
        if kind in ("read", "typing"):
            if body.get("message_id") not in self._inbound_ids:
                raise _GraphError(400, 100, "(#100) Invalid parameter", details="unknown message_id")
            return {"success": True}, None
        if kind == "other":
            raise _GraphError(400, 100, "(#100) The stand-in serves text and interactive messages only")
        if not to or not to.isdigit():
            raise _GraphError(400, 100, "(#100) Invalid parameter", details="to must be a wa_id")
        if kind == "text":
            text = (body.get("text") or {}).get("body")
            if not isinstance(text, str) or not text.strip():
                raise _GraphError(400, 100, "(#100) The parameter text['body'] is required.")
            if len(text) > 4096:
                raise _GraphError(400, 100, "(#100) Param text['body'] must be at most 4096 characters long.")
        else:
            _check_interactive(body.get("interactive"))
        last = self._last_inbound.get(to)
        outside = (last is None and self.strict_windows) or (
            last is not None and time.time() - last >= WINDOW_S
        )
        if to in self._closed_windows or outside:
            raise _GraphError(400, 131047, "(#131047) Re-engagement message", details=_REENGAGEMENT)
        wamid = f"wamid.HBgLOUT{next(self._out_ids):012d}FQIAERgS"
        result = {
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": wamid}],
        }
        return result, wamid

    def _record(self, call: GraphCall) -> None:
        self.calls.append(call)
        if call.ok and call.kind in ("text", "interactive") and call.to is not None:
            self._accepted.append(call)
            self._accepted_to.setdefault(call.to, []).append(call)
            if call.wamid:
                self._by_wamid[call.wamid] = call
            for listener in self.send_listeners:
                listener(call)
        self._changed.set()

    async def _unknown_path(self, request: web.Request) -> web.StreamResponse:
        error = _GraphError(404, 2500, f"Unknown path components: {request.path}")
        self._record(GraphCall("other", None, {"path": request.path}, 404, time.monotonic(), error_code=2500))
        return web.json_response(error.body(), status=404)

    # ------------------------------------------------------------------ webhook driver

    def connect(self, url: str) -> None:
        """Where the driver posts (Meta's "callback URL"); loopback addresses only."""
        host = urlsplit(url).hostname or ""
        if host not in _LOOPBACK:
            raise ValueError(f"the stand-in posts to loopback addresses only, not {host!r}")
        self._webhook_url = url

    async def verify(
        self, token: str | None = None, *, challenge: str = "1158201444", mode: str = "subscribe"
    ) -> tuple[int, str]:
        """Meta's subscription handshake (GET); the webhook's status and body."""
        assert self._client is not None and self._webhook_url is not None, "start() and connect() first"
        params = {
            "hub.mode": mode,
            "hub.verify_token": token or self.verify_token,
            "hub.challenge": challenge,
        }
        async with self._client.get(self._webhook_url, params=params) as response:
            return response.status, await response.text()

    async def post(self, value: JsonDict, *, phone_number_id: str | None = None) -> WebhookPost:
        """POST one envelope with this ``value`` (``metadata`` filled in), signed as :attr:`signing` says."""
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": DISPLAY_NUMBER,
                "phone_number_id": phone_number_id or self.phone_number_id,
            },
            **value,
        }
        envelope = {
            "object": "whatsapp_business_account",
            "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}],
        }
        # Meta escapes every non-ASCII character; the signature covers the body exactly as sent.
        raw = json.dumps(envelope, ensure_ascii=True, separators=(",", ":")).encode()
        post = await self.post_raw(raw, envelope)
        if self._duplicates > 0:
            self._duplicates -= 1
            await self.post_raw(raw, envelope)
        return post

    async def post_raw(self, raw: bytes, envelope: JsonDict | None = None) -> WebhookPost:
        """POST a body as it is, signed as :attr:`signing` says."""
        assert self._client is not None and self._webhook_url is not None, "start() and connect() first"
        headers = {"Content-Type": "application/json"}
        if self.signing == "right":
            headers[SIGNATURE_HEADER] = sign(self.app_secret, raw)
        elif self.signing == "wrong":
            headers[SIGNATURE_HEADER] = sign(self.app_secret + "-wrong", raw)
        status: int | None = None
        error: str | None = None
        try:
            async with self._client.post(self._webhook_url, data=raw, headers=headers) as response:
                status = response.status
                await response.read()
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"
        post = WebhookPost(envelope or {}, status, error, time.monotonic())
        self.webhook_posts.append(post)
        return post

    async def client_sends(
        self,
        wa_id: str,
        kind: str,
        content: JsonDict | list[JsonDict],
        *,
        at: datetime | None = None,
        name: str = "Клиент",
        context: JsonDict | None = None,
    ) -> str:
        """A client's message of any type (``content`` goes under its type); returns its wamid."""
        wamid = f"wamid.HBgLIN{next(self._in_ids):012d}FQIAEhgU"
        moment = (at or datetime.now(UTC)).timestamp()
        message: JsonDict = {
            "from": wa_id,
            "from_user_id": _bsuid(wa_id),
            "id": wamid,
            "timestamp": str(int(moment)),
            "type": kind,
            kind: content,
        }
        if context:
            message["context"] = context
        self._inbound_ids.add(wamid)
        self._last_inbound[wa_id] = max(moment, self._last_inbound.get(wa_id, moment))
        contacts = [{"profile": {"name": name}, "wa_id": wa_id, "user_id": _bsuid(wa_id)}]
        post = await self.post({"contacts": contacts, "messages": [message]})
        if post.status != 200:
            raise AssertionError(f"the webhook answered {post.status} ({post.error}) to a client's message")
        return wamid

    async def client_text(self, wa_id: str, text: str, *, at: datetime | None = None) -> str:
        """A client writes ``text``; returns the message's wamid."""
        return await self.client_sends(wa_id, "text", {"body": text}, at=at)

    async def press(self, wa_id: str, title: str) -> str:
        """The client taps a reply button or a list row (by its title, full label or id) of the latest
        interactive message that has it; returns the reply's wamid."""
        for call in reversed(self.sent(wa_id, "interactive")):
            for choice in call.choices:
                if title in (choice.get("title"), choice.get("description"), choice.get("id")):
                    reply_kind = "button_reply" if call.interactive_type == "button" else "list_reply"
                    reply = {key: choice[key] for key in ("id", "title", "description") if key in choice}
                    context = {"from": DISPLAY_NUMBER, "id": call.wamid}
                    content = {"type": reply_kind, reply_kind: reply}
                    return await self.client_sends(wa_id, "interactive", content, context=context)
        raise AssertionError(f"no button or row {title!r} was sent to {wa_id}")

    async def client_media(self, wa_id: str, kind: str, caption: str | None = None) -> str:
        """A photo, sticker, voice, video or document (``image``, ``sticker``, ``audio``, ``video``,
        ``document``) with an optional caption."""
        content: JsonDict = {"mime_type": "application/octet-stream", "sha256": "0" * 64, "id": "1234567890"}
        if kind == "audio":
            content["voice"] = True
        if caption is not None:
            content["caption"] = caption
        return await self.client_sends(wa_id, kind, content)

    async def client_location(self, wa_id: str, latitude: float = 55.03, longitude: float = 82.92) -> str:
        """The client shares a location."""
        return await self.client_sends(wa_id, "location", {"latitude": latitude, "longitude": longitude})

    async def client_contact(self, wa_id: str, phone: str, name: str = "Иван Петров") -> str:
        """The client shares a contact card with ``phone`` (their own number when it is theirs)."""
        digits = "".join(ch for ch in phone if ch.isdigit())
        card = {
            "name": {"formatted_name": name},
            "phones": [{"phone": phone, "wa_id": digits, "type": "CELL"}],
        }
        return await self.client_sends(wa_id, "contacts", [card])

    async def statuses(
        self, wamid: str, states: Iterable[str] = ("sent", "delivered", "read")
    ) -> list[WebhookPost]:
        """Post the statuses of a message the bot sent, one envelope each, in order."""
        call = self._by_wamid[wamid]
        return [await self.post({"statuses": [self._status(call, state)]}) for state in states]

    async def fail_status(
        self, wamid: str, code: int = 131047, title: str = "Re-engagement message"
    ) -> WebhookPost:
        """Post a "failed" status for a message the bot sent, as WhatsApp reports late failures."""
        status = self._status(self._by_wamid[wamid], "failed")
        status["errors"] = [
            {"code": code, "title": title, "message": title, "error_data": {"details": _REENGAGEMENT}}
        ]
        return await self.post({"statuses": [status]})

    @staticmethod
    def _status(call: GraphCall, state: str) -> JsonDict:
        status: JsonDict = {
            "id": call.wamid,
            "status": state,
            "timestamp": str(int(time.time())),
            "recipient_id": call.to,
            "recipient_user_id": _bsuid(call.to or ""),
        }
        if state != "read":
            status["conversation"] = {"id": "CONVERSATION_ID", "origin": {"type": "service"}}
            status["pricing"] = {"billable": False, "pricing_model": "PMP", "category": "service"}
        return status
