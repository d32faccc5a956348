"""One chat at a time: client messages and operator actions on the same chat never interleave."""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
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
        lock = self._locks[zlib.crc32(f"{channel}\x00{chat_id}".encode()) % len(self._locks)]
        with lock:
            yield
