"""`/metrics` for the messenger processes' aiohttp apps (webhooks, workers), and a small site of its own for
processes that only poll (`tonebot run telegram` without --webhook). Same rule as the web app's: open to this
machine, a bearer token (TONEBOT_METRICS_TOKEN) for other addresses."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from aiohttp import web

from common.metrics import CONTENT_TYPE, exposition, may_read, metrics_token

log = logging.getLogger(__name__)
METRICS_PATH = "/metrics"
# Prometheus' range for exporters; a polling process listens here unless TONEBOT_METRICS_PORT says otherwise.
DEFAULT_METRICS_PORT = 9464
# A polling process's own site listens on this machine only: other readers go through a proxy with the token.
METRICS_HOST = "127.0.0.1"


async def metrics(request: web.Request) -> web.Response:
    """Every tonebot_ metric of this process, in the Prometheus text format."""
    asked = {name.lower(): value for name, value in request.headers.items()}
    if not may_read(request.remote, asked, metrics_token(os.environ)):
        return web.Response(
            status=401,
            text="metrics need a bearer token (TONEBOT_METRICS_TOKEN)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return web.Response(
        body=exposition(), headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"}
    )


def add_metrics(app: web.Application) -> web.Application:
    """Serve /metrics in an aiohttp app (a webhook's, a worker's)."""
    app.router.add_get(METRICS_PATH, metrics)
    return app


def metrics_port(environ: Mapping[str, str]) -> int | None:
    """Where a polling process serves /metrics (TONEBOT_METRICS_PORT; 0 turns it off); ValueError for junk."""
    raw = environ.get("TONEBOT_METRICS_PORT", "").strip()
    if not raw:
        return DEFAULT_METRICS_PORT
    if not raw.isdigit() or int(raw) > 65535:
        raise ValueError(f"TONEBOT_METRICS_PORT must be a port number (0 to turn metrics off), got {raw!r}")
    return int(raw) or None


async def start_metrics_site(host: str, port: int) -> web.AppRunner | None:
    """Serve /metrics on its own while the process polls; a port already taken is logged, not fatal
    (the bot answers clients either way)."""
    runner = web.AppRunner(add_metrics(web.Application()), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        log.warning("metrics not served on %s:%s: %s", host, port, exc)
        await runner.cleanup()
        return None
    log.info("metrics at http://%s:%s%s", host, port, METRICS_PATH)
    return runner
