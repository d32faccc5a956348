"""One chat at a time: client messages and operator actions on the same chat never interleave."""

from __future__ import annotations

import contextlib
import threading
import zlib
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol

STRIPES = 256


class ChatLock(Protocol):
    """Whatever serialises the work on one chat: in-process locks, or a database lock across workers."""

    def hold(self, channel: str, chat_id: str) -> AbstractContextManager[None]:
        """Hold the chat while the block runs."""


class ChatLocks:
    """Striped locks keyed by channel and chat: bounded memory however many chats there are."""

    def __init__(self, stripes: int = STRIPES) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def hold(self, channel: str, chat_id: str) -> Iterator[None]:
        """Hold the chat's lock (in this process; several workers need the database's own lock)."""
        with self._locks[self._stripe(channel, chat_id)]:
            yield

    @contextmanager
    def hold_all(self, chats: Iterable[tuple[str, str]]) -> Iterator[None]:
        """Hold several chats' locks at once (a batch of turns in one transaction)."""
        # Stripes taken once each (two chats may share one) and in one global order: no deadlock.
        stripes = sorted({self._stripe(channel, chat_id) for channel, chat_id in chats})
        with contextlib.ExitStack() as stack:
            for stripe in stripes:
                stack.enter_context(self._locks[stripe])
            yield

    def _stripe(self, channel: str, chat_id: str) -> int:
        return zlib.crc32(f"{channel}\x00{chat_id}".encode()) % len(self._locks)
