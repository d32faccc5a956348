"""Several stateless workers behind the messengers' webhooks (a reverse proxy spreads the POSTs).

A worker stores each update (answering the messenger only once it is stored, so a crash loses nothing),
then handles the chat's stored messages in arrival order under the chat's database lock, so one chat is
handled by one worker at a time, in order, and never twice. A message whose chat has nothing else
waiting is stored and handled in one transaction (all of it or nothing, then the messenger sends it
again). Replies go to the outbox, which every worker drains chat by chat, one drainer per messenger; a
chat left half-done by a dead worker is picked up by the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.channels.gateway import STALE_CLAIM_S, ChannelGateway
from bot.channels.metrics_site import add_metrics
from bot.channels.webhook import MAX_WEBHOOK_BYTES, WebhookReader
from common.messages import DeliveryReceipt
from wiring.runtime import Runtime

log = logging.getLogger(__name__)
# A message stored this long ago and still not handled belongs to a worker that died or hangs.
ORPHAN_AFTER_S = 3.0
SWEEP_EVERY_S = 1.0
RecordReceipts = Callable[[Sequence[DeliveryReceipt]], None]


class ChannelWorker:
    """One worker process's webhook endpoints (one per messenger), chat processing, sweeper and outbox
    drainers."""

    def __init__(
        self,
        runtime: Runtime,
        channels: Sequence[tuple[WebhookReader, ChannelGateway]],
        *,
        threads: int = 2,
        orphan_after_s: float = ORPHAN_AFTER_S,
        stale_claim_s: float = STALE_CLAIM_S,
        record_receipts: RecordReceipts | None = None,
    ) -> None:
        self.runtime = runtime
        self.channels = list(channels)
        self.gateways = {gateway.channel: gateway for _reader, gateway in self.channels}
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="worker")
        self.orphan_after_s = orphan_after_s
        self.stale_claim_s = stale_claim_s
        self.record_receipts = record_receipts
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._side_tasks: set[asyncio.Task[None]] = set()
        self.handled = 0

    def app(self) -> web.Application:
        """The aiohttp app: each messenger's webhook at its reader's path; background work runs while it
        serves."""
        app = web.Application(client_max_size=MAX_WEBHOOK_BYTES)
        for reader, gateway in self.channels:
            app.router.add_route("*", reader.path, self._endpoint(reader, gateway))
        app.router.add_get("/healthz", self.health)
        add_metrics(app)
        app.cleanup_ctx.append(self._background)
        return app

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "handled": self.handled})

    def _endpoint(self, reader: WebhookReader, gateway: ChannelGateway) -> Any:
        async def receive(request: web.Request) -> web.Response:
            return await self.receive(reader, gateway, request)

        return receive

    async def receive(
        self, reader: WebhookReader, gateway: ChannelGateway, request: web.Request
    ) -> web.Response:
        """Store the update, then answer: the reader's answer once stored, 503 when storage failed (the
        messenger retries)."""
        result = await reader.read(request)
        loop = asyncio.get_running_loop()
        for item in result.inbound:
            message = item.message
            try:
                # Stored, and handled in the same transaction when the chat has nothing else waiting (one
                # transaction, not two); otherwise left for the chat's task below, in order.
                handled = await loop.run_in_executor(self.executor, self.runtime.service.receive, message)
            except Exception:
                log.exception("could not store an update of %s chat %s", message.channel, message.chat_id)
                return web.Response(status=503, text="try again")
            if item.callback_id:
                # Kept until done: a task nobody references may be collected mid-way.
                answering = asyncio.create_task(gateway.answer_callback(item.callback_id))
                self._side_tasks.add(answering)
                answering.add_done_callback(self._side_tasks.discard)
            if handled:
                self.handled += handled
                self._wake()
            else:
                self.schedule(message.channel, message.chat_id)
        if result.receipts and self.record_receipts is not None:
            try:
                await loop.run_in_executor(self.executor, self.record_receipts, result.receipts)
            except Exception:
                log.exception("could not store %d delivery receipts", len(result.receipts))
                return web.Response(status=503, text="try again")
        return result.response()

    def schedule(self, channel: str, chat_id: str) -> None:
        """Handle a chat's waiting messages soon; one task per chat in this worker."""
        key = f"{channel}\x00{chat_id}"
        if key in self._running:
            self._again.add(key)
            return
        self._running[key] = asyncio.create_task(self._process(key, channel, chat_id))

    def _wake(self) -> None:
        # Replies may go to another messenger's outbox (the client's latest channel): wake them all.
        for gateway in self.gateways.values():
            gateway.wake_outbox()

    async def _process(self, key: str, channel: str, chat_id: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._again.discard(key)
                try:
                    done = await loop.run_in_executor(
                        self.executor, self.runtime.service.process_pending, channel, chat_id
                    )
                    self.handled += done
                    if done:
                        self._wake()
                except Exception:
                    log.exception("handling %s chat %s failed; the sweeper will retry", channel, chat_id)
                    return
                if key not in self._again:
                    return
        finally:
            self._running.pop(key, None)

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_EVERY_S)
            try:
                before = datetime.now(UTC) - timedelta(seconds=self.orphan_after_s)
                chats = await loop.run_in_executor(self.executor, self.runtime.store.chats_waiting, before)
            except Exception:
                log.exception("looking for orphaned chats failed; will retry")
                continue
            for channel, chat_id in chats:
                if channel in self.gateways:
                    self.schedule(channel, chat_id)

    async def _background(self, _app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(self._sweep(), name="sweeper")]
        for channel, gateway in self.gateways.items():
            drainer = gateway.deliver_outbox(self.runtime.desk_store, stale_claim_s=self.stale_claim_s)
            tasks.append(asyncio.create_task(drainer, name=f"outbox {channel}"))
        yield
        for task in [*tasks, *self._running.values()]:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for gateway in self.gateways.values():
            await gateway.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


def run_worker(worker: ChannelWorker, host: str, port: int) -> None:
    """Serve one worker until interrupted."""
    web.run_app(worker.app(), host=host, port=port, print=None)
