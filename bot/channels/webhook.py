"""Webhooks of any messenger: a reader turns one HTTP request into client messages and the answer the
messenger expects; the same readers serve a single bot process and the PostgreSQL workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from bot.channels.gateway import ChannelGateway
from bot.channels.metrics_site import add_metrics
from common.messages import DeliveryReceipt, IncomingMessage
from storage.desk.base import Outbox

log = logging.getLogger(__name__)
# A messenger's update is a few kilobytes; anything much larger is refused while it streams in.
MAX_WEBHOOK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Inbound:
    """A client's message from a webhook, and the button press to acknowledge (its id), if any."""

    message: IncomingMessage
    callback_id: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """What one webhook request carried and what to answer the messenger (VK wants "ok", or the
    confirmation code; WhatsApp's verification wants the challenge back)."""

    inbound: Sequence[Inbound] = field(default_factory=tuple)
    receipts: Sequence[DeliveryReceipt] = field(default_factory=tuple)
    status: int = 200
    body: str = "ok"

    def response(self) -> web.Response:
        """The HTTP answer."""
        return web.Response(status=self.status, text=self.body)


class WebhookReader(Protocol):
    """One messenger's webhook: checks the request is the messenger's (secret, signature) and reads it."""

    channel: str
    path: str

    async def read(self, request: web.Request) -> WebhookResult:
        """The messages in the request; a 4xx result (and nothing inbound) when it is not genuine."""
        ...


def webhook_app(
    reader: WebhookReader,
    gateway: ChannelGateway,
    outbox: Outbox | None = None,
    record_receipts: Callable[[Sequence[DeliveryReceipt]], None] | None = None,
) -> web.Application:
    """An aiohttp app serving `reader.path` (GET and POST) in one bot process: messages go through the
    gateway's per-chat queues; with an outbox, operators' replies are delivered too; delivery receipts
    are stored with `record_receipts`."""
    app = web.Application(client_max_size=MAX_WEBHOOK_BYTES)

    acknowledging: set[asyncio.Task[None]] = set()

    async def receive(request: web.Request) -> web.Response:
        result = await reader.read(request)
        for item in result.inbound:
            if item.callback_id:
                # Beside the answer: the messenger wants it at once; the acknowledgement waits for the pace.
                task = asyncio.create_task(gateway.answer_callback(item.callback_id))
                acknowledging.add(task)
                task.add_done_callback(acknowledging.discard)
            await gateway.submit(item.message)
        if result.receipts and record_receipts is not None:
            try:
                await asyncio.to_thread(record_receipts, result.receipts)
            except Exception:
                # Not stored: the messenger is asked to send them again.
                log.exception("could not store %d delivery receipts", len(result.receipts))
                return web.Response(status=503, text="try again")
        return result.response()

    app.router.add_route("*", reader.path, receive)
    add_metrics(app)

    async def background(_app: web.Application) -> AsyncIterator[None]:
        drainer = asyncio.create_task(gateway.deliver_outbox(outbox)) if outbox is not None else None
        yield
        if drainer is not None:
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer
        await gateway.close()

    app.cleanup_ctx.append(background)
    return app
