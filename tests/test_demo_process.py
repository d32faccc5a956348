"""`tonebot demo` and `tonebot operators` as separate processes: what a newcomer runs first."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.subprocess


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    for name in ("DATABASE_URL", "TELEGRAM_BOT_TOKEN", "TONEBOT_CONTENT_DIR"):
        env.pop(name, None)
    return env


def test_demo_prints_addresses_and_a_working_sign_in(tmp_path: Path) -> None:
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "demo", "--port", str(port)],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            printed = _until_ready(process)
            _check_demo(port, printed)
            assert (tmp_path / "tonebot.db").exists()
        finally:
            process.send_signal(signal.SIGINT)
            _, errors = process.communicate(timeout=20)
    assert process.returncode in (0, 130, -signal.SIGINT), errors
    assert "Traceback" not in errors


def _until_ready(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while not any(line.startswith("Press Ctrl+C") for line in lines):
        assert time.monotonic() < deadline and process.poll() is None, "".join(lines)
        lines.append(process.stdout.readline())
    return "".join(lines)


def _check_demo(port: int, printed: str) -> None:
    assert f"http://127.0.0.1:{port}/chat" in printed and f"http://127.0.0.1:{port}/console" in printed
    assert "Telegram:              off" in printed
    found = re.search(r"sign in as:\s+(\S+) / (\S+)", printed)
    assert found, printed
    name, password = found.groups()
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
        assert http.get("/chat").status_code == 200
        form = http.get("/console/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form)
        assert csrf
        signed = http.post("/console/login", data={"name": name, "password": password, "csrf": csrf[1]})
        assert signed.status_code == 303 and signed.headers["location"] == "/console"
        assert "Очередь" in http.get("/console").text


def test_operators_add_and_password(tmp_path: Path) -> None:
    db = str(tmp_path / "ops.db")

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "operators", *args, "--db", db],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env=environment(),
        )

    added = run("add", "boris", "--password-stdin", "--display-name", "Борис", stdin="long-enough-1\n")
    assert added.returncode == 0 and "operator boris added" in added.stdout, added.stderr
    again = run("add", "boris", "--password-stdin", stdin="long-enough-2\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    short = run("add", "olga", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 8" in short.stderr
    bad_name = run("add", "<script>", "--password-stdin", stdin="long-enough-1\n")
    assert bad_name.returncode == 2
    generated = run("password", "boris", "--generate")
    assert generated.returncode == 0 and re.search(r"password: \S{8,}", generated.stdout)
    missing = run("password", "nobody", "--generate")
    assert missing.returncode == 1 and "no operator 'nobody'" in missing.stderr


def test_web_answers_telegram_only_on_request(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "web", "--telegram", "--port", str(free_port())],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--telegram needs TELEGRAM_BOT_TOKEN" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
