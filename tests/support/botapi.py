"""A local stand-in for the Telegram Bot API server, for tests and benchmarks.

The stand-in is a real HTTP server on 127.0.0.1 (aiohttp), so a bot under test talks to it through
its own unmodified HTTP client: aiogram's ``AiohttpSession`` or python-telegram-bot's
``HTTPXRequest``. Nothing here ever contacts the real Telegram, and webhooks are delivered to
loopback addresses only.

It answers ``GET``/``POST /bot<token>/<method>`` with JSON, urlencoded or multipart bodies the way
Telegram does: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": N,
"description": "...", "parameters": {"retry_after": S}}``.

Pointing clients at it::

    async with BotApiStandin() as api:
        # aiogram 3: the session builds "{base}/bot{token}/{method}" from the server object.
        from aiogram import Bot
        from aiogram.client.session.aiohttp import AiohttpSession
        from aiogram.client.telegram import TelegramAPIServer

        session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
        async with Bot(api.token, session=session) as bot:
            await bot.get_me()

        # python-telegram-bot v22: PTB appends the token to base_url (or substitutes "{token}"),
        # then appends "/<method>", so base_url must end in "/bot".
        from telegram import Bot as PtbBot
        from telegram.ext import Application

        async with PtbBot(api.token, base_url=api.ptb_base_url, base_file_url=api.ptb_base_file_url) as bot:
            await bot.get_me()
        app = (
            Application.builder()
            .token(api.token)
            .base_url(api.ptb_base_url)  # f"{api.base_url}/bot"
            .base_file_url(api.ptb_base_file_url)  # f"{api.base_url}/file/bot"
            .build()
        )

Driving it from a test::

    api.add_message(42, "Здравствуйте")  # an update from user 42 in private chat 42
    calls = await api.wait_for_sent(1, chat_id=42)
    assert calls[0].method == "sendMessage"

All methods must be called from the event loop the stand-in was started on.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import email.parser
import email.policy
import html
import itertools
import json
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from aiohttp import web

__all__ = [
    "DEFAULT_TOKEN",
    "SECRET_HEADER",
    "ApiCall",
    "BotApiStandin",
    "UploadedFile",
    "WebhookDelivery",
]

JsonDict = dict[str, Any]

DEFAULT_TOKEN: Final = "123456789:AAStandInTokenForTestsOnly-0123456789"
"""A well-formed token: aiogram rejects tokens that are not ``<digits>:<text>``."""

SECRET_HEADER: Final = "X-Telegram-Bot-Api-Secret-Token"
"""The header Telegram uses to pass the webhook's secret_token."""

_TOKEN_SHAPE: Final = re.compile(r"^\d+:[\w-]+$")
_SECRET_SHAPE: Final = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_INTEGER: Final = re.compile(r"^-?\d+$")

# Form bodies carry every value as a string. Telegram types each field by its name, so the
# stand-in does the same; free text such as "text" is never reinterpreted, even if it is "123".
_JSON_FIELDS: Final = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "allowed_updates",
        "link_preview_options",
        "reply_parameters",
        "media",
    }
)
_INT_FIELDS: Final = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "timeout",
        "reply_to_message_id",
        "cache_time",
        "max_connections",
        "message_thread_id",
        "user_id",
        "from_chat_id",
    }
)
_BOOL_FIELDS: Final = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "disable_web_page_preview",
        "allow_sending_without_reply",
    }
)

# Methods that do not act on any chat; sent() leaves them out so tests see only what users see.
_SERVICE_METHODS: Final = frozenset({"getMe", "getUpdates", "getWebhookInfo", "setWebhook", "deleteWebhook"})
_CHAT_ACTIONS: Final = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Telegram leaves these update types out unless allowed_updates asks for them explicitly.
_OPT_IN_UPDATES: Final = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_LOOPBACK_NAMES: Final = frozenset({"localhost", "::1"})

_DEFAULT_DESCRIPTIONS: Final[dict[int, str]] = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_BAD_QUERY: Final = "Bad Request: query is too old and response timeout expired or query ID is invalid"
_BLOCKED: Final = "Forbidden: bot was blocked by the user"


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request (kept so tests can look at what a bot uploaded)."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ApiCall:
    """One Bot API request as the stand-in saw it, with the HTTP status it answered."""

    method: str
    """The canonical method name, e.g. ``sendMessage`` even if the client wrote ``sendmessage``."""
    params: JsonDict
    """Parameters with Telegram's types restored: ints, bools and JSON objects such as reply_markup."""
    chat_id: int | str | None
    """The chat the call acts on; for answerCallbackQuery, the chat of the answered query."""
    at: float
    """``time.monotonic()`` when the request arrived."""
    status: int
    """The HTTP status answered: 200, or the error code."""
    result: Any
    """The ``result`` answered on success, else None."""
    content_type: str
    """How the body came: application/json, multipart/form-data, ... ("" for a bare GET)."""
    via: str = "http"
    """``http``, or ``webhook-reply`` for a method a bot returned in a webhook response."""

    @property
    def ok(self) -> bool:
        """Whether the stand-in accepted the call."""
        return self.status == 200

    @property
    def text(self) -> str | None:
        """The ``text`` parameter, if any (a shortcut for the most common assertion)."""
        value = self.params.get("text")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class WebhookDelivery:
    """One attempt to POST an update to the webhook."""

    update_id: int
    attempt: int
    status: int | None
    """HTTP status of the webhook's answer; None when the connection failed."""
    error: str | None
    """Why the attempt failed, as getWebhookInfo's last_error_message would say; None on success."""
    at: float


