"""A round-robin reverse proxy on 127.0.0.1, like nginx in front of several tonebot workers.

A backend that refuses the connection or drops it mid-request is skipped and the request goes to the
next one (nginx's `proxy_next_upstream error`), which is what lets a killed worker's share move on.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import aiohttp
from aiohttp import web

FORWARDED_HEADERS = ("Content-Type", "X-Telegram-Bot-Api-Secret-Token")


class Balancer:
    """Forwards every POST to the backends in turn."""

    def __init__(self, backends: Sequence[str]) -> None:
        self.backends = list(backends)
        self._turn = itertools.count()
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self.url = ""
        self.failovers = 0

    async def start(self) -> str:
        """Listen on a free port; returns the base URL."""
        app = web.Application(client_max_size=1 << 22)
        app.router.add_route("POST", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._client = aiohttp.ClientSession(trust_env=False, timeout=aiohttp.ClientTimeout(total=30))
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
        first = next(self._turn)
        assert self._client is not None
        for offset in range(len(self.backends)):
            backend = self.backends[(first + offset) % len(self.backends)]
            try:
                async with self._client.post(backend + request.path, data=body, headers=headers) as answer:
                    return web.Response(status=answer.status, body=await answer.read())
            except (aiohttp.ClientConnectionError, TimeoutError):
                self.failovers += 1
                continue
        return web.Response(status=502, text="no backend answered")
