"""Migrations: `tonebot db upgrade`, and refusing to run on an unmigrated or newer schema (PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from storage import connect
from storage.database import dispose_all
from storage.models import SQLModel
from storage.schema import SchemaError, current_revision, head_revision
from tests.support.cli import tonebot
from tests.support.databases import fresh_postgres

pytestmark = pytest.mark.subprocess


def test_an_empty_server_database_is_refused_until_upgraded() -> None:
    with fresh_postgres(migrate=False) as url:
        with pytest.raises(SchemaError, match="run `tonebot db upgrade` first"):
            connect(url)
        refused = tonebot("operators", "add", "anna", "--generate", url=url)
        assert refused.returncode == 2 and "tonebot db upgrade" in refused.stderr
        assert "Traceback" not in refused.stderr
        upgraded = tonebot("db", "upgrade", url=url)
        assert upgraded.returncode == 0 and f"-> {head_revision()}" in upgraded.stdout, upgraded.stderr
        engine = connect(url)
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert set(SQLModel.metadata.tables) <= tables
        assert "up to date" in tonebot("db", "current", url=url).stdout
        dispose_all()


def test_a_newer_schema_is_refused_with_what_to_do() -> None:
    with fresh_postgres() as url:
        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
        engine.dispose()
        with pytest.raises(SchemaError, match="newer than this tonebot knows"):
            connect(url)
        dispose_all()


def test_an_empty_sqlite_file_is_migrated_on_first_use(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'new.db'}")
    assert current_revision(engine) == head_revision()


def test_models_and_migrations_agree() -> None:
    """A model change without a migration fails here: autogenerate finds nothing to do at head."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with fresh_postgres() as url:
        engine = create_engine(url)
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        engine.dispose()
    assert differences == []