class ApiError(Exception):
    """An error answer: raised inside method handlers and turned into Telegram's error JSON."""

    def __init__(
        self, status: int, description: str, *, retry_after: int | None = None, as_html: bool = False
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after
        self.as_html = as_html

    def body(self) -> JsonDict | str:
        """The response body: Telegram's JSON, or the HTML page its front proxy serves on a 502."""
        if self.as_html:
            reason = _DEFAULT_DESCRIPTIONS.get(self.status, "Error")
            return (
                f"<html>\r\n<head><title>{self.status} {reason}</title></head>\r\n<body>\r\n"
                f"<center><h1>{self.status} {reason}</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
                "</body>\r\n</html>\r\n"
            )
        body: JsonDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


@dataclass
class _Fault:
    method: str | None
    status: int
    retry_after: int
    remaining: int
    description: str | None
    as_html: bool

    def error(self) -> ApiError:
        if self.status == 429:
            description = self.description or f"Too Many Requests: retry after {self.retry_after}"
            return ApiError(429, description, retry_after=self.retry_after)
        description = self.description or _DEFAULT_DESCRIPTIONS.get(self.status, "Error")
        return ApiError(self.status, description, as_html=self.as_html)


@dataclass
class _FloodLimit:
    max_per_chat: int
    per_seconds: float
    retry_after: int


@dataclass(frozen=True)
class _Ok:
    """A success that also carries Telegram's optional top-level description."""

    result: Any
    description: str | None = None


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    last_error_date: int | None = None
    last_error_message: str | None = None


_Handler = Callable[[JsonDict], Awaitable[Any]]


class BotApiStandin:
    """A Telegram Bot API server on 127.0.0.1 that records what a bot sends and feeds it updates.

    Use ``async with BotApiStandin() as api:`` or ``await api.start()`` / ``await api.stop()``.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "tonebot_test_bot",
        bot_first_name: str = "Tonebot Test",
        latency: float = 0.0,
        strict_chats: bool = False,
        first_update_id: int = 100_000_001,
        webhook_max_attempts: int = 3,
        webhook_retry_delay: float = 0.05,
        webhook_timeout: float = 10.0,
        webhook_connections: int = 1,
    ) -> None:
        """Configure the stand-in; nothing listens until :meth:`start`.

        :param token: the only token accepted; others get 401 Unauthorized.
        :param latency: seconds added before answering every request (see :meth:`set_latency`).
        :param strict_chats: answer "chat not found" for chats no update has come from, as Telegram
            does; off by default so a test may send to any chat id.
        :param webhook_max_attempts: POSTs per update before the stand-in gives it up.
        :param webhook_retry_delay: pause before retry n is ``n * webhook_retry_delay`` seconds.
        :param webhook_connections: webhook POSTs in flight at once (Telegram's ``max_connections``, capped
            by setWebhook's own value); one chat's updates still go one at a time, in order.
        """
        if not _TOKEN_SHAPE.match(token):
            raise ValueError(f"token {token!r} is not shaped like <digits>:<text>")
        self.token = token
        self.bot_id = int(token.partition(":")[0])
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.latency = latency
        self.strict_chats = strict_chats
        self.webhook_max_attempts = webhook_max_attempts
        self.webhook_retry_delay = webhook_retry_delay
        self.webhook_timeout = webhook_timeout
        self.webhook_connections = webhook_connections

        self.calls: list[ApiCall] = []
        """Every request with a known method, in arrival order, failed ones included (a long poll
        appears once it is answered, at the place its arrival time gives it)."""
        self.webhook_deliveries: list[WebhookDelivery] = []
        """Every webhook POST attempt, in order."""
        self.webhook_failed: list[JsonDict] = []
        """Updates given up after ``webhook_max_attempts`` failures (Telegram would retry for hours)."""
        # Accepted chat calls, overall and per chat, so sent() and wait_for_sent() stay cheap when a
        # benchmark has recorded many thousands of calls.
        self._accepted: list[ApiCall] = []
        self._accepted_by_chat: dict[int | str | None, list[ApiCall]] = {}

        self._next_update_id = first_update_id
        self._pending: list[JsonDict] = []
        self._redeliver: list[JsonDict] = []
        self._duplicate_budget = 0
        self._duplicate_ids: set[int] = set()
        self._allowed_updates: list[str] = []
        self._poll_generation = 0

        self._users: dict[int, JsonDict] = {}
        self._chats: dict[int, JsonDict] = {}
        self._messages: dict[tuple[int, int], JsonDict] = {}
        self._last_message_id: dict[int, int] = {}
        self._open_queries: dict[str, int] = {}
        self._query_ids = itertools.count(4_300_000_000_000_000_001)
        self._file_ids = itertools.count(1)
        self._blocked: set[int] = set()

        self._faults: list[_Fault] = []
        self._outages: list[tuple[float, str | None, int]] = []
        self._flood: _FloodLimit | None = None
        self._method_latency: dict[str, float] = {}
        self._webhook: _Webhook | None = None
        self._webhook_task: asyncio.Task[None] | None = None

        # One event for every state change; waiters re-check their own condition when it fires.
        self._changed = asyncio.Event()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._port: int | None = None

        self._methods: dict[str, tuple[str, _Handler]] = {
            name.lower(): (name, handler)
            for name, handler in (
                ("getMe", self._get_me),
                ("getUpdates", self._get_updates),
                ("sendMessage", self._send_message),
                ("editMessageText", self._edit_message_text),
                ("editMessageReplyMarkup", self._edit_message_reply_markup),
                ("sendChatAction", self._send_chat_action),
                ("answerCallbackQuery", self._answer_callback_query),
                ("setWebhook", self._set_webhook),
                ("deleteWebhook", self._delete_webhook),
                ("getWebhookInfo", self._get_webhook_info),
            )
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        if self._runner is not None:
            raise RuntimeError("the stand-in is already started")
        self._closing = False
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown_path)
        # A short shutdown_timeout: long polls are woken on stop, nothing else should linger.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        # Binding the socket ourselves gives the kernel-chosen port without private attributes.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = int(sock.getsockname()[1])
        site = web.SockSite(runner, sock)
        await site.start()
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
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The port the stand-in listens on."""
        if self._port is None:
            raise RuntimeError("the stand-in is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``: what aiogram's ``TelegramAPIServer.from_base`` takes."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ptb_base_url(self) -> str:
        """python-telegram-bot's ``base_url``: it appends the token and then ``/<method>``."""
        return f"{self.base_url}/bot"

    @property
    def ptb_base_file_url(self) -> str:
        """python-telegram-bot's ``base_file_url`` (file downloads are not served)."""
        return f"{self.base_url}/file/bot"

    def method_url(self, method: str, token: str | None = None) -> str:
        """The URL of one method, for raw HTTP tests."""
        return f"{self.base_url}/bot{token or self.token}/{method}"

    # ------------------------------------------------------------------ users and chats

    def set_user(
        self,
        user_id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
        is_premium: bool | None = None,
    ) -> JsonDict:
        """Set the profile later updates from ``user_id`` carry; returns the User object."""
        user: JsonDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name is not None:
            user["last_name"] = last_name
        if username is not None:
            user["username"] = username
        if language_code is not None:
            user["language_code"] = language_code
        if is_premium is not None:
            user["is_premium"] = is_premium
        self._users[user_id] = user
        # A private chat shows its user's name, so a renamed user renames the chat too.
        self._chats.pop(user_id, None)
        return user

    def block_chat(self, chat_id: int, blocked: bool = True) -> None:
        """Make sends to ``chat_id`` fail with 403 "bot was blocked by the user" (or stop that)."""
        if blocked:
            self._blocked.add(chat_id)
        else:
            self._blocked.discard(chat_id)

    # ------------------------------------------------------------------ incoming updates

    def add_update(self, update: JsonDict) -> JsonDict:
        """Queue a raw update; ``update_id`` is assigned when missing. Returns the queued update."""
        update = dict(update)
        if "update_id" in update:
            self._next_update_id = max(self._next_update_id, int(update["update_id"]) + 1)
        else:
            update["update_id"] = self._next_update_id
            self._next_update_id += 1
        if self._duplicate_budget > 0:
            self._duplicate_budget -= 1
            self._duplicate_ids.add(int(update["update_id"]))
        self._pending.append(update)
        self._pending.sort(key=lambda item: int(item["update_id"]))
        self._notify()
        return update

    def add_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        reply_to: int | None = None,
        date: int | None = None,
    ) -> JsonDict:
        """Queue a text message from a user; commands ("/help") get their bot_command entity."""
        message = self._incoming(chat_id, user_id, date)
        message["text"] = text
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            # PTB's CommandHandler only fires on a bot_command entity at offset 0.
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": _utf16_len(command)}]
        if reply_to is not None:
            original = self._messages.get((chat_id, reply_to))
            if original is None:
                raise ValueError(f"no message {reply_to} in chat {chat_id} to reply to")
            message["reply_to_message"] = _without_reply(original)
        return self.add_update({"message": message})

    def add_start(self, chat_id: int, payload: str | None = None, *, user_id: int | None = None) -> JsonDict:
        """Queue ``/start`` or ``/start <payload>``, what a t.me/<bot>?start=<payload> link sends."""
        text = "/start" if payload is None else f"/start {payload}"
        return self.add_message(chat_id, text, user_id=user_id)

    def add_contact(
        self,
        chat_id: int,
        phone_number: str,
        *,
        user_id: int | None = None,
        first_name: str | None = None,
        own: bool = True,
    ) -> JsonDict:
        """Queue a shared contact; ``own`` means the sender shared their own number (has user_id)."""
        message = self._incoming(chat_id, user_id, None)
        sender = message["from"]
        contact: JsonDict = {
            "phone_number": phone_number,
            "first_name": first_name if first_name is not None else sender["first_name"],
        }
        if own:
            contact["user_id"] = sender["id"]
        message["contact"] = contact
        return self.add_update({"message": message})

    def add_sticker(self, chat_id: int, emoji: str = "👍", *, user_id: int | None = None) -> JsonDict:
        """Queue a regular sticker."""
        message = self._incoming(chat_id, user_id, None)
        message["sticker"] = {
            **self._file("CAACAgIAAxkBAAI", 24_000),
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "StandInStickers",
        }
        return self.add_update({"message": message})

    def add_photo(self, chat_id: int, caption: str | None = None, *, user_id: int | None = None) -> JsonDict:
        """Queue a photo in the sizes Telegram sends (a thumbnail and the full picture)."""
        message = self._incoming(chat_id, user_id, None)
        message["photo"] = [
            {**self._file("AgACAgIAAxkBAAI", 1_200), "width": 90, "height": 68},
            {**self._file("AgACAgIAAxkBAAI", 85_000), "width": 1280, "height": 960},
        ]
        if caption is not None:
            message["caption"] = caption
        return self.add_update({"message": message})

    def add_voice(self, chat_id: int, duration: int = 3, *, user_id: int | None = None) -> JsonDict:
        """Queue a voice message."""
        message = self._incoming(chat_id, user_id, None)
        message["voice"] = {
            **self._file("AwACAgIAAxkBAAI", 4_000 * duration),
            "duration": duration,
            "mime_type": "audio/ogg",
        }
        return self.add_update({"message": message})

    def add_document(
        self,
        chat_id: int,
        file_name: str = "invoice.pdf",
        mime_type: str = "application/pdf",
        *,
        caption: str | None = None,
        user_id: int | None = None,
    ) -> JsonDict:
        """Queue a document."""
        message = self._incoming(chat_id, user_id, None)
        message["document"] = {
            **self._file("BQACAgIAAxkBAAI", 52_000),
            "file_name": file_name,
            "mime_type": mime_type,
        }
        if caption is not None:
            message["caption"] = caption
        return self.add_update({"message": message})

    def add_edited_message(self, chat_id: int, message_id: int, text: str) -> JsonDict:
        """Queue an edit of a text message the user sent earlier."""
        original = self._messages.get((chat_id, message_id))
        if original is None or original.get("from", {}).get("id") == self.bot_id:
            raise ValueError(f"no user message {message_id} in chat {chat_id}")
        edited = {**original, "text": text, "edit_date": int(time.time())}
        edited.pop("entities", None)
        self._messages[(chat_id, message_id)] = edited
        return self.add_update({"edited_message": edited})

    def add_callback_query(
        self,
        chat_id: int,
        data: str,
        *,
        message_id: int | None = None,
        user_id: int | None = None,
    ) -> JsonDict:
        """Queue a press of an inline button with ``data``, by default on the bot's latest keyboard.

        Answer it with answerCallbackQuery; an unknown or twice-answered query id gets the same 400
        Telegram gives.
        """
        if message_id is None:
            message = self._latest_keyboard_message(chat_id)
        else:
            found = self._messages.get((chat_id, message_id))
            if found is None:
                raise ValueError(f"no message {message_id} in chat {chat_id}")
            message = found
        user = self._user(user_id if user_id is not None else _default_user_id(chat_id))
        query_id = str(next(self._query_ids))
        self._open_queries[query_id] = chat_id
        query: JsonDict = {
            "id": query_id,
            "from": user,
            "message": message,
            # Telegram's chat_instance is an opaque per-chat number; it only has to be stable.
            "chat_instance": str(-(abs(chat_id) * 7919 + 1_000_003)),
            "data": data,
        }
        return self.add_update({"callback_query": query})

    def press_button(self, chat_id: int, button_text: str, *, user_id: int | None = None) -> JsonDict:
        """Queue a press of the button labelled ``button_text`` on the bot's latest inline keyboard."""
        message = self._latest_keyboard_message(chat_id)
        for row in message["reply_markup"]["inline_keyboard"]:
            for button in row:
                if button.get("text") == button_text and "callback_data" in button:
                    return self.add_callback_query(
                        chat_id, button["callback_data"], message_id=message["message_id"], user_id=user_id
                    )
        raise ValueError(f"no callback button {button_text!r} on message {message['message_id']}")

    def duplicate_next_updates(self, n: int = 1) -> None:
        """Deliver each of the next ``n`` queued updates twice, as Telegram may (at-least-once).

        After the bot confirms such an update (a later getUpdates offset, or a 2xx webhook answer),
        the very same update, same update_id, comes once more in the next response.
        """
        self._duplicate_budget += n

    @property
    def pending_updates(self) -> list[JsonDict]:
        """Queued updates that the bot has not confirmed yet."""
        return [*self._redeliver, *self._pending]

    async def wait_until_consumed(self, timeout: float = 5.0) -> None:
        """Wait until every queued update was confirmed by the bot (or delivered to its webhook)."""
        if not await self._wait_until(lambda: not self._pending and not self._redeliver, timeout):
            raise TimeoutError(f"{len(self.pending_updates)} update(s) still unconfirmed after {timeout}s")

    # ------------------------------------------------------------------ what the bot sent

    def sent(self, chat_id: int | None = None, method: str | None = None) -> list[ApiCall]:
        """Accepted calls that act on chats (sendMessage, editMessageText, ...), in arrival order.

        Service calls (getMe, getUpdates, getWebhookInfo, setWebhook, deleteWebhook) and rejected
        calls are left out; :attr:`calls` has everything.
        """
        calls = self._accepted if chat_id is None else self._accepted_by_chat.get(chat_id, [])
        return list(calls) if method is None else [call for call in calls if call.method == method]

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        """Texts of the accepted sendMessage calls as the user sees them (HTML/Markdown removed)."""
        return [str(call.result["text"]) for call in self.sent(chat_id, "sendMessage")]

    def send_times(self, chat_id: int) -> list[float]:
        """``time.monotonic()`` arrival times of accepted sendMessage calls to a chat (rate checks)."""
        return [call.at for call in self.sent(chat_id, "sendMessage")]

    async def wait_for_sent(
        self,
        count: int,
        timeout: float = 5.0,
        *,
        chat_id: int | None = None,
        method: str | None = None,
    ) -> list[ApiCall]:
        """Wait until at least ``count`` calls match :meth:`sent`'s filters; returns all that match."""
        if not await self._wait_until(lambda: len(self.sent(chat_id, method)) >= count, timeout):
            got = [(call.method, call.params.get("text")) for call in self.sent(chat_id, method)]
            raise TimeoutError(f"expected {count} sent call(s) within {timeout}s, got {len(got)}: {got}")
        return self.sent(chat_id, method)

    # ------------------------------------------------------------------ faults

    def fail_next(
        self,
        method: str | None,
        status: int = 429,
        *,
        retry_after: int = 1,
        times: int = 1,
        description: str | None = None,
        as_html: bool = False,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (None: of any method) with an error.

        429 carries ``parameters.retry_after``; other statuses carry Telegram's usual description.
        ``as_html`` answers with the HTML page Telegram's front proxy serves on 502/504.
        """
        key = None if method is None else method.lower()
        self._faults.append(_Fault(key, status, retry_after, times, description, as_html))

    def fail_for(self, seconds: float, method: str | None = None, status: int = 502) -> None:
        """An outage: for ``seconds`` every call of ``method`` (None: of any) fails with ``status``."""
        key = None if method is None else method.lower()
        self._outages.append((time.monotonic() + seconds, key, status))

    def set_latency(self, seconds: float, method: str | None = None) -> None:
        """Delay every answer (or only ``method``'s) by ``seconds``."""
        if method is None:
            self.latency = seconds
        else:
            name, _ = self._methods[method.lower()]
            self._method_latency[name] = seconds

    def set_flood_limit(
        self, max_per_chat: int | None, per_seconds: float = 1.0, retry_after: int = 1
    ) -> None:
        """Answer 429 to a sendMessage that would be the (max_per_chat+1)-th in ``per_seconds`` to a chat.

        Telegram documents about one message per second per chat; None switches the limit off.
        """
        self._flood = None if max_per_chat is None else _FloodLimit(max_per_chat, per_seconds, retry_after)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["token"]
        if not _TOKEN_SHAPE.match(token):
            # Telegram answers a malformed token with 404, a well-formed unknown one with 401.
            return _json_response(404, ApiError(404, "Not Found").body())
        if token != self.token:
            return _json_response(401, ApiError(401, "Unauthorized").body())
        try:
            params, content_type = await _read_params(request)
        except ApiError as exc:
            return _json_response(exc.status, exc.body())
        status, body = await self._call(request.match_info["method"], params, content_type, "http")
        return _json_response(status, body)

    async def _handle_unknown_path(self, request: web.Request) -> web.StreamResponse:
        return _json_response(404, ApiError(404, "Not Found").body())

    async def _call(
        self, method: str, params: JsonDict, content_type: str, via: str
    ) -> tuple[int, JsonDict | str]:
        entry = self._methods.get(method.lower())
        if entry is None:
            return 404, ApiError(404, "Not Found").body()
        name, handler = entry
        arrived = time.monotonic()
        chat_id = self._chat_of(name, params)
        delay = self._method_latency.get(name, self.latency)
        if delay > 0:
            await asyncio.sleep(delay)
        try:
            outage = next(
                (o for o in self._outages if o[0] > time.monotonic() and o[1] in (None, name.lower())), None
            )
            if outage is not None:
                raise _Fault(name, outage[2], 1, 1, None, outage[2] in (502, 504)).error()
            fault = self._take_fault(name)
            if fault is not None:
                raise fault.error()
            self._check_flood(name, chat_id, arrived)
            outcome = await handler(params)
        except ApiError as exc:
            self._record(ApiCall(name, params, chat_id, arrived, exc.status, None, content_type, via))
            return exc.status, exc.body()
        if not isinstance(outcome, _Ok):
            outcome = _Ok(outcome)
        self._record(ApiCall(name, params, chat_id, arrived, 200, outcome.result, content_type, via))
        body: JsonDict = {"ok": True, "result": outcome.result}
        if outcome.description is not None:
            body["description"] = outcome.description
        return 200, body

    def _record(self, call: ApiCall) -> None:
        # Calls are recorded when answered; sorting by arrival keeps the order the bot sent them in
        # even when latency or a long poll makes answers overtake each other.
        bisect.insort(self.calls, call, key=lambda item: item.at)
        if call.ok and call.method not in _SERVICE_METHODS:
            bisect.insort(self._accepted, call, key=lambda item: item.at)
            by_chat = self._accepted_by_chat.setdefault(call.chat_id, [])
            bisect.insort(by_chat, call, key=lambda item: item.at)
        self._notify()

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method in (None, method.lower()) and fault.remaining > 0:
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _check_flood(self, method: str, chat_id: int | str | None, arrived: float) -> None:
        if self._flood is None or method != "sendMessage" or not isinstance(chat_id, int):
            return
        window_start = arrived - self._flood.per_seconds
        recent = [at for at in self.send_times(chat_id) if at > window_start]
        if len(recent) >= self._flood.max_per_chat:
            retry_after = self._flood.retry_after
            raise ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)

    def _chat_of(self, method: str, params: JsonDict) -> int | str | None:
        if method == "answerCallbackQuery":
            return self._open_queries.get(str(params.get("callback_query_id")))
        chat_id = params.get("chat_id")
        return chat_id if isinstance(chat_id, int | str) else None

    # ------------------------------------------------------------------ methods

    def _bot_user(self) -> JsonDict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    async def _get_me(self, params: JsonDict) -> JsonDict:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: JsonDict) -> list[JsonDict]:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _opt_int(params, "offset")
        limit = min(max(_opt_int(params, "limit") or 100, 1), 100)
        # Telegram caps long polling at 50 s.
        timeout = min(max(_opt_int(params, "timeout") or 0, 0), 50)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed]
        if offset is not None:
            self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        # Wake an older long poll so that it answers 409, as Telegram does to a second poller.
        self._notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            batch = self._take_batch(limit)
            remaining = deadline - loop.time()
            if batch or self._closing or remaining <= 0:
                return batch
            await self._wait_for_change(remaining)

    async def _send_message(self, params: JsonDict) -> JsonDict:
        chat_id = self._target_chat(params)
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        plain = _render(text, params.get("parse_mode"))
        if not plain.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if _utf16_len(plain) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        markup = _inline_markup(params.get("reply_markup"))
        # Every check comes before _outgoing(), so a rejected call leaves no message behind.
        reply_to = self._reply_target(chat_id, params)
        message = self._outgoing(chat_id)
        message["text"] = plain
        entities = params.get("entities")
        if params.get("parse_mode") is None and isinstance(entities, list) and entities:
            message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = _without_reply(reply_to)
        if markup is not None:
            message["reply_markup"] = markup
        return message

    async def _edit_message_text(self, params: JsonDict) -> JsonDict | bool:
        if params.get("inline_message_id"):
            return True
        message = self._editable(params)
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "Bad Request: text must be non-empty")
        plain = _render(text, params.get("parse_mode"))
        if _utf16_len(plain) > 4096:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        # editMessageText without reply_markup removes the inline keyboard, as in Telegram.
        markup = _inline_markup(params.get("reply_markup"))
        if plain == message.get("text") and markup == message.get("reply_markup"):
            raise ApiError(400, _NOT_MODIFIED)
        return self._store_edit(message, plain, markup)

    async def _edit_message_reply_markup(self, params: JsonDict) -> JsonDict | bool:
        if params.get("inline_message_id"):
            return True
        message = self._editable(params)
        markup = _inline_markup(params.get("reply_markup"))
        if markup == message.get("reply_markup"):
            raise ApiError(400, _NOT_MODIFIED)
        return self._store_edit(message, message.get("text"), markup)

    async def _send_chat_action(self, params: JsonDict) -> bool:
        self._target_chat(params)
        if params.get("action") not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _answer_callback_query(self, params: JsonDict) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if self._open_queries.pop(query_id, None) is None:
            raise ApiError(400, _BAD_QUERY)
        return True

    async def _set_webhook(self, params: JsonDict) -> _Ok:
        url = params.get("url")
        if not isinstance(url, str):
            raise ApiError(400, 'Bad Request: parameter "url" is required')
        if params.get("drop_pending_updates") is True:
            self._drop_pending()
        if not url:
            # setWebhook with an empty url is Telegram's other way to delete the webhook.
            return await self._delete_webhook({})
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.scheme not in ("http", "https") or not (host.startswith("127.") or host in _LOOPBACK_NAMES):
            raise ApiError(400, "Bad Request: bad webhook: the stand-in delivers to loopback URLs only")
        secret = params.get("secret_token")
        if secret is not None and not (isinstance(secret, str) and _SECRET_SHAPE.match(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        already = self._webhook is not None and self._webhook.url == url
        self._webhook = _Webhook(
            url=url,
            secret_token=secret,
            max_connections=_opt_int(params, "max_connections") or 40,
            allowed_updates=[str(kind) for kind in allowed] if isinstance(allowed, list) else None,
        )
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed]
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._webhook_worker())
        self._notify()
        return _Ok(True, "Webhook is already set" if already else "Webhook was set")

    async def _delete_webhook(self, params: JsonDict) -> _Ok:
        if params.get("drop_pending_updates") is True:
            self._drop_pending()
        existed = self._webhook is not None
        self._webhook = None
        # The worker sees the webhook gone and ends by itself; it may be the one running this call.
        self._notify()
        return _Ok(True, "Webhook was deleted" if existed else "Webhook is already deleted")

    async def _get_webhook_info(self, params: JsonDict) -> JsonDict:
        info: JsonDict = {
            "url": "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.pending_updates),
        }
        hook = self._webhook
        if hook is not None:
            info["url"] = hook.url
            info["max_connections"] = hook.max_connections
            info["ip_address"] = "127.0.0.1"
            if hook.allowed_updates is not None:
                info["allowed_updates"] = hook.allowed_updates
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    # ------------------------------------------------------------------ method helpers

    def _target_chat(self, params: JsonDict) -> int:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if not isinstance(chat_id, int) or (self.strict_chats and chat_id not in self._chats):
            raise ApiError(400, "Bad Request: chat not found")
        if chat_id in self._blocked:
            raise ApiError(403, _BLOCKED)
        return chat_id

    def _editable(self, params: JsonDict) -> JsonDict:
        chat_id = self._target_chat(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int):
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message["from"]["id"] != self.bot_id:
            raise ApiError(400, "Bad Request: message can't be edited")
        return message

    def _store_edit(self, message: JsonDict, text: Any, markup: JsonDict | None) -> JsonDict:
        edited = {key: value for key, value in message.items() if key not in ("reply_markup", "entities")}
        edited["text"] = text
        edited["edit_date"] = int(time.time())
        if markup is not None:
            edited["reply_markup"] = markup
        self._messages[(message["chat"]["id"], message["message_id"])] = edited
        return edited

    def _reply_target(self, chat_id: int, params: JsonDict) -> JsonDict | None:
        reply = params.get("reply_parameters")
        message_id = reply.get("message_id") if isinstance(reply, dict) else params.get("reply_to_message_id")
        if not isinstance(message_id, int):
            return None
        target = self._messages.get((chat_id, message_id))
        allow_missing = params.get("allow_sending_without_reply") is True or (
            isinstance(reply, dict) and reply.get("allow_sending_without_reply") is True
        )
        if target is None and not allow_missing:
            raise ApiError(400, "Bad Request: message to be replied not found")
        return target

    def _latest_keyboard_message(self, chat_id: int) -> JsonDict:
        candidates = [
            message
            for (chat, _), message in self._messages.items()
            if chat == chat_id and message["from"]["id"] == self.bot_id and "reply_markup" in message
        ]
        if not candidates:
            raise ValueError(f"the bot has sent no inline keyboard to chat {chat_id}")
        return max(candidates, key=lambda message: int(message["message_id"]))

    # ------------------------------------------------------------------ message building

    def _user(self, user_id: int) -> JsonDict:
        if user_id not in self._users:
            self.set_user(user_id, "Test", last_name=f"User{user_id}", username=f"user{user_id}")
        return dict(self._users[user_id])

    def _chat(self, chat_id: int, user: JsonDict | None) -> JsonDict:
        if chat_id in self._chats:
            return dict(self._chats[chat_id])
        if chat_id < 0:
            return {"id": chat_id, "type": "group", "title": f"Test group {-chat_id}"}
        person = user if user is not None else self._user(chat_id)
        chat: JsonDict = {"id": chat_id, "type": "private", "first_name": person["first_name"]}
        for key in ("last_name", "username"):
            if key in person:
                chat[key] = person[key]
        return chat

    def _new_message_id(self, chat_id: int) -> int:
        # Like Telegram in private chats, user and bot messages share one counter per chat.
        self._last_message_id[chat_id] = self._last_message_id.get(chat_id, 0) + 1
        return self._last_message_id[chat_id]

    def _incoming(self, chat_id: int, user_id: int | None, date: int | None) -> JsonDict:
        if user_id is None:
            if chat_id < 0:
                raise ValueError("user_id is required for a group chat")
            user_id = chat_id
        user = self._user(user_id)
        chat = self._chat(chat_id, user if chat_id == user_id else None)
        self._chats[chat_id] = chat
        message: JsonDict = {
            "message_id": self._new_message_id(chat_id),
            "from": user,
            "chat": chat,
            "date": date if date is not None else int(time.time()),
        }
        # Stored by reference: the add_* helper fills the content in before anyone reads it.
        self._messages[(chat_id, message["message_id"])] = message
        return message

    def _outgoing(self, chat_id: int) -> JsonDict:
        message: JsonDict = {
            "message_id": self._new_message_id(chat_id),
            "from": self._bot_user(),
            "chat": self._chat(chat_id, None),
            "date": int(time.time()),
        }
        self._messages[(chat_id, message["message_id"])] = message
        return message

    def _file(self, prefix: str, size: int) -> JsonDict:
        number = next(self._file_ids)
        return {
            "file_id": f"{prefix}{number:010d}StandIn",
            "file_unique_id": f"AQAD{number:08d}",
            "file_size": size,
        }

    # ------------------------------------------------------------------ update queue

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait_for_change(self, timeout: float) -> None:
        event = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def _wait_until(self, condition: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not condition():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await self._wait_for_change(remaining)
        return True

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            # A negative offset keeps only the last -offset updates and forgets the rest.
            keep = self._pending[offset:]
            dropped = self._pending[: len(self._pending) - len(keep)]
        else:
            keep = [update for update in self._pending if int(update["update_id"]) >= offset]
            dropped = [update for update in self._pending if int(update["update_id"]) < offset]
        self._pending = keep
        for update in dropped:
            update_id = int(update["update_id"])
            if update_id in self._duplicate_ids:
                self._duplicate_ids.discard(update_id)
                self._redeliver.append(update)
        if dropped:
            self._notify()

    def _drop_pending(self) -> None:
        self._pending.clear()
        self._redeliver.clear()
        self._notify()

    def _take_batch(self, limit: int) -> list[JsonDict]:
        allowed = self._allowed_updates
        # Telegram does not keep updates of types the bot did not ask for.
        self._pending = [update for update in self._pending if _is_allowed(update, allowed)]
        batch = self._redeliver[:limit]
        del self._redeliver[: len(batch)]
        batch.extend(self._pending[: limit - len(batch)])
        return batch

    # ------------------------------------------------------------------ webhook delivery

    async def _webhook_worker(self) -> None:
        if self.webhook_connections > 1:
            await self._parallel_webhook_worker()
            return
        # Telegram delivers a bot's updates one at a time in update_id order; so does the stand-in.
        while not self._closing and self._webhook is not None:
            batch = self._take_batch(1)
            if not batch:
                await self._wait_for_change(1.0)
                continue
            update = batch[0]
            hook = self._webhook
            if not await self._deliver(hook, update):
                self.webhook_failed.append(update)
            if any(item is update for item in self._pending):
                self._confirm(int(update["update_id"]) + 1)

    async def _parallel_webhook_worker(self) -> None:
        # Several POSTs at once (up to max_connections), but one chat's updates one at a time, in order.
        in_flight: set[asyncio.Task[None]] = set()
        taken: set[int] = set()
        busy_chats: set[object] = set()

        async def deliver_one(hook: _Webhook, update: JsonDict, chat: object) -> None:
            try:
                if not await self._deliver(hook, update):
                    self.webhook_failed.append(update)
            finally:
                taken.discard(id(update))
                busy_chats.discard(chat)
                self._redeliver = [item for item in self._redeliver if item is not update]
                if any(item is update for item in self._pending):
                    self._pending = [item for item in self._pending if item is not update]
                    update_id = int(update["update_id"])
                    if update_id in self._duplicate_ids:
                        self._duplicate_ids.discard(update_id)
                        self._redeliver.append(update)
                self._notify()

        try:
            while not self._closing and self._webhook is not None:
                hook = self._webhook
                limit = min(self.webhook_connections, hook.max_connections)
                allowed = self._allowed_updates
                self._pending = [update for update in self._pending if _is_allowed(update, allowed)]
                started = False
                for update in [*self._redeliver, *self._pending]:
                    if len(in_flight) >= limit:
                        break
                    chat = _update_chat(update)
                    if id(update) in taken or chat in busy_chats:
                        continue
                    taken.add(id(update))
                    busy_chats.add(chat)
                    task = asyncio.create_task(deliver_one(hook, update, chat))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                    started = True
                if not started:
                    await self._wait_for_change(0.5)
        finally:
            for task in list(in_flight):
                task.cancel()

    async def _deliver(self, hook: _Webhook, update: JsonDict) -> bool:
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers[SECRET_HEADER] = hook.secret_token
        body = json.dumps(update, ensure_ascii=False).encode()
        timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
        assert self._client is not None, "webhook worker runs only while the stand-in is started"
        for attempt in range(1, self.webhook_max_attempts + 1):
            status: int | None = None
            error: str | None = None
            reply: tuple[str, JsonDict] | None = None
            try:
                async with self._client.post(hook.url, data=body, headers=headers, timeout=timeout) as resp:
                    status = resp.status
                    if 200 <= status < 300:
                        reply = _parse_webhook_reply(resp.headers.get("Content-Type", ""), await resp.read())
                    else:
                        error = f"Wrong response from the webhook: {status} {resp.reason}"
            except aiohttp.ClientConnectorError:
                error = "Connection refused"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            self.webhook_deliveries.append(
                WebhookDelivery(int(update["update_id"]), attempt, status, error, time.monotonic())
            )
            self._notify()
            if error is None:
                if reply is not None:
                    # A bot may answer an update with one method call in the response body.
                    method, params = reply
                    await self._call(method, params, "webhook-reply", "webhook-reply")
                return True
            hook.last_error_date = int(time.time())
            hook.last_error_message = error
            if attempt < self.webhook_max_attempts:
                await asyncio.sleep(self.webhook_retry_delay * attempt)
        return False


# ---------------------------------------------------------------------- module helpers


def _json_response(status: int, body: JsonDict | str) -> web.Response:
    if isinstance(body, str):
        return web.Response(status=status, text=body, content_type="text/html")
    return web.json_response(body, status=status, dumps=lambda obj: json.dumps(obj, ensure_ascii=False))


async def _read_params(request: web.Request) -> tuple[JsonDict, str]:
    """Parameters from the query string and the body, typed the way Telegram types them."""
    params: JsonDict = {key: _coerce(key, value) for key, value in request.query.items()}
    content_type = request.content_type if request.body_exists else ""
    if content_type == "application/json":
        raw = await request.read()
        if raw.strip():
            try:
                data = json.loads(raw)
            except ValueError as exc:
                raise ApiError(400, "Bad Request: can't parse JSON object") from exc
            if not isinstance(data, dict):
                raise ApiError(400, "Bad Request: can't parse JSON object")
            params.update({key: _normalize(key, value) for key, value in data.items()})
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = UploadedFile(value.filename, value.content_type, value.file.read())
            elif isinstance(value, bytes | bytearray):
                params[key] = _coerce(key, bytes(value).decode())
            else:
                params[key] = _coerce(key, value)
    return params, content_type


def _coerce(key: str, value: str) -> Any:
    """Type one string-valued form field by its name."""
    if key in _JSON_FIELDS:
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ApiError(400, f"Bad Request: can't parse {key} JSON object") from exc
    if key in _INT_FIELDS and _INTEGER.match(value):
        return int(value)
    if key in _BOOL_FIELDS and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return value


def _normalize(key: str, value: Any) -> Any:
    """Type one JSON-body field: clients may still send numbers or nested JSON as strings."""
    return _coerce(key, value) if isinstance(value, str) else value


def _opt_int(params: JsonDict, key: str) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"Bad Request: wrong parameter {key}")
    return value


