"""One chat at a time across worker processes: PostgreSQL advisory locks, keyed by channel and chat."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Engine

from common.locks import ChatLocks


def lock_key(channel: str, chat_id: str) -> int:
    """A stable signed 64-bit key for pg_advisory_lock."""
    digest = hashlib.blake2b(f"{channel}\x00{chat_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class AdvisoryChatLocks:
    """Threads of this process queue on a striped lock first; then the database lock shuts out other
    workers. A session lock dies with its connection, so a killed worker never leaves a chat locked."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.local = ChatLocks()

    @contextmanager
    def hold(self, channel: str, chat_id: str) -> Iterator[None]:
        """Hold the chat in this process and in the database."""
        key = lock_key(channel, chat_id)
        with self.local.hold(channel, chat_id), self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()

    def transaction_key(self, channel: str, chat_id: str) -> int:
        """The key of the same lock for a transaction to take itself (pg_advisory_xact_lock), on its own
        connection and released by its commit: no connection and round trips of its own."""
        return lock_key(channel, chat_id)

    def hold_locally(self, channel: str, chat_id: str) -> AbstractContextManager[None]:
        """Hold the chat in this process only (the database lock is the transaction's)."""
        return self.local.hold(channel, chat_id)


def chat_locks_for(engine: Engine) -> ChatLocks | AdvisoryChatLocks:
    """Database locks where several workers can share the database; in-process locks for SQLite."""
    return AdvisoryChatLocks(engine) if engine.dialect.name == "postgresql" else ChatLocks()
