"""The database schema's version: Alembic migrations, and refusing to run on a schema we do not know."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaError(RuntimeError):
    """The database is not at the schema this tonebot needs; the message says what to do."""


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # The option is read with configparser interpolation: a `%` of the URL (a quoted path or password
    # character) must be doubled, or every start fails.
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration this tonebot ships."""
    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    if head is None:
        raise RuntimeError("no migrations are shipped")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to `revision` (the newest by default)."""
    config = _config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _is_empty(engine: Engine) -> bool:
    return not inspect(engine).get_table_names()


def ensure_current(engine: Engine, *, create_if_empty: bool, upgrade_if_behind: bool = False) -> None:
    """Return when the schema is the one this tonebot needs; otherwise SchemaError with what to do.

    An empty database is migrated when `create_if_empty`, one at an older revision when
    `upgrade_if_behind` (the embedded SQLite default, so `make run` needs no set-up, before or after an
    update); a shared server is migrated on purpose with `tonebot db upgrade`.
    """
    shown = engine.url.render_as_string(hide_password=True)
    if _is_empty(engine):
        if create_if_empty:
            upgrade(engine)
            return
        raise SchemaError(
            f"the database at {shown} has no tonebot tables yet; run `tonebot db upgrade` first"
        )
    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    known = {script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    if current is None:
        raise SchemaError(
            f"the database at {shown} holds tables but no migration record (made by a tonebot from before "
            "migrations, or by something else); point DATABASE_URL at a new database"
        )
    if current not in known:
        raise SchemaError(
            f"the database at {shown} is at schema revision {current}, newer than this tonebot knows "
            f"({head}); upgrade tonebot, or use a database of this version"
        )
    if upgrade_if_behind:
        log.warning("migrating %s from schema revision %s to %s", shown, current, head)
        upgrade(engine)
        return
    raise SchemaError(
        f"the database at {shown} is at schema revision {current}; this tonebot needs {head}: "
        "run `tonebot db upgrade` (back the database up first)"
    )