def _utf16_len(text: str) -> int:
    # Telegram measures lengths and entity offsets in UTF-16 code units.
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


def _without_reply(message: JsonDict) -> JsonDict:
    # Telegram nests replied-to messages only one level deep.
    return {key: value for key, value in message.items() if key != "reply_to_message"}


def _default_user_id(chat_id: int) -> int:
    if chat_id < 0:
        raise ValueError("user_id is required for a group chat")
    return chat_id


def _update_chat(update: JsonDict) -> object:
    """The chat an update belongs to (a message's, or a pressed button's message's); the update id for
    updates without a chat."""
    for key in ("message", "edited_message", "channel_post", "edited_channel_post"):
        if isinstance(update.get(key), dict):
            return update[key].get("chat", {}).get("id")
    query = update.get("callback_query")
    if isinstance(query, dict) and isinstance(query.get("message"), dict):
        return query["message"].get("chat", {}).get("id")
    return ("update", update.get("update_id"))


def _is_allowed(update: JsonDict, allowed: list[str]) -> bool:
    kind = next((key for key in update if key != "update_id"), "")
    return kind in allowed if allowed else kind not in _OPT_IN_UPDATES


def _inline_markup(markup: Any) -> JsonDict | None:
    """Validate reply_markup; return it if it is an inline keyboard (the only kind a Message shows)."""
    if markup is None or markup == "":
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    keyboard = markup.get("inline_keyboard")
    if keyboard is None:
        return None
    if not isinstance(keyboard, list) or not all(isinstance(row, list) for row in keyboard):
        raise ApiError(400, "Bad Request: can't parse inline keyboard: inline_keyboard must be an Array")
    actions = ("callback_data", "url", "switch_inline_query", "switch_inline_query_current_chat", "web_app")
    for row in keyboard:
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str):
                raise ApiError(400, "Bad Request: can't parse inline keyboard button: Text must be a String")
            if not any(key in button for key in (*actions, "login_url", "pay", "copy_text", "callback_game")):
                raise ApiError(
                    400,
                    "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the "
                    "inline keyboard",
                )
            data = button.get("callback_data")
            if data is not None and not (isinstance(data, str) and 1 <= len(data.encode()) <= 64):
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return {"inline_keyboard": keyboard}


