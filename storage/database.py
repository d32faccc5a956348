"""Opening the database named by one URL: SQLite (WAL) by default, PostgreSQL when configured."""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import create_engine

from storage import models  # noqa: F401  (registers the tables)
from storage.checkpoints import start_checkpoints
from storage.schema import SchemaError, ensure_current

__all__ = ["SchemaError", "connect", "dispose_all", "sqlite_url"]

# Engines this process opened, so shutdown (and tests dropping a database) can close their pools.
_OPEN_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event open transactions (below) instead of the sqlite3 module.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the console, exports) work while the bot writes; NORMAL is durable in WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    # Checkpoints run on a thread of their own (storage/checkpoints.py), not inside a client's commit.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    # A deferred transaction that reads, then writes, can fail with "database is locked" at once when
    # another writer got there first; taking the write lock up front makes writers queue instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


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
    """The URL of an SQLite file."""
    return f"sqlite:///{path}"
