"""Keeping within Telegram's sending limits: about one message a second per chat, thirty a second overall."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Sending limits; the defaults are Telegram's published guidance."""

    per_chat_interval: float = 1.0
    global_per_second: float = 30.0


class Throttle:
    """Waits so that sends respect the per-chat interval and the global rate."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._last_in_chat: dict[str, float] = {}
        # Send times of the last second, oldest first: a busy bot sends thousands a second when limits are
        # lifted, so the window is trimmed from the left rather than rebuilt on every send.
        self._global_slots: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def wait(self, chat_id: str) -> None:
        """Sleep until this chat may be sent to, and reserve a global slot."""
        while True:
            async with self._lock:
                now = time.monotonic()
                chat_ready = self._last_in_chat.get(chat_id, 0.0) + self.limits.per_chat_interval
                window = self._global_slots
                while window and window[0] <= now - 1.0:
                    window.popleft()
                global_ready = window[0] + 1.0 if len(window) >= self.limits.global_per_second else now
                ready = max(chat_ready, global_ready)
                if ready <= now:
                    self._last_in_chat[chat_id] = now
                    self._global_slots.append(now)
                    if len(self._last_in_chat) > 100_000:
                        self._forget_idle(now)
                    return
            await asyncio.sleep(ready - now)

    def _forget_idle(self, now: float) -> None:
        idle = [chat for chat, t in self._last_in_chat.items() if t < now - self.limits.per_chat_interval]
        for chat in idle:
            del self._last_in_chat[chat]
