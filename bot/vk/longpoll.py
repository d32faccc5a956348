"""Bots Long Poll: groups.getLongPollServer, then the long-poll server, its failures handled as VK documents.

failed=1  the history is partly lost: go on from the ts VK gives
failed=2  the key has expired: get a new key, keep the ts (nothing is lost)
failed=3  the information is lost: get a new key and ts
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from vkbottle import API, VKAPIError

from bot.channels.outbound import TemporaryFailure
from dialogs.safetext import loads_clean

log = logging.getLogger(__name__)
WAIT_S = 25
# A failing server or network is asked again at most this far apart: after an outage, events flow at once.
MAX_BACKOFF_S = 5.0
# VK errors worth asking again: 1 unknown, 6 too many requests, 9 flood, 10 internal. Any other (5: the
# token is wrong, 15/27: the token lacks rights or is not a community's) needs a person, not a retry.
RETRIED_ERRORS = frozenset({1, 6, 9, 10})
Server = dict[str, Any]


class BotsLongPoll:
    """The community's events, batch by batch, for as long as it is iterated."""

    def __init__(self, api: API, group_id: int, wait: int = WAIT_S) -> None:
        self.api = api
        self.group_id = group_id
        self.wait = wait

    async def batches(self) -> AsyncIterator[list[dict[str, Any]]]:
        """Each answer's updates (possibly none), in VK's order, forever."""
        server = await self._server()
        log.warning("tonebot is answering in VK as community %s (Bots Long Poll)", self.group_id)
        failures = 0
        while True:
            try:
                answer = await self._check(server)
                server = await self._after(server, answer)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                # ValueError: an answer that is no JSON (a proxy's error page).
                failures += 1
                delay = min(MAX_BACKOFF_S, 0.1 * 2**failures)
                log.warning("VK long poll failed (%s: %s); again in %.1f s", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            updates = answer.get("updates")
            if "failed" not in answer and isinstance(updates, list):
                yield [update for update in updates if isinstance(update, dict)]

    async def _after(self, server: Server, answer: dict[str, Any]) -> Server:
        """The server and ts to ask next."""
        failed = answer.get("failed")
        if failed is None:
            return {**server, "ts": answer["ts"]}
        log.info("VK long poll says failed=%s", failed)
        if failed == 1:
            return {**server, "ts": answer["ts"]}
        fresh = await self._server()
        return {**fresh, "ts": server["ts"]} if failed == 2 else fresh

    async def _server(self) -> Server:
        failures = 0
        while True:
            try:
                found = await self.api.groups.get_long_poll_server(group_id=self.group_id)
                return {"server": found.server, "key": found.key, "ts": found.ts}
            except VKAPIError as exc:
                if exc.code not in RETRIED_ERRORS:
                    raise
                error: Exception = exc
            except (aiohttp.ClientError, TimeoutError, TemporaryFailure) as exc:
                error = exc
            failures += 1
            delay = min(MAX_BACKOFF_S, 0.1 * 2**failures)
            log.warning("groups.getLongPollServer failed (%s); again in %.1f s", error, delay)
            await asyncio.sleep(delay)

    async def _check(self, server: Server) -> dict[str, Any]:
        text = await self.api.http_client.request_text(
            server["server"],
            method="GET",
            params={"act": "a_check", "key": server["key"], "ts": server["ts"], "wait": self.wait},
            timeout=aiohttp.ClientTimeout(total=self.wait + 10),
        )
        try:
            answer = orjson.loads(text)
        except orjson.JSONDecodeError:
            # A lone surrogate escape in one client's text must not fail the whole batch, again and again.
            answer = loads_clean(text)
        if not isinstance(answer, dict):
            raise ValueError(f"not a long-poll answer: {text[:200]!r}")
        return answer
