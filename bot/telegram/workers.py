"""Several stateless workers behind one Telegram webhook (a reverse proxy spreads the POSTs).

A worker stores each update (answering Telegram only once it is stored, so a crash loses nothing),
then handles the chat's stored messages in arrival order under the chat's database lock, so one chat is
handled by one worker at a time, in order, and never twice. A message whose chat has nothing else
waiting is stored and handled in one transaction (all of it or nothing, then Telegram sends it again).
Replies go to the outbox, which every worker drains chat by chat; a chat left half-done by a dead worker
is picked up by the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram import Bot
from aiogram.types import Update
from aiohttp import web
from pydantic import ValidationError

from bot.channels.gateway import STALE_CLAIM_S
from bot.channels.limits import RateLimits
from bot.telegram.aiogram_io import AiogramOutbound
from bot.telegram.gateway import TelegramGateway
from bot.telegram.inbound import from_callback, from_message
from common.messages import IncomingMessage
from dialogs.safetext import clean_json_body
from wiring.runtime import Runtime

log = logging.getLogger(__name__)
WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# A message stored this long ago and still not handled belongs to a worker that died or hangs.
ORPHAN_AFTER_S = 3.0
SWEEP_EVERY_S = 1.0
MAX_UPDATE_BYTES = 1 << 20


def incoming(update: Update) -> tuple[IncomingMessage | None, str | None]:
    """The platform-free message in an update, and the callback id to answer, if any."""
    if update.message is not None:
        return from_message(update.message), None
    if update.edited_message is not None:
        return from_message(update.edited_message, edited=True), None
    if update.callback_query is not None:
        return from_callback(update.callback_query), update.callback_query.id
    return None, None


class WebhookWorker:
    """One worker process's webhook endpoint, chat processing, sweeper and outbox drainer."""

    def __init__(
        self,
        runtime: Runtime,
        bot: Bot,
        secret: str,
        *,
        threads: int = 2,
        limits: RateLimits | None = None,
        orphan_after_s: float = ORPHAN_AFTER_S,
        stale_claim_s: float = STALE_CLAIM_S,
    ) -> None:
        self.runtime, self.bot, self.secret = runtime, bot, secret
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="worker")
        self.gateway = TelegramGateway(runtime.service, AiogramOutbound(bot), limits)
        self.orphan_after_s = orphan_after_s
        self.stale_claim_s = stale_claim_s
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._side_tasks: set[asyncio.Task[None]] = set()
        self.handled = 0

    def app(self) -> web.Application:
        """The aiohttp app: POST updates to WEBHOOK_PATH; background work runs while it serves."""
        app = web.Application(client_max_size=MAX_UPDATE_BYTES)
        app.router.add_post(WEBHOOK_PATH, self.receive)
        app.router.add_get("/healthz", self.health)
        app.cleanup_ctx.append(self._background)
        return app

    async def health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "handled": self.handled})

    async def receive(self, request: web.Request) -> web.Response:
        """Store the update, then answer: 200 once stored, 503 when storage failed (Telegram retries)."""
        if self.secret and request.headers.get(SECRET_HEADER) != self.secret:
            return web.Response(status=401, text="wrong secret")
        try:
            # Leniently: a lone surrogate escape must not cost the client's message (cleaned once here).
            update = Update.model_validate(
                json.loads(clean_json_body(await request.read())), context={"bot": self.bot}
            )
        except (ValueError, ValidationError) as exc:
            log.warning("rejected a malformed update: %s", str(exc).splitlines()[0][:200])
            return web.Response(status=400, text="malformed update")
        message, callback_id = incoming(update)
        if message is None:
            return web.Response(text="ignored")
        loop = asyncio.get_running_loop()
        try:
            # Stored, and handled in the same transaction when the chat has nothing else waiting (one
            # transaction, not two); otherwise left for the chat's task below, in order.
            handled = await loop.run_in_executor(self.executor, self.runtime.service.receive, message)
        except Exception:
            log.exception("could not store an update of chat %s; Telegram will retry", message.chat_id)
            return web.Response(status=503, text="try again")
        if callback_id:
            # Kept until done: a task nobody references may be collected mid-way.
            answering = asyncio.create_task(self.gateway.answer_callback(callback_id))
            self._side_tasks.add(answering)
            answering.add_done_callback(self._side_tasks.discard)
        if handled:
            self.handled += handled
            self.gateway.wake_outbox()
        else:
            self.schedule(message.channel, message.chat_id)
        return web.Response(text="ok")

    def schedule(self, channel: str, chat_id: str) -> None:
        """Handle a chat's waiting messages soon; one task per chat in this worker."""
        key = f"{channel}\x00{chat_id}"
        if key in self._running:
            self._again.add(key)
            return
        self._running[key] = asyncio.create_task(self._process(key, channel, chat_id))

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
                        self.gateway.wake_outbox()
                except Exception:
                    log.exception("handling chat %s failed; the sweeper will retry", chat_id)
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
                self.schedule(channel, chat_id)

    async def _background(self, _app: web.Application) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(self._sweep(), name="sweeper"),
            asyncio.create_task(
                self.gateway.deliver_outbox(self.runtime.desk_store, stale_claim_s=self.stale_claim_s),
                name="outbox",
            ),
        ]
        yield
        for task in [*tasks, *self._running.values()]:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.bot.session.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


def run_worker(runtime: Runtime, bot: Bot, secret: str, host: str, port: int, **options: Any) -> None:
    """Serve one worker until interrupted."""
    worker = WebhookWorker(runtime, bot, secret, **options)
    web.run_app(worker.app(), host=host, port=port, print=None)
