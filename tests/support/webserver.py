"""The real web app served by uvicorn on 127.0.0.1 in a background thread, for HTTP and browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from operators.passwords import hash_password
from storage.database import sqlite_url
from web.app import create_app
from web.background import serving_in_thread
from wiring.runtime import Runtime, build_runtime
from wiring.settings import Settings

ALWAYS_OPEN_TEAMS = """\
first_response:
  default: 2m
teams:
  desk:
    title: Поддержка
    timezone: Asia/Novosibirsk
    hours: {mon-sun: 24h}
    categories:
      tech: {responsible: anna, operators: [anna, boris]}
      billing: {responsible: anna, operators: [anna]}
      sales: {responsible: olga, operators: [olga]}
      general: {responsible: anna, operators: [anna, olga]}
"""


def always_open(content_dir: Path) -> Path:
    """Make a content copy's teams work around the clock, so tests do not depend on the hour."""
    (content_dir / "teams.yaml").write_text(ALWAYS_OPEN_TEAMS, encoding="utf-8")
    return content_dir


def web_runtime(tmp_path: Path, content_dir: Path, database_url: str | None = None) -> Runtime:
    """A runtime on the given database, or on a fresh SQLite file in tmp_path."""
    return build_runtime(Settings(database_url or sqlite_url(str(tmp_path / "web.db")), content_dir))


def add_operator(runtime: Runtime, name: str, password: str, display_name: str = "") -> None:
    """Create a console account."""
    runtime.desk_store.add_operator(
        name, hash_password(password), display_name or name, "operator", datetime.now(UTC)
    )


@contextmanager
def serving(runtime: Runtime) -> Iterator[str]:
    """Serve the app on a free port of 127.0.0.1; yields its base URL; stops the server afterwards."""
    with serving_in_thread(create_app(runtime)) as url:
        yield url
