"""Long polling MAX: GET /updates with the marker, every update handed to the gateway in order.

MAX numbers a bot's updates; the marker in an answer points past them, and passing it back confirms
them. Until then they are sent again (also after a restart, when no marker is passed), so nothing
fetched is lost to a crash before it was queued; the gateway and storage drop what comes twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from maxapi import Bot
from maxapi.enums.update import UpdateType
from maxapi.exceptions import InvalidToken, MaxApiError

from bot.channels.gateway import ChannelGateway
from bot.max.inbound import UPDATE_TYPES, incoming, parse_update

log = logging.getLogger(__name__)
# Seconds MAX holds a GET /updates open while nothing happens (its default; at most 90).
POLL_TIMEOUT_S = 30
# Updates in one answer: MAX's maximum, as it serves a bot two GET /updates a second at most (maxapi's
# GetUpdates notes the limits from 2026-05-11), so a busy bot fetches big batches rather than many.
POLL_LIMIT = 1000
POLL_INTERVAL_S = 0.5
ERROR_PAUSE_S = 1.0
MAX_ERROR_PAUSE_S = 30.0


class MaxPoller:
    """Fetches a bot's updates and submits them to a gateway, until stopped."""

    def __init__(
        self,
        bot: Bot,
        gateway: ChannelGateway,
        *,
        timeout_s: int = POLL_TIMEOUT_S,
        interval_s: float = POLL_INTERVAL_S,
        limit: int = POLL_LIMIT,
    ) -> None:
        self.bot, self.gateway = bot, gateway
        self.timeout_s, self.interval_s, self.limit = timeout_s, interval_s, limit
        self.marker: int | None = None
        # Client messages handed to the gateway so far.
        self.received = 0
        self._types = [UpdateType(kind) for kind in UPDATE_TYPES]
        self._answering: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set (a long poll under way is abandoned) or the task is cancelled.
        InvalidToken is raised: polling with a refused token cannot recover."""
        loop = asyncio.get_running_loop()
        failures = 0
        while not stop.is_set():
            started = loop.time()
            try:
                answer = await _unless_stopped(self._fetch(), stop)
            except InvalidToken:
                raise
            except Exception as exc:
                # A network fault, MAX's 5xx or 429, an answer that is not JSON: polling goes on.
                failures += 1
                pause = _pause(exc, failures)
                log.warning("MAX GET /updates failed (%s); polling again in %.0f s", exc, pause)
                await _sleep_unless_stopped(pause, stop)
                continue
            if answer is None:
                break
            failures = 0
            await self.feed(answer)
            # Within MAX's two polls a second; a long poll that waited for updates needs no pause.
            await _sleep_unless_stopped(self.interval_s - (loop.time() - started), stop)

    async def _fetch(self) -> dict[str, Any]:
        try:
            return await self.bot.get_updates(
                limit=self.limit, timeout=self.timeout_s, marker=self.marker, types=self._types
            )
        except InvalidToken:
            log.error("MAX refused the bot's token: polling stops")
            raise

    async def feed(self, answer: dict[str, Any]) -> None:
        """Submit one GET /updates answer's updates in order, then keep its marker (confirmed with the
        next poll)."""
        for raw in answer.get("updates") or []:
            message, callback_id = incoming(parse_update(raw))
            if callback_id:
                # Answered beside the poll, not before the next update: a round trip per press would hold
                # up every chat's messages behind it.
                self._answer(callback_id)
            if message is not None:
                self.received += 1
                await self.gateway.submit(message)
        marker = answer.get("marker")
        if isinstance(marker, int) and not isinstance(marker, bool):
            self.marker = marker

    def _answer(self, callback_id: str) -> None:
        task = asyncio.create_task(self.gateway.answer_callback(callback_id))
        self._answering.add(task)
        task.add_done_callback(self._answering.discard)

    async def settle(self) -> None:
        """Wait for the button answers still under way."""
        await asyncio.gather(*self._answering, return_exceptions=True)

    def abandon(self) -> None:
        """Cancel the button answers still under way (the session is about to close)."""
        for task in self._answering:
            task.cancel()


async def _unless_stopped(
    fetch: Coroutine[Any, Any, dict[str, Any]], stop: asyncio.Event
) -> dict[str, Any] | None:
    """The fetch's answer, or None when `stop` is set first (the fetch is then cancelled)."""
    fetching = asyncio.ensure_future(fetch)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({fetching, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (fetching, stopping):
            task.cancel()
        await asyncio.gather(fetching, stopping, return_exceptions=True)
    if fetching.cancelled():
        return None
    answer: dict[str, Any] = fetching.result()
    return answer


async def _sleep_unless_stopped(seconds: float, stop: asyncio.Event) -> None:
    if seconds > 0 and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


def _pause(exc: Exception, failures: int) -> float:
    if isinstance(exc, MaxApiError) and exc.code == 429:
        return ERROR_PAUSE_S
    return min(MAX_ERROR_PAUSE_S, ERROR_PAUSE_S * 2.0 ** (failures - 1))
