"""Opening the database named by one URL: SQLite (WAL) by default, PostgreSQL when configured."""

from __future__ import annotations

import logging
import os
import time
import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlmodel import create_engine

from storage import models  # noqa: F401  (registers the tables)
from storage.checkpoints import start_checkpoints
from storage.schema import SchemaError, ensure_current

__all__ = ["READ_ONLY", "SchemaError", "connect", "dispose_all", "reader", "sqlite_url", "wipe_wal"]

log = logging.getLogger(__name__)
# The database holds clients' personal data: its file, and the -wal and -shm files SQLite creates with
# the same permissions, are for the owner alone.
PRIVATE_FILE = 0o600
WIPE_ATTEMPTS = 8
WIPE_PAUSE_S = 0.05  # growing pauses: about 1.8 s in all before giving up

# Engines this process opened, so shutdown (and tests dropping a database) can close their pools.
_OPEN_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
# The execution option of an engine or connection that only reads (see `reader`).
READ_ONLY = "tonebot_read_only"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event open transactions (below) instead of the sqlite3 module.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the console, exports) work while the bot writes; NORMAL is durable in WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Deleted rows (an erased client, the old copy of an updated row) are overwritten with zeros, not
    # left readable in free space of the file.
    cursor.execute("PRAGMA secure_delete=ON")
    # Checkpoints run on a thread of their own (storage/checkpoints.py), not inside a client's commit.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    # A deferred transaction that reads, then writes, can fail with "database is locked" at once when
    # another writer got there first; taking the write lock up front makes writers queue instead.
    # A connection that only reads (READ_ONLY) stays deferred: it would hold the write lock for all of a
    # long read (the analytics dashboard: up to a second), and in WAL a reader never blocks writers.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def reader(engine: Engine) -> Engine:
    """The same database for code that only reads: on SQLite its transactions are deferred and never hold
    the write lock (so it must not write: a deferred transaction that writes can fail at once when
    another writer holds the lock)."""
    return engine.execution_options(**{READ_ONLY: True})


def connect(url: str, *, check: bool = True) -> Engine:
    """An SQLAlchemy engine for the URL, checked to be at this tonebot's schema (SchemaError if not).

    An empty SQLite database is migrated at once, so the embedded default needs no set-up; a server
    database is migrated on purpose with `tonebot db upgrade`.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate)
        path = engine.url.database
        if path and path != ":memory:" and not path.startswith("file:"):
            _create_private(path)
            # Stops with the engine (disposing only empties its pool; the engine may be used again).
            start_checkpoints(engine, path)
    else:
        # No ping per checkout (a round trip each time); stale connections are recycled instead.
        engine = create_engine(url, pool_recycle=1800, pool_size=10, max_overflow=20)
    _OPEN_ENGINES.add(engine)
    if check:
        # The embedded file belongs to this one process: it is migrated as needed. A shared server is not.
        embedded = engine.dialect.name == "sqlite"
        try:
            ensure_current(engine, create_if_empty=embedded, upgrade_if_behind=embedded)
        except BaseException:
            # A refused database leaves no pooled connection behind.
            _OPEN_ENGINES.discard(engine)
            engine.dispose()
            raise
    return engine


def dispose_all() -> None:
    """Close every pooled connection this process holds."""
    for engine in list(_OPEN_ENGINES):
        engine.dispose()


def sqlite_url(path: str) -> str:
    """The URL of an SQLite file; any character of the path (`%`, `?`, `#`, Cyrillic) stays itself."""
    return URL.create("sqlite", database=path).render_as_string(hide_password=False)


def _create_private(path: str) -> None:
    """Create a new SQLite file as 0600 before SQLite does (it would follow the umask, usually 0644);
    its -wal and -shm files then get the same. An existing file is left as its owner set it."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    except OSError:
        # A missing directory and the like: SQLite's own error says it better.
        return
    os.fchmod(descriptor, PRIVATE_FILE)  # exactly 0600, whatever the umask
    os.close(descriptor)


def wipe_wal(engine: Engine) -> bool:
    """Copy SQLite's write-ahead log into the database and truncate it to nothing, so rows just erased
    leave no old copy behind; the caller holds the store's write lock. True when the log is empty
    (always for PostgreSQL, which has no such file)."""
    if engine.dialect.name != "sqlite":
        return True
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        assert dbapi is not None
        for attempt in range(WIPE_ATTEMPTS):
            # TRUNCATE waits (busy_timeout) for readers still on the old log, but not for a checkpoint
            # running elsewhere (the checkpoint thread, another process): that one is waited out here.
            busy, _log_frames, _copied = dbapi.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return True
            time.sleep(WIPE_PAUSE_S * (attempt + 1))
        log.warning("the write-ahead log of %s could not be emptied: readers held it", engine.url.database)
        return False
    finally:
        raw.close()
