"""The database schema's version: Alembic migrations, and refusing to run on a schema we do not know."""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# `revision: str = "0003"` and `down_revision: str | None = "0002"` as Alembic writes them in a script.
_REVISION_LINE = re.compile(
    r"^(down_revision|revision)\s*(?::[^=\n]*)?=\s*(?:None|[\"']([^\"']+)[\"'])\s*$", re.M
)


class SchemaError(RuntimeError):
    """The database is not at the schema this tonebot needs; the message says what to do."""


def _config(engine: Engine) -> Config:
    # Alembic (with Mako and Pygments) takes longer to import than the rest of storage: only on a migration.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # The option is read with configparser interpolation: a `%` of the URL (a quoted path or password
    # character) must be doubled, or every start fails.
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest migration this tonebot ships."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    head = script.get_current_head()
    if head is None:
        raise RuntimeError("no migrations are shipped")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to `revision` (the newest by default)."""
    from alembic import command

    config = _config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@lru_cache(maxsize=1)
def shipped_head() -> str | None:
    """The head revision read from the migration scripts' own lines, without Alembic; None unless they
    form one plain chain (then only Alembic can tell)."""
    parents: dict[str, str | None] = {}
    for script in sorted((MIGRATIONS / "versions").glob("*.py")):
        if script.name == "__init__.py":
            continue
        found = dict(
            (name, value or None)
            for name, value in _REVISION_LINE.findall(script.read_text(encoding="utf-8"))
        )
        revision = found.get("revision")
        if revision is None or "down_revision" not in found or revision in parents:
            return None
        parents[revision] = found["down_revision"]
    heads = set(parents) - set(parents.values())
    roots = [revision for revision, parent in parents.items() if parent is None]
    if len(heads) != 1 or len(roots) != 1 or len(set(parents.values())) != len(parents):
        return None
    return heads.pop()


def _at_shipped_head(engine: Engine) -> bool:
    """Whether the database records exactly the shipped head: one query instead of Alembic's machinery."""
    head = shipped_head()
    if head is None:
        return False
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except DBAPIError:
        # No such table (an empty or foreign database): the full check says what is wrong.
        return False
    return [tuple(row) for row in rows] == [(head,)]


def _is_empty(engine: Engine) -> bool:
    return not inspect(engine).get_table_names()


def ensure_current(engine: Engine, *, create_if_empty: bool, upgrade_if_behind: bool = False) -> None:
    """Return when the schema is the one this tonebot needs; otherwise SchemaError with what to do.

    An empty database is migrated when `create_if_empty`, one at an older revision when
    `upgrade_if_behind` (the embedded SQLite default, so `make run` needs no set-up, before or after an
    update); a shared server is migrated on purpose with `tonebot db upgrade`.
    """
    if _at_shipped_head(engine):
        # The usual start: the cheap look is enough, and Alembic is not even imported.
        return
    from alembic.script import ScriptDirectory

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
