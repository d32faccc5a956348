"""Wiring: content, engine, storage, the conversation service and the operators' desk built from settings."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from dialogs.content import LiveContent
from dialogs.engine import Engine
from dialogs.service import ConversationService
from operators.desk import OperatorDesk
from storage import SqlStore, connect
from storage.database import wipe_wal
from storage.desk import DeskStore
from storage.locks import chat_locks_for
from storage.metrics import watch_database
from storage.privacy import ClientData
from storage.tables import write_lock_for
from wiring.settings import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Runtime:
    """Everything a running bot holds."""

    content: LiveContent
    engine: Engine
    store: SqlStore
    service: ConversationService
    # Every concern of the desk's storage (accounts, audit, views, actions, outbox) over the database.
    desk_store: DeskStore
    desk: OperatorDesk
    client_data: ClientData
    retention_days: int = 0

    def close(self) -> None:
        """Stop watching the content, copy SQLite's write-ahead log into the file and close connections."""
        self.content.close()
        # Left behind, the log holds the latest turns outside the file a backup or a copy would take.
        wipe_wal(self.store.engine)
        self.store.engine.dispose()
        log.info("stopped")


def _interrupt(_signal: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def until_stopped(runtime: Runtime) -> Iterator[None]:
    """Run a serving command; SIGTERM stops it as Ctrl+C does, and either is a clean end: the runtime is
    closed (the write-ahead log checkpointed, "stopped" logged) and the command exits 0, not -15."""
    main = threading.current_thread() is threading.main_thread()
    # Servers put their own handlers in place while they run (uvicorn, aiohttp, aiogram); this one
    # covers the rest, such as the terminal chat waiting for a line.
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        yield
    except KeyboardInterrupt:
        log.info("stop requested")
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        runtime.close()


def build_runtime(settings: Settings) -> Runtime:
    """Load content (ContentError if broken), open the database, wire the service and the desk."""
    content = LiveContent(settings.content_dir)
    engine = Engine(content)
    database = connect(settings.database_url)
    # One write lock for every writer of the database, handed to each (see storage.tables.write_lock_for).
    write_lock = write_lock_for(database)
    store = SqlStore(database, write_lock)
    locks = chat_locks_for(store.engine)
    service = ConversationService(engine, store, locks)
    desk_store = DeskStore(database, write_lock)
    desk = OperatorDesk(engine, desk_store, desk_store, desk_store, locks, on_change=service.changed)
    # /metrics of this process reads its serving database's figures (handoffs waiting, the outbox).
    watch_database(database)
    return Runtime(
        content,
        engine,
        store,
        service,
        desk_store,
        desk,
        ClientData(database, write_lock),
        settings.retention_days,
    )
