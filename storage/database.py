"""Opening the database named by one URL: SQLite (WAL) by default, PostgreSQL when configured."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, create_engine

from storage import models  # noqa: F401  (registers the tables)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event open transactions (below) instead of the sqlite3 module.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the console, exports) work while the bot writes; NORMAL is durable in WAL.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def _begin_immediate(connection: Any) -> None:
    # A deferred transaction that reads, then writes, can fail with "database is locked" at once when
    # another writer got there first; taking the write lock up front makes writers queue instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def connect(url: str, *, create: bool = True) -> Engine:
    """An SQLAlchemy engine for the URL, with the schema created when missing."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin_immediate)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    if create:
        SQLModel.metadata.create_all(engine)
        _check_columns(engine)
    return engine


class SchemaError(RuntimeError):
    """The database was made by another version of tonebot and lacks columns this one needs."""


def _check_columns(engine: Engine) -> None:
    inspector = inspect(engine)
    missing = []
    for table in SQLModel.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing += [f"{table.name}.{column.name}" for column in table.columns if column.name not in present]
    if missing:
        raise SchemaError(
            f"the database at {engine.url.render_as_string(hide_password=True)} was created by an older "
            f"tonebot and lacks {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; "
            "move the file aside (or point DATABASE_URL at a new database) and start again"
        )


def sqlite_url(path: str) -> str:
    """The URL of an SQLite file."""
    return f"sqlite:///{path}"
