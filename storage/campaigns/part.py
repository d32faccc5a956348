"""What every part of the campaign store holds: the engine, and the write lock it is given."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from storage.tables import WriteLock


class StorePart:
    """One concern of the campaign store over a database; writes hold `write_lock` (shared with the turn
    path, so SQLite's writers queue on it rather than on the file's busy handler)."""

    def __init__(self, engine: Engine, write_lock: WriteLock) -> None:
        self.engine, self.write_lock = engine, write_lock
