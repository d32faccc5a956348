"""Pacing a campaign's sends: evenly spaced, never more than the rate in any second the messenger counts.

Sends start at least `window_s / rate` apart, measured from when the previous one really started: a late
wake-up (a busy event loop) delays the next send instead of letting a burst catch up. The window is a
little over a second, so that requests that arrive a little late (a busy machine, the network) still
arrive within the rate. Where the messenger takes several messages in one call (VK's execute), sends go
`together` at a time, as many times rarer: the same messages a second in fewer calls.
"""

from __future__ import annotations

import asyncio
import time

WINDOW_S = 1.1


class Pace:
    """At most `rate` sends in any `window_s`: `together` at once, every `together * window_s / rate` s."""

    def __init__(self, rate: float, window_s: float = WINDOW_S, together: int = 1) -> None:
        if rate <= 0 or together < 1:
            raise ValueError(f"a rate above zero and at least one send at a time, got {rate}, {together}")
        # Never more at once than the rate allows in a window.
        self.rate, self.together = rate, max(1, min(together, int(rate)))
        self.interval = window_s * self.together / rate
        self._next = 0.0
        self._left = 0
        # Callers queue: two waiting at once would otherwise wake together.
        self._turn = asyncio.Lock()

    async def wait(self) -> None:
        """Sleep until the next send may start, and take its turn."""
        async with self._turn:
            now = time.monotonic()
            if self._left and now < self._next:
                # Another send of the group that just started: at once, so they share a call.
                self._left -= 1
                return
            if now < self._next:
                await asyncio.sleep(self._next - now)
                now = time.monotonic()
            self._next = now + self.interval
            self._left = self.together - 1
