"""The SQLite files themselves: erasure leaves no byte of a client behind (database, -wal, -shm), the
files and exports are the owner's alone (0600), and any path works with `--db`."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from common.messages import IncomingMessage
from storage.database import dispose_all, sqlite_url
from storage.tables import conversations, details
from tests.support.cli import tonebot
from tests.support.webserver import always_open, web_runtime
from wiring.runtime import Runtime

pytestmark = pytest.mark.subprocess

# Said by the client to be forgotten; each is looked for in every file of the database.
FORGOTTEN = (
    "Здравствуйте, не работает интернет. Договор 8642097, мой телефон +7 913 777-40-21, "
    "почта yaroslava.tikhonravova@example.ru",
    "адрес: ул. Кукушкинская, д. 9, кв. 81",
    "позовите оператора",
)
TRACES = (
    "8642097",
    "9137774021",
    "777-40-21",
    "yaroslava.tikhonravova",
    "tikhonravova@example",
    "Кукушкинская",
    "visitor-forgotten-0001",
)
KEPT = ("Добрый день, договор 1357913, почта kept.client@example.ru", "позовите оператора")


@pytest.fixture
def private_umask() -> Iterator[None]:
    """The usual umask (022), under which files are created world-readable unless made otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def talk(runtime: Runtime, chat: str, lines: tuple[str, ...]) -> int:
    """A web client's messages through the conversation service; the client's id."""
    for number, text in enumerate(lines):
        runtime.service.handle(
            IncomingMessage("web", chat, chat, text, datetime.now(UTC), f"{chat}-{number}")
        )
    with runtime.store.engine.connect() as connection:
        return int(
            connection.execute(
                select(conversations.c.client_id).where(conversations.c.chat_id == chat)
            ).scalar_one()
        )


def database_files(path: Path) -> dict[str, bytes]:
    """Every file beside the database whose name starts with the database's: itself, -wal, -shm."""
    return {f.name: f.read_bytes() for f in sorted(path.parent.iterdir()) if f.name.startswith(path.name)}


def traces_in(files: dict[str, bytes]) -> list[tuple[str, str]]:
    return [(name, trace) for name, data in files.items() for trace in TRACES if trace.encode() in data]


@pytest.mark.parametrize("how", ["cli", "in_process"])
def test_forget_leaves_nothing_of_the_client_in_any_file(
    tmp_path: Path, content_copy: Path, how: str
) -> None:
    path = tmp_path / "clients.db"
    runtime = web_runtime(tmp_path, always_open(content_copy), sqlite_url(str(path)))
    forgotten = talk(runtime, "visitor-forgotten-0001", FORGOTTEN)
    kept = talk(runtime, "visitor-kept-000000001", KEPT)
    with runtime.store.engine.connect() as connection:
        names = {
            row.name for row in connection.execute(select(details).where(details.c.client_id == forgotten))
        }
    assert {"contract", "phone", "email", "address"} <= names
    before = database_files(path)
    assert f"{path.name}-wal" in before
    assert {trace for _name, trace in traces_in(before)} == set(TRACES)

    if how == "cli":
        # Another process erases while this one still has the database open, as a running bot would.
        done = tonebot("clients", "forget", str(forgotten), "--yes", "--db", str(path))
        assert done.returncode == 0, done.stderr
    else:
        assert runtime.client_data.forget(forgotten, "anna", datetime.now(UTC)) is not None

    files = database_files(path)
    assert traces_in(files) == []
    assert b"kept.client@example.ru" in b"".join(files.values())
    with runtime.store.engine.connect() as connection:
        left = {row.client_id for row in connection.execute(select(details.c.client_id))}
    assert left == {kept}
    dispose_all()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_wal_and_shm_files_are_the_owners_alone(
    tmp_path: Path, content_copy: Path, private_umask: None
) -> None:
    path = tmp_path / "private.db"
    runtime = web_runtime(tmp_path, always_open(content_copy), sqlite_url(str(path)))
    talk(runtime, "visitor-someone-000001", KEPT)
    files = {f.name: mode(f) for f in tmp_path.iterdir() if f.name.startswith(path.name)}
    assert set(files) == {"private.db", "private.db-wal", "private.db-shm"}
    assert files == dict.fromkeys(files, 0o600)
    dispose_all()


def test_an_export_file_is_the_owners_alone(tmp_path: Path, content_copy: Path, private_umask: None) -> None:
    path = tmp_path / "export.db"
    runtime = web_runtime(tmp_path, always_open(content_copy), sqlite_url(str(path)))
    client = talk(runtime, "visitor-exported-00001", KEPT)
    fresh, existing = tmp_path / "client.json", tmp_path / "old-export.json"
    existing.write_text("old\n", encoding="utf-8")
    existing.chmod(0o644)
    for out in (fresh, existing):
        done = tonebot("clients", "export", str(client), "--db", str(path), "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert mode(out) == 0o600, out
        assert json.loads(out.read_text(encoding="utf-8"))["client"]["id"] == client
    dispose_all()


@pytest.mark.parametrize("name", ["база%1.db", "a b?c#d%20.db"])
def test_chat_starts_on_a_database_path_with_any_characters(tmp_path: Path, name: str) -> None:
    for _start in range(2):  # a new file, then the same file again
        chat = tonebot("chat", "--db", str(tmp_path / name), stdin="привет\n")
        assert chat.returncode == 0, chat.stderr
        assert "Traceback" not in chat.stderr
        assert chat.stdout.strip(), "the bot did not answer"
    assert [f.name for f in tmp_path.iterdir()] == [name]
    current = tonebot("db", "current", "--db", str(tmp_path / name))
    assert current.returncode == 0 and "up to date" in current.stdout, current.stderr
