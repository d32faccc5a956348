"""Waking live pages: a change anywhere in this process wakes every waiting server-sent-events stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from storage.desk.base import News

log = logging.getLogger(__name__)


class ChangeHub:
    """Thread-safe "something changed" signal for asyncio waiters; streams re-read the database on wake."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        # Counts changes seen by the loop: a stream that read the database at version v and finds
        # another version since does not wait, so no change slips between its read and its wait.
        self.version = 0
        self.waiting = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the loop the streams run on."""
        self._loop, self._event = loop, asyncio.Event()

    def notify(self) -> None:
        """Called from any thread after a write."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        self.version += 1
        event, self._event = self._event, asyncio.Event()
        if event is not None:
            event.set()

    async def wait(self, seen: int, timeout: float) -> bool:
        """Wait until a change after version `seen` happened (True) or `timeout` seconds passed (False)."""
        if self.version != seen:
            return True
        event = self._event
        self.waiting += 1
        try:
            if event is None:
                await asyncio.sleep(timeout)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), timeout)
        finally:
            self.waiting -= 1
        return self.version != seen

    async def watch(self, marker: Callable[[], Awaitable[object]], every: float) -> None:
        """Wake the streams when `marker` (the database's change marker) moves: changes written by other
        processes reach every stream of this one with one query per `every` seconds, not one per stream."""
        last: object = None
        while True:
            await asyncio.sleep(every)
            if not self.waiting:
                continue
            try:
                current = await marker()
            except Exception:
                log.exception("reading the change marker failed; will retry")
                continue
            # The first reading, or one left stale while nobody waited, costs one needless wake at most.
            if current != last:
                self._wake()
            last = current


# Rows are numbered when written but may become visible out of order (concurrent writers on PostgreSQL):
# each pass looks this many ids back, so a late row still wakes its chat.
LOOKBACK_IDS = 500
FEED_IDLE_S = 60.0


class ChatFeed:
    """One reader for every chat stream of this process: after each change it asks the database once
    which chats got new messages and wakes only those chats' streams, which then read their own rows."""

    def __init__(self, hub: ChangeHub, news: Callable[[int | None], Awaitable[News]]) -> None:
        # `news(floor)`: the newest message id overall, and (id, chat) of the chats' messages above floor
        # (none when floor is None: the first look only learns where the messages end).
        self.hub, self.news = hub, news
        self._listeners: dict[str, int] = {}
        self._latest: dict[str, int] = {}
        self._marks: dict[str, int] = {}
        self._events: dict[str, asyncio.Event] = {}

    def listen(self, chat: str) -> None:
        """A stream of `chat` opened."""
        self._listeners[chat] = self._listeners.get(chat, 0) + 1

    def leave(self, chat: str) -> None:
        """A stream of `chat` closed; the last one takes the chat's bookkeeping with it."""
        left = self._listeners.get(chat, 0) - 1
        if left > 0:
            self._listeners[chat] = left
            return
        for table in (self._listeners, self._latest, self._marks):
            table.pop(chat, None)
        self._events.pop(chat, None)

    def mark(self, chat: str) -> int:
        """Take before reading the chat: a later `wait` returns at once if news came after this."""
        return self._marks.get(chat, 0)

    async def wait(self, chat: str, mark: int, timeout: float) -> bool:
        """Wait until the chat has news since `mark` (True) or `timeout` seconds passed (False)."""
        if self._marks.get(chat, 0) != mark:
            return True
        event = self._events.setdefault(chat, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self._marks.get(chat, 0) != mark

    def _touch(self, chat: str) -> None:
        self._marks[chat] = self._marks.get(chat, 0) + 1
        event = self._events.pop(chat, None)
        if event is not None:
            event.set()

    async def run(self) -> None:
        """Read the news after every change the hub reports (this process's or the change watch's)."""
        top: int | None = None
        while True:
            seen = self.hub.version
            try:
                newest, rows = await self.news(None if top is None else max(0, top - LOOKBACK_IDS))
            except Exception:
                log.exception("reading the chats' news failed; will retry")
                await asyncio.sleep(1.0)
                continue
            for message_id, chat in rows:
                if chat in self._listeners and message_id > self._latest.get(chat, 0):
                    self._latest[chat] = message_id
                    self._touch(chat)
            top = newest
            await self.hub.wait(seen, FEED_IDLE_S)
