"""A messenger gateway: one chat's messages in order, many chats at once, every reply delivered.

Updates are queued per chat and a worker per busy chat runs them through the conversation service and
sends the replies, throttled and retried until the messenger accepts them. Every adapter (Telegram, VK,
MAX, WhatsApp) wraps one of these around its library's sending calls. Over SQLite the waiting chats' turns
run together on the event loop, one transaction for them all; other services run one turn at a time on a
thread (storage is synchronous).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Literal

from bot.channels.limits import RateLimits, Throttle
from bot.channels.outbound import NotAllowed, Outbound, Rejected, RetryLater, TemporaryFailure
from bot.channels.text_split import TELEGRAM_TEXT_LIMIT, split_text
from common.messages import Button, IncomingMessage, Reply
from common.metrics import SEND_RETRIES, counted
from common.names import Delivery, Direction
from dialogs.engine import Turn
from dialogs.service import ConversationService
from storage.desk.base import Outbox

log = logging.getLogger(__name__)
SEEN_UPDATES_KEPT = 10_000
# A failing messenger is retried at least this often: after an outage, replies flow within seconds.
MAX_BACKOFF_S = 10.0
HANDLE_ATTEMPTS = 4
TYPING_AFTER_S = 0.3
# "typing…" is cosmetic and costs a Bot API call like a reply does: with more turns than this waiting
# for the handler, the bot is saturated, and indicators would double its calls exactly then (measured
# with 1,000 chats: one indicator a message, the bot's CPU per reply 2.9x an echo bot's). They are shed.
TYPING_MAX_BACKLOG = 20
OUTBOX_POLL_S = 0.5
# A claimed message not sent within this time belongs to a worker that died; a live worker retrying
# one send for longer than this may see it sent twice.
STALE_CLAIM_S = 60.0
RELEASE_EVERY_S = 30.0
# Turns stored in one transaction at most: bounds how long one batch holds the event loop (~0.5 ms each).
MAX_BATCH = 64
TurnsOn = Literal["loop", "thread", "single"]


class ChannelGateway:
    """Runs one messenger's messages through tonebot and delivers the replies."""

    def __init__(
        self,
        service: ConversationService,
        outbound: Outbound,
        limits: RateLimits | None = None,
        *,
        handle_attempts: int = HANDLE_ATTEMPTS,
        retry_base_s: float = 0.2,
        max_retry_s: float = 5.0,
        handler_threads: int = 1,
        turns: TurnsOn = "loop",
        channel: str = "telegram",
        text_limit: int = TELEGRAM_TEXT_LIMIT,
    ) -> None:
        self.service = service
        # The channel name the outbox files this messenger's replies under, and its longest message.
        self.channel = channel
        self.text_limit = text_limit
        # A service over an embedded database runs turns in batches, one transaction each (group
        # commit), on the event loop ("loop") or the handler thread ("thread"); any other service one by
        # one on the handler thread ("single"), where a slow database never stalls the loop.
        self.turns_on: TurnsOn = turns if getattr(service, "batches", False) else "single"
        self._batch: list[tuple[IncomingMessage, asyncio.Future[Turn | None]]] = []
        self._batcher: asyncio.Task[None] | None = None
        self.handle_attempts = handle_attempts
        self.retry_base_s = retry_base_s
        self.max_retry_s = max_retry_s
        # The service is CPU-bound Python over a single-writer SQLite file: more threads only fight over
        # the GIL and the write lock (measured: 58 ms a message with 6 threads, 3 ms with one).
        self._executor = ThreadPoolExecutor(max_workers=handler_threads, thread_name_prefix="tonebot")
        self.outbound = outbound
        self.throttle = Throttle(limits or RateLimits())
        self._queues: dict[str, asyncio.Queue[IncomingMessage]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.delivered = 0
        self._outbox_wake: asyncio.Event | None = None
        self._typing: set[asyncio.Task[None]] = set()
        # Turns handed to the handler thread and not finished yet (running or queued behind it).
        self._backlog = 0
        # Chats whose client has not allowed messages (VK's 901, a blocked bot): nothing is sent there.
        self.not_allowed: set[str] = set()

    def _first_time(self, key: str) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > SEEN_UPDATES_KEPT:
            self._seen.popitem(last=False)
        return True

    async def submit(self, message: IncomingMessage, *, callback_id: str | None = None) -> None:
        """Queue a message for its chat; a duplicate (a retried or replayed update) is dropped."""
        if callback_id:
            await self.answer_callback(callback_id)
        if not self._first_time(f"{message.chat_id}:{message.message_id}"):
            return
        # Writing again opens the door a refusal closed.
        self.not_allowed.discard(message.chat_id)
        queue = self._queues.setdefault(message.chat_id, asyncio.Queue())
        queue.put_nowait(message)
        if message.chat_id not in self._workers:
            self._workers[message.chat_id] = asyncio.create_task(self._work(message.chat_id))

    async def _work(self, chat_id: str) -> None:
        queue = self._queues[chat_id]
        try:
            while not queue.empty():
                message = queue.get_nowait()
                await self._handle(message)
        finally:
            del self._workers[chat_id]
            if queue.empty():
                self._queues.pop(chat_id, None)
            else:
                self._workers[chat_id] = asyncio.create_task(self._work(chat_id))

    def _show_typing(self, chat_id: str) -> None:
        if self._backlog > TYPING_MAX_BACKLOG:
            return
        task = asyncio.create_task(self._safely(self.outbound.typing(chat_id), "typing"))
        self._typing.add(task)
        task.add_done_callback(self._typing.discard)

    async def _handle(self, message: IncomingMessage) -> None:
        # "typing…" only when an answer takes a noticeable moment: a quick reply needs no indicator, and
        # skipping it halves the calls to the messenger. A timer, not a task: most turns end before it fires.
        typing = asyncio.get_running_loop().call_later(TYPING_AFTER_S, self._show_typing, message.chat_id)
        try:
            turn = await self._turn(message)
        finally:
            typing.cancel()
        for index, reply in enumerate(turn.replies):
            await self._deliver(message.chat_id, reply, f"{message.message_id}:{index}")

    async def _turn(self, message: IncomingMessage) -> Turn:
        """Handle a message, however long storage is away: the client hears an apology once, the message
        waits here (and the chat's later ones behind it, in order) until it can be stored and answered."""
        if self.turns_on != "single":
            turn = await self._turn_in_batch(message)
            if turn is not None:
                return turn
        attempt = 0
        while True:
            attempt += 1
            try:
                loop = asyncio.get_running_loop()
                self._backlog += 1
                try:
                    return await loop.run_in_executor(self._executor, self.service.handle, message)
                finally:
                    self._backlog -= 1
            except Exception:
                # Storage may be busy, read-only or unreachable: nothing is dropped, the message is retried.
                log.exception("handling a message in chat %s failed (attempt %d)", message.chat_id, attempt)
            if attempt == self.handle_attempts:
                for index, reply in enumerate(self.service.apology().replies):
                    await self._deliver(message.chat_id, reply, f"{message.message_id}:sorry{index}")
            await asyncio.sleep(min(self.max_retry_s, self.retry_base_s * 2**attempt))

    async def _turn_in_batch(self, message: IncomingMessage) -> Turn | None:
        """The message's turn, run together with the other chats' waiting ones; None when their batch
        could not be stored (then each is retried alone)."""
        future: asyncio.Future[Turn | None] = asyncio.get_running_loop().create_future()
        self._batch.append((message, future))
        if self._batcher is None:
            # Started next round of the loop: every chat whose message is ready by then joins the batch.
            self._batcher = asyncio.create_task(self._run_batches())
        self._backlog += 1
        try:
            return await future
        finally:
            self._backlog -= 1

    async def _run_batches(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[tuple[IncomingMessage, asyncio.Future[Turn | None]]] = []
        try:
            while self._batch:
                batch, self._batch = self._batch[:MAX_BATCH], self._batch[MAX_BATCH:]
                arrived = [message for message, _ in batch]
                turns: list[Turn] | list[None]
                try:
                    if self.turns_on == "loop":
                        # Short CPU-bound turns over a local file: cheaper here than a hand-off to a
                        # thread that then fights the loop for the GIL.
                        turns = self.service.handle_all(arrived)
                    else:
                        turns = await loop.run_in_executor(self._executor, self.service.handle_all, arrived)
                except Exception:
                    log.warning("a batch of %d turns failed; each is tried alone", len(batch), exc_info=True)
                    turns = [None] * len(batch)
                for (_, future), turn in zip(batch, turns, strict=True):
                    if not future.done():
                        future.set_result(turn)
                # Let the replies go out (and the next updates in) before the next batch.
                await asyncio.sleep(0)
        finally:
            self._batcher = None
            # Cancelled (shutting down): nobody waits for a batch that will not run.
            for _, future in [*batch, *self._batch]:
                future.cancel()
            self._batch = []

    async def deliver_outbox(
        self, store: Outbox, *, poll_s: float = OUTBOX_POLL_S, stale_claim_s: float = STALE_CLAIM_S
    ) -> None:
        """Forever: send what operators wrote (and what their actions said) to this messenger's chats."""
        loop = asyncio.get_running_loop()
        last_release = float("-inf")
        self._outbox_wake = wake = asyncio.Event()
        while True:
            try:
                if loop.time() - last_release >= min(stale_claim_s, RELEASE_EVERY_S):
                    # Claims older than any live send are a dead worker's: put them back.
                    claimed_before = datetime.now(UTC) - timedelta(seconds=stale_claim_s)
                    await loop.run_in_executor(
                        self._executor, store.release_stale, self.channel, claimed_before
                    )
                    last_release = loop.time()
                await self.deliver_pending(store)
            except Exception:
                log.exception("delivering the outbox failed; will retry")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), poll_s)
            wake.clear()

    def wake_outbox(self) -> None:
        """Look at the outbox now instead of at the next poll (replies were just stored)."""
        if self._outbox_wake is not None:
            self._outbox_wake.set()

    async def answer_callback(self, callback_id: str) -> None:
        """Stop the client's button spinner; failures only logged."""
        await self._safely(self.outbound.answer_callback(callback_id), "answer callback")

    async def deliver_pending(self, store: Outbox) -> int:
        """Send the messages waiting in the outbox for this messenger's chats; how many were handled."""
        loop = asyncio.get_running_loop()
        items = await loop.run_in_executor(
            self._executor, store.claim_pending, self.channel, datetime.now(UTC)
        )
        for index, item in enumerate(items):
            accepted, external_id = await self._deliver(item.chat_id, item.reply, f"outbox:{item.id}")
            status = Delivery.SENT if accepted else Delivery.FAILED
            if accepted:
                # People's replies and rating requests; the bot's own replies count where turns run.
                counted(self.channel, Direction.OUT)
            rest = [later.id for later in items[index + 1 :]]
            record = functools.partial(
                store.record_send, item.id, status, rest, datetime.now(UTC), external_id=external_id
            )
            await loop.run_in_executor(self._executor, record)
        return len(items)

    async def _deliver(self, chat_id: str, reply: Reply, key: str) -> tuple[bool, str]:
        """Send a reply in chunks; `key` names it stably (the same on every retry, and after a restart for
        the outbox's messages), so a messenger that deduplicates (VK's random_id) sends it once. Whether
        every chunk was accepted, and the messenger's id of the last one ("" when it gives none)."""
        if chat_id in self.not_allowed:
            log.info("%s chat %s does not allow messages; a reply is not sent", self.channel, chat_id)
            return False, ""
        chunks = split_text(reply.text, self.text_limit)
        accepted, external_id = True, ""
        for index, chunk in enumerate(chunks):
            buttons = reply.buttons if index == len(chunks) - 1 else ()
            sent, message_id = await self._send_until_accepted(chat_id, chunk, buttons, f"{key}:{index}")
            accepted, external_id = accepted and sent, message_id or external_id
        return accepted, external_id

    async def _send_until_accepted(
        self, chat_id: str, text: str, buttons: tuple[Button, ...], key: str
    ) -> tuple[bool, str]:
        attempt = 0
        while True:
            await self.throttle.wait(chat_id)
            try:
                message_id = await self.outbound.send_text(chat_id, text, buttons, key=key)
                self.delivered += 1
                return True, message_id or ""
            except NotAllowed as exc:
                # The client has not allowed (or has withdrawn) messages: recorded, not retried, until
                # they write again.
                log.warning("%s chat %s does not allow messages: %s", self.channel, chat_id, exc)
                self.not_allowed.add(chat_id)
                return False, ""
            except RetryLater as exc:
                log.warning(
                    "%s asks to wait %s s before writing to chat %s", self.channel, exc.seconds, chat_id
                )
                SEND_RETRIES.labels(self.channel).inc()
                await asyncio.sleep(exc.seconds)
            except TemporaryFailure as exc:
                attempt += 1
                SEND_RETRIES.labels(self.channel).inc()
                delay = min(MAX_BACKOFF_S, 0.2 * 2**attempt) * (0.5 + random.random())
                log.warning(
                    "sending to chat %s failed (%s); retry %d in %.1f s", chat_id, exc, attempt, delay
                )
                await asyncio.sleep(delay)
            except Rejected as exc:
                log.error("%s rejected a reply to chat %s for good: %s", self.channel, chat_id, exc)
                return False, ""
            except Exception:
                # Whatever else went wrong, the reply is not dropped: it waits and is tried again.
                attempt += 1
                SEND_RETRIES.labels(self.channel).inc()
                delay = min(MAX_BACKOFF_S, 0.2 * 2**attempt)
                log.exception(
                    "sending to chat %s failed unexpectedly; retry %d in %.1f s", chat_id, attempt, delay
                )
                await asyncio.sleep(delay)

    @staticmethod
    async def _safely(call: Awaitable[None], what: str) -> None:
        try:
            await call
        except (RetryLater, TemporaryFailure, Rejected) as exc:
            log.info("%s failed: %s", what, exc)

    async def drain(self) -> None:
        """Wait until every queued message is handled and its replies delivered."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    async def close(self) -> None:
        """Stop the chats' tasks and close the library's session."""
        for task in [*self._workers.values(), *self._typing]:
            task.cancel()
        await self.outbound.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
