"""Copying SQLite's write-ahead log into the database file on a thread of its own.

A checkpoint syncs the log and the file to disk (milliseconds each here); left to SQLite, it runs inside
whichever commit crosses the log's size threshold, so one client's turn in a few hundred would wait for
it. The connections of the store turn automatic checkpoints off and this thread does them instead.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import weakref

from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)
CHECKPOINT_EVERY_S = 0.5


def start_checkpoints(engine: Engine, path: str, every_s: float = CHECKPOINT_EVERY_S) -> threading.Event:
    """Checkpoint the SQLite file at `path` every `every_s` until the engine is disposed or collected;
    the returned event stops it too."""
    stop = threading.Event()
    alive = weakref.ref(engine, lambda _gone: stop.set())
    thread = threading.Thread(
        target=_run, args=(alive, path, every_s, stop), name="tonebot-sqlite-checkpoints", daemon=True
    )
    thread.start()
    return stop


def _run(alive: weakref.ref[Engine], path: str, every_s: float, stop: threading.Event) -> None:
    connection: sqlite3.Connection | None = None
    try:
        while not stop.wait(every_s) and alive() is not None:
            try:
                if connection is None:
                    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                # PASSIVE copies what it can without waiting for readers or writers, so it never
                # holds up a turn; what it could not copy goes next time.
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error as exc:
                log.warning("checkpointing %s failed (will retry): %s", path, exc)
                with contextlib.suppress(sqlite3.Error):
                    if connection is not None:
                        connection.close()
                connection = None
    finally:
        if connection is not None:
            with contextlib.suppress(sqlite3.Error):
                connection.close()
