"""Replies sent at the same moment go to VK together: up to 25 messages.send in one `execute` call.

VK counts an `execute` as one call against a community's 20 a second, so a busy bot answers up to 500
messages a second instead of 20, and pays for one HTTP request instead of 25. Each message keeps its own
random_id (VK still deduplicates each) and its own outcome: `execute` answers `false` in a failed call's
place and lists the failures, in order, in `execute_errors`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from vkbottle import API, VKAPIError

log = logging.getLogger(__name__)
# VK's limit of API calls in one execute.
MAX_CALLS = 25
# VK names no limit for the code itself; a batch of long replies goes in more than one request.
MAX_CODE_CHARS = 60_000
# execute could not compile (12) or run (13) the code: each message is then sent on its own.
SCRIPT_ERRORS = frozenset({12, 13})
Params = dict[str, Any]
Waiting = tuple[Params, "asyncio.Future[Any]"]


class SendPool:
    """messages.send, pooled: the sends of one round of the event loop share `execute` calls."""

    def __init__(self, api: API) -> None:
        self.api = api
        self._waiting: list[Waiting] = []
        self._flusher: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def send(self, params: Params) -> Any:
        """VK's answer to this messages.send (the message id); VKAPIError and HTTP errors as raised."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append((params, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def close(self) -> None:
        """Stop the calls in flight and waiting (their senders see them cancelled)."""
        tasks = [*self._running, *([self._flusher] if self._flusher else [])]
        for task in tasks:
            task.cancel()
        for _, future in self._waiting:
            future.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _flush(self) -> None:
        try:
            # One more round: the other chats' replies finished in this one join the batch.
            await asyncio.sleep(0)
        finally:
            self._flusher = None
        waiting, self._waiting = [item for item in self._waiting if not item[1].done()], []
        for batch in _batches(waiting):
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[Waiting]) -> None:
        try:
            if len(batch) == 1:
                _settle(batch[0][1], await self.api.request("messages.send", batch[0][0]))
                return
            answer = await self.api.request("execute", {"code": _code(params for params, _ in batch)})
        except VKAPIError as exc:
            if exc.code in SCRIPT_ERRORS and len(batch) > 1:
                log.warning(
                    "VK could not run a batch of %d sends (%s); sending them one by one", len(batch), exc
                )
                await asyncio.gather(*(self._run([item]) for item in batch))
                return
            _fail(batch, exc)
            return
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:
            _fail(batch, exc)
            return
        _share(batch, answer)


def _batches(waiting: list[Waiting]) -> list[list[Waiting]]:
    batches: list[list[Waiting]] = []
    size = 0
    for item in waiting:
        length = len(item[0].get("message", "")) + len(item[0].get("keyboard", ""))
        if not batches or len(batches[-1]) == MAX_CALLS or size + length > MAX_CODE_CHARS:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += length
    return batches


def _code(calls: Any) -> str:
    """VKScript returning each send's answer; arguments are JSON, which VKScript reads as object literals
    (U+2028 and U+2029 escaped: JSON allows them in strings, older JavaScript does not)."""
    sends = ",".join(
        "API.messages.send("
        + json.dumps(params, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
        + ")"
        for params in calls
    )
    return f"return [{sends}];"


def _share(batch: list[Waiting], answer: Any) -> None:
    """Each send's result, or its own error from execute_errors."""
    results = answer.get("response") if isinstance(answer, dict) else None
    if not isinstance(results, list) or len(results) != len(batch):
        _fail(batch, VKAPIError[1](error_msg=f"execute answered {answer!r:.200}"))
        return
    errors = iter(answer.get("execute_errors") or [])
    for (_, future), result in zip(batch, results, strict=True):
        if result is not False:
            _settle(future, {"response": result})
            continue
        error: Any = next(errors, {})
        code = error.get("error_code", 1) if isinstance(error, dict) else 1
        message = error.get("error_msg", "execute failed") if isinstance(error, dict) else "execute failed"
        if not future.done():
            future.set_exception(VKAPIError[int(code)](error_msg=str(message)))


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if not future.done():
        future.set_result(result)


def _fail(batch: list[Waiting], error: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
