"""Real databases for tests: an SQLite file, or a fresh database on the PostgreSQL server of this machine."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from storage.database import dispose_all
from storage.schema import upgrade

# The server's own database to create test databases from (trust auth on this machine and in CI).
ADMIN_URL = os.environ.get("TONEBOT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _unreachable(reason: str) -> None:
    # In CI a missing server is a failure: .ci/run starts PostgreSQL, so this must not pass by skipping.
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is needed and unreachable at {ADMIN_URL}: {reason}")
    pytest.skip(f"PostgreSQL unreachable at {ADMIN_URL}: {reason}")


@contextmanager
def fresh_postgres(*, migrate: bool = True) -> Iterator[str]:
    """A new empty database (migrated to head unless told not to); dropped afterwards."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"tonebot_t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        _unreachable(str(exc).splitlines()[0])
        raise
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            engine = create_engine(url)
            upgrade(engine)
            engine.dispose()
        yield url
    finally:
        dispose_all()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def read_only(url: str, on: bool) -> None:
    """Switch a test database to read-only (or back) and cut its connections, as a failover would."""
    name = make_url(url).database
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        switch = "on" if on else "off"
        connection.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {switch}'))
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )
    admin.dispose()
