"""A serving `tonebot` stopped by SIGTERM (or Ctrl+C) stops cleanly: exit code 0, no ERROR, "stopped" at
INFO, and SQLite's write-ahead log copied into the database file (left empty or gone)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.botapi import BotApiStandin

pytestmark = pytest.mark.subprocess
ROOT = Path(__file__).resolve().parent.parent
CHAT_HEADERS = {"X-Tonebot-Chat": "1"}
WEBHOOK_SECRET = "stop-test-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(db: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "DATABASE_URL": f"sqlite:///{db}", **extra}
    for name in ("TELEGRAM_BOT_TOKEN", "TONEBOT_CONTENT_DIR", "TELEGRAM_API_BASE", "TELEGRAM_WEBHOOK_SECRET"):
        if name not in extra:
            env.pop(name, None)
    return env


class Running:
    """A `tonebot -v` process writing to files (a `-v` log would fill a pipe nobody reads)."""

    def __init__(self, process: subprocess.Popen[bytes], out: Path, err: Path) -> None:
        self.process, self.out, self.err = process, out, err

    def wait_for(self, text: str, where: Path | None = None) -> None:
        path = where or self.out
        deadline = time.monotonic() + 90
        while text not in path.read_text(encoding="utf-8"):
            assert self.process.poll() is None, self.err.read_text(encoding="utf-8")[-3000:]
            assert time.monotonic() < deadline, f"{text!r} not in {path}"
            time.sleep(0.1)

    def stop(self, stop: int) -> int:
        self.process.send_signal(stop)
        return self.process.wait(60)


@contextmanager
def tonebot(args: list[str], directory: Path, env: dict[str, str]) -> Iterator[Running]:
    out, err = directory / "stdout.txt", directory / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "-v", *args],
            cwd=directory,
            env=env,
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
        )
        try:
            yield Running(process, out, err)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
            if process.stdin is not None:
                process.stdin.close()


def wal_of(db: Path) -> Path:
    return db.with_name(db.name + "-wal")


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 90
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def healthy(port: int, running: Running) -> bool:
    assert running.process.poll() is None, running.err.read_text(encoding="utf-8")[-3000:]
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def assert_stopped_cleanly(code: int, running: Running, db: Path) -> None:
    errors = running.err.read_text(encoding="utf-8")
    assert code == 0, errors[-3000:]
    wal = wal_of(db)
    assert not wal.exists() or wal.stat().st_size == 0
    assert "ERROR" not in errors and "Traceback" not in errors, errors[-3000:]
    assert "INFO wiring.runtime: stopped" in errors
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM messages").fetchone()[0] > 0


def web_chat_message(port: int, text: str = "не работает интернет") -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        assert http.get("/chat").status_code == 200
        sent = http.post("/chat/api/messages", json={"id": "m1", "text": text}, headers=CHAT_HEADERS)
        assert sent.status_code == 202, sent.text


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_demo_stops_cleanly(tmp_path: Path, stop: int) -> None:
    port, db = free_port(), tmp_path / "demo.db"
    with tonebot(["demo", "--port", str(port)], tmp_path, environment(db)) as running:
        running.wait_for("Press Ctrl+C")
        web_chat_message(port)
        # Written, and still in the log: the checkpoint thread copies it over but never empties the file.
        assert wal_of(db).stat().st_size > 0
        code = running.stop(stop)
    assert_stopped_cleanly(code, running, db)


def test_the_terminal_chat_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    with tonebot(["chat"], tmp_path, environment(db)) as running:
        assert running.process.stdin is not None
        running.process.stdin.write("не работает интернет\n".encode())
        running.process.stdin.flush()
        running.wait_for("договор")
        wait_until(lambda: wal_of(db).exists() and wal_of(db).stat().st_size > 0)
        code = running.stop(signal.SIGTERM)  # waiting for the next line, its input still open
    assert_stopped_cleanly(code, running, db)


def test_the_web_app_with_telegram_beside_it_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    asyncio.run(_web_with_telegram(tmp_path))


async def _web_with_telegram(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "web.db"
    async with BotApiStandin() as api:
        env = environment(db, TELEGRAM_BOT_TOKEN=api.token, TELEGRAM_API_BASE=api.base_url)
        with tonebot(["web", "--telegram", "--port", str(port)], tmp_path, env) as running:
            await asyncio.to_thread(running.wait_for, "operator console:")
            await asyncio.to_thread(running.wait_for, "long polling", running.err)
            api.add_message(7001, "не работает интернет")
            while not api.sent(7001, "sendMessage"):
                await asyncio.sleep(0.1)
            await asyncio.to_thread(web_chat_message, port)
            code = await asyncio.to_thread(running.stop, signal.SIGTERM)
    assert_stopped_cleanly(code, running, db)


def test_telegram_long_polling_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    asyncio.run(_polling(tmp_path))


async def _polling(tmp_path: Path) -> None:
    db = tmp_path / "telegram.db"
    async with BotApiStandin() as api:
        env = environment(db, TELEGRAM_BOT_TOKEN=api.token, TELEGRAM_API_BASE=api.base_url)
        with tonebot(["run", "telegram"], tmp_path, env) as running:
            api.add_message(7002, "не работает интернет")
            while not api.sent(7002, "sendMessage"):
                assert running.process.poll() is None, running.err.read_text(encoding="utf-8")[-3000:]
                await asyncio.sleep(0.1)
            code = await asyncio.to_thread(running.stop, signal.SIGTERM)
    assert_stopped_cleanly(code, running, db)


def test_a_webhook_worker_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    asyncio.run(_worker(tmp_path))


async def _worker(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "worker.db"
    async with BotApiStandin() as api:
        env = environment(
            db,
            TELEGRAM_BOT_TOKEN=api.token,
            TELEGRAM_API_BASE=api.base_url,
            TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
        )
        args = ["worker", "--port", str(port), "--webhook-url", f"http://127.0.0.1:{port}"]
        with tonebot(args, tmp_path, env) as running:
            # Listening first: the stand-in gives an update up after a few failed deliveries.
            await asyncio.to_thread(wait_until, lambda: healthy(port, running))
            api.add_message(7003, "не работает интернет")
            while not api.sent(7003, "sendMessage"):
                assert running.process.poll() is None, running.err.read_text(encoding="utf-8")[-3000:]
                await asyncio.sleep(0.1)
            code = await asyncio.to_thread(running.stop, signal.SIGTERM)
    assert_stopped_cleanly(code, running, db)
