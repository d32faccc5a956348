"""What every SQL backend of the desk holds: the engine, and the write lock it is given."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from storage.tables import WriteLock


class SqlPart:
    """One concern of the desk over a database; writes hold `write_lock` (shared with the turn path)."""

    def __init__(self, engine: Engine, write_lock: WriteLock) -> None:
        self.engine, self.write_lock = engine, write_lock