# ---------------------------------------------------------------------- formatting

_HTML_TAGS: Final = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
_HTML_TAG: Final = re.compile(r"<(/?)([A-Za-z][\w-]*)?([^<>]*)>")
_HTML_ENTITY: Final = re.compile(r"&(#\d+|#[xX][0-9a-fA-F]+|lt|gt|amp|quot);")
_MDV2_RESERVED: Final = frozenset("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES: Final = {
    "*": "Bold",
    "_": "Italic",
    "__": "Underline",
    "~": "Strikethrough",
    "||": "Spoiler",
    "`": "Code",
    "```": "Pre",
    "[": "TextUrl",
}


def _render(text: str, parse_mode: Any) -> str:
    """The plain text Telegram shows for ``text`` under ``parse_mode``, or the 400 it answers.

    Only the mistakes bots commonly make are caught: unknown or unbalanced HTML tags and unescaped
    MarkdownV2 reserved characters. Entities are not reported back.
    """
    if parse_mode is None or parse_mode == "":
        return text
    if not isinstance(parse_mode, str):
        raise ApiError(400, "Bad Request: unsupported parse_mode")
    mode = parse_mode.lower()
    if mode == "html":
        return _render_html(text)
    if mode == "markdownv2":
        return _render_markdown_v2(text)
    if mode == "markdown":
        # Legacy Markdown is lenient in Telegram too: drop the markup, keep link texts.
        unlinked = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
        return unlinked.replace("*", "").replace("_", "").replace("`", "")
    raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!r}")


