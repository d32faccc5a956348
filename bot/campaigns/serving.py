"""Campaigns sent beside a serving process (`tonebot demo`, `tonebot run <messenger>`, `tonebot worker`):
triggered messages within seconds of their event, follow-ups when they fall due, resumed campaigns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from typing import Any

from aiohttp import web

from bot.campaigns.outbounds import close_all, messenger_outbounds
from bot.campaigns.sender import CampaignSender
from bot.channels.metrics_site import METRICS_HOST, metrics_port, start_metrics_site
from bot.channels.outbound import Outbound
from storage.campaigns import CampaignStore
from wiring.runtime import Runtime

log = logging.getLogger(__name__)
STOP_WAIT_S = 10.0
# Where the web app keeps what to call when a trigger event was queued (POST /api/events).
LISTENERS = "campaign_listeners"


def campaign_store(runtime: Runtime) -> CampaignStore:
    """The campaign store over the runtime's database, sharing its write lock."""
    return CampaignStore(runtime.store.engine, runtime.store.write_lock)


@contextlib.asynccontextmanager
async def sending_beside(
    runtime: Runtime, outbounds: Mapping[str, Outbound], *, own: bool, stop: asyncio.Event | None = None
) -> AsyncIterator[CampaignSender]:
    """A sender running forever while the block runs (yielded, for `wake`); stopped after, its messages in
    flight recorded. `own`: the outbounds are the sender's, closed with it."""
    sender = CampaignSender(campaign_store(runtime), runtime.engine, outbounds)
    task = asyncio.create_task(sender.run_forever(stop), name="campaigns")
    try:
        yield sender
    finally:
        sender.stop()
        try:
            await asyncio.wait_for(task, STOP_WAIT_S)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()
        except Exception:
            log.exception("the campaign sender failed")
        if own:
            await close_all(outbounds)


async def serve_with_campaigns(
    runtime: Runtime, env: Mapping[str, str], channels: Collection[str], serving: Awaitable[None]
) -> None:
    """Await `serving` (a messenger's polling) with campaigns sent in `channels` beside it, and /metrics
    on a site of its own (a polling process serves no other HTTP)."""
    outbounds = messenger_outbounds(runtime, env, channels)
    try:
        port = metrics_port(env)
    except ValueError as exc:
        # The bot still answers clients; the admin reads why metrics are missing in the log.
        log.error("%s; /metrics is not served", exc)
        port = None
    site = await start_metrics_site(METRICS_HOST, port) if port else None
    try:
        async with sending_beside(runtime, outbounds, own=True):
            await serving
    finally:
        if site is not None:
            await site.cleanup()


def beside_app(
    app: web.Application, runtime: Runtime, make_outbounds: Callable[[], Mapping[str, Outbound]], *, own: bool
) -> None:
    """Send campaigns while an aiohttp app (a webhook, a worker) serves; `make_outbounds` is called on its
    event loop at start-up."""

    async def sending(_app: web.Application) -> AsyncIterator[None]:
        async with sending_beside(runtime, make_outbounds(), own=own):
            yield

    app.cleanup_ctx.append(sending)


def listen(app: Any, sender: CampaignSender) -> None:
    """Let the web app wake the sender when it queues a trigger event (`app.state.campaign_listeners`)."""
    listeners = getattr(app.state, LISTENERS, None)
    if listeners is None:
        listeners = []
        setattr(app.state, LISTENERS, listeners)
    listeners.append(sender.wake)
