"""Waking live pages: a change anywhere in this process wakes every waiting server-sent-events stream."""

from __future__ import annotations

import asyncio
import contextlib


class ChangeHub:
    """Thread-safe "something changed" signal for asyncio waiters; streams re-read the database on wake."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        # Counts changes seen by the loop: a stream that read the database at version v and finds
        # another version since does not wait, so no change slips between its read and its wait.
        self.version = 0

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

    async def wait(self, seen: int, timeout: float) -> None:
        """Return once a change after version `seen` happened, or after `timeout` seconds (other workers'
        changes are found by polling)."""
        if self.version != seen:
            return
        event = self._event
        if event is None:
            await asyncio.sleep(timeout)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