def _entities_error(detail: str) -> ApiError:
    return ApiError(400, f"Bad Request: can't parse entities: {detail}")


def _render_html(text: str) -> str:
    out: list[str] = []
    stack: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "<":
            match = _HTML_TAG.match(text, index)
            name = (match.group(2) or "") if match else ""
            if match is None or name.lower() not in _HTML_TAGS:
                raise _entities_error(
                    f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, index)}'
                )
            name = name.lower()
            if match.group(1):
                if not stack:
                    raise _entities_error(f"Unexpected end tag at byte offset {_byte_offset(text, index)}")
                expected = stack.pop()
                if expected != name:
                    raise _entities_error(
                        f"Unmatched end tag at byte offset {_byte_offset(text, index)}, "
                        f'expected "</{expected}>", found "</{name}>"'
                    )
            else:
                stack.append(name)
            index = match.end()
            continue
        if char == "&":
            entity = _HTML_ENTITY.match(text, index)
            if entity is not None:
                out.append(html.unescape(entity.group(0)))
                index = entity.end()
                continue
        out.append(char)
        index += 1
    if stack:
        raise _entities_error(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(out)


def _render_markdown_v2(text: str) -> str:
    out: list[str] = []
    open_marks: list[tuple[str, int]] = []
    code: str | None = None
    index = 0
    line_start = True
    while index < len(text):
        char = text[index]
        offset = _byte_offset(text, index)
        if char == "\\":
            if index + 1 < len(text):
                out.append(text[index + 1])
                index += 2
                line_start = False
                continue
            raise _entities_error(f"Can't find end of the entity starting at byte offset {offset}")
        if code is not None:
            if text.startswith(code, index):
                open_marks.pop()
                index += len(code)
                code = None
            else:
                out.append(char)
                index += 1
            continue
        mark = next((m for m in ("```", "||", "__", "`", "*", "_", "~") if text.startswith(m, index)), None)
        if mark in ("```", "`"):
            code = mark
            open_marks.append((mark, offset))
            index += len(mark)
            continue
        if mark is not None:
            position = next((i for i in range(len(open_marks) - 1, -1, -1) if open_marks[i][0] == mark), None)
            if position is None:
                open_marks.append((mark, offset))
            else:
                del open_marks[position]
            index += len(mark)
            continue
        if char == "[":
            open_marks.append(("[", offset))
            index += 1
            continue
        if char == "]" and open_marks and open_marks[-1][0] == "[":
            if not text.startswith("(", index + 1):
                raise _entities_error(f"Can't find end of a URL at byte offset {offset}")
            end = index + 2
            while end < len(text) and text[end] != ")":
                end += 2 if text[end] == "\\" else 1
            if end >= len(text):
                raise _entities_error(f"Can't find end of a URL at byte offset {offset}")
            open_marks.pop()
            index = end + 1
            continue
        if char == ">" and line_start:
            index += 1
            continue
        if char in _MDV2_RESERVED:
            raise _entities_error(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        out.append(char)
        line_start = char == "\n"
        index += 1
    if open_marks:
        mark, offset = open_marks[-1]
        raise _entities_error(f"Can't find end of {_MDV2_NAMES[mark]} entity at byte offset {offset}")
    return "".join(out)


def _parse_webhook_reply(content_type: str, body: bytes) -> tuple[str, JsonDict] | None:
    """The method call a bot put in its webhook answer, if any (JSON, urlencoded or multipart)."""
    fields: dict[str, Any] = {}
    media_type = content_type.split(";", 1)[0].strip().lower()
    try:
        if media_type == "application/json":
            data = json.loads(body) if body.strip() else {}
            if isinstance(data, dict):
                fields = {key: _normalize(key, value) for key, value in data.items()}
        elif media_type == "application/x-www-form-urlencoded":
            fields = {key: _coerce(key, value) for key, value in parse_qsl(body.decode())}
        elif media_type == "multipart/form-data":
            # aiogram answers with multipart form-data; the email package parses it without a server.
            parser = email.parser.BytesParser(policy=email.policy.HTTP)
            envelope = parser.parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
            for part in envelope.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if isinstance(name, str) and isinstance(payload, bytes):
                    fields[name] = _coerce(name, payload.decode())
    except (ValueError, ApiError, UnicodeDecodeError):
        # Telegram ignores a webhook answer it cannot read.
        return None
    method = fields.pop("method", None)
    if not isinstance(method, str) or not method:
        return None
    return method, fields
