"""vkbottle's API object pointed at VK (or a stand-in), paced and failing fast where vkbottle would wait."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from aiohttp import ClientTimeout
from vkbottle import API, AiohttpClient
from vkbottle.api import ABCAPI
from vkbottle.api.request_rescheduler import ABCRequestRescheduler

from bot.channels.forms import quote_plus
from bot.channels.outbound import TemporaryFailure
from bot.vk.settings import VkSettings

# A method call that takes longer than this is given up and retried by the gateway (VK answers in well
# under a second; aiohttp's own default would wait five minutes).
CALL_TIMEOUT = ClientTimeout(total=30, sock_connect=10)
FORM = "application/x-www-form-urlencoded"
# Calls leave milliseconds after their slot is taken, some later than others (a new connection, a busy
# loop): with slots held exactly a second, the stand-in's strict count saw 21 in one second.
PACE_WINDOW_S = 1.1


class NotJsonAnswer(ABCRequestRescheduler):
    """Gives an answer that is not JSON (a proxy's error page) back to the caller as a TemporaryFailure:
    vkbottle's own rescheduler would repeat the call in place, every few seconds, forever."""

    async def reschedule(
        self, ctx_api: ABCAPI | API, method: str, data: dict[str, Any], recent_response: Any
    ) -> dict[str, Any]:
        """Raise instead of asking again."""
        raise TemporaryFailure(f"VK answered {method} with no JSON: {recent_response!r:.200}")


class CallPace:
    """At most `calls` method calls in any second, as VK counts them: when they arrive.

    A call leaves some milliseconds after its slot is taken (a new connection, a busy event loop), and not
    always as many: a slot is held for a little more than the second, so that VK never sees one too many.
    """

    def __init__(self, calls: float, held_s: float = PACE_WINDOW_S) -> None:
        self.calls = calls
        self.held_s = held_s
        self._taken: deque[float] = deque()

    async def wait(self) -> None:
        """Sleep until a slot is free, and take it."""
        taken = self._taken
        while True:
            now = time.monotonic()
            while taken and taken[0] <= now - self.held_s:
                taken.popleft()
            if len(taken) < self.calls:
                taken.append(now)
                return
            await asyncio.sleep(taken[0] + self.held_s - now)


class QuickClient(AiohttpClient):
    """vkbottle's aiohttp client sending form bodies encoded a run of bytes at a time: urllib quotes a
    value byte by byte in Python, and a Russian reply is two bytes a letter (as in bot.telegram.session)."""

    async def request_text(
        self, url: str, method: str = "GET", data: dict[str, Any] | None = None, **kwargs: Any
    ) -> str:
        """The answer's text; `data` goes as an url-encoded body, as aiohttp would send it."""
        if data is None:
            return await super().request_text(url, method, **kwargs)
        body = "&".join(f"{quote_plus(str(key))}={quote_plus(str(value))}" for key, value in data.items())
        headers = {**kwargs.pop("headers", {}), "Content-Type": FORM}
        # aiohttp takes bytes as a body as readily as a dict; vkbottle's signature names only the dict.
        async with self.request(url, method, body.encode(), headers=headers, **kwargs) as response:  # type: ignore[arg-type]
            return await response.text(encoding="utf-8")


class PacedAPI(API):
    """An API whose method calls, every kind together, keep within a number a second: VK counts
    "typing…", button acknowledgements and long-poll servers against a community's limit as well."""

    def __init__(self, token: str, calls_per_second: float, **options: Any) -> None:
        super().__init__(token, **options)
        self.pace = CallPace(calls_per_second)

    async def request(self, method: str, data: dict[str, Any], version: str | None = None) -> dict[str, Any]:
        """Wait for a slot, then call."""
        await self.pace.wait()
        return await super().request(method, data, version)


def make_api(settings: VkSettings, calls_per_second: float) -> PacedAPI:
    """An API of its own (its own HTTP session, closed with it), with HTTP errors raised as such."""
    # raise_for_status: a 5xx page becomes aiohttp's ClientResponseError at once, not a parsing failure.
    client = QuickClient(raise_for_status=True, timeout=CALL_TIMEOUT)
    api = PacedAPI(settings.token, calls_per_second, http_client=client, request_rescheduler=NotJsonAnswer())
    api.API_URL = settings.method_url
    return api
