"""Process start to first reply: `tonebot chat` with a client's message waiting (the figure of issue #17),
and `tonebot run telegram` the same way.

    python -m bench.cold_start [--runs N] [--telegram]

A chat start is measured the way a user restarts it: the database exists and the content cache is warm
(one start before the measured ones creates both; its own figure is `cold_start_first_ms`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MESSAGE = "не работает интернет, договор 1234567"


def _environment(directory: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    for name in ("DATABASE_URL", "TONEBOT_CONTENT_DIR", "TONEBOT_COMPANY"):
        env.pop(name, None)
    # A cache of its own: the user's may be warm or cold, and a run must not depend on which.
    env["TONEBOT_CACHE_DIR"] = str(directory / "cache")
    # Compiled bytecode as an installed tonebot has it (the first start writes it, outside the checkout):
    # compiling every module from source again (PYTHONDONTWRITEBYTECODE) would add ~0.1 s to each start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(directory / "pycache")
    return env


def chat_once(directory: Path, user: str) -> tuple[float, str]:
    """Milliseconds from starting `tonebot chat` to its first line of reply, and that line."""
    command = [sys.executable, "-m", "bot.cli", "chat", "--db", str(directory / "cold.db"), "--user", user]
    with (directory / "stderr.txt").open("wb") as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=directory,
            env=_environment(directory),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(MESSAGE.encode() + b"\n")
            process.stdin.flush()
            line = process.stdout.readline()
            elapsed = (time.perf_counter() - started) * 1000
            process.stdin.close()
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    if not line:
        problem = (directory / "stderr.txt").read_text(encoding="utf-8", errors="replace")
        raise RuntimeError(f"tonebot chat gave no reply:\n{problem[-2000:]}")
    return elapsed, line.decode("utf-8").rstrip("\n")


def chat_runs(times: int = 3) -> tuple[float, list[float]]:
    """The first start (new database, empty cache) and `times` starts after it, in milliseconds."""
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        first, _ = chat_once(directory, "first")
        return first, [chat_once(directory, f"client{attempt}")[0] for attempt in range(times)]


def measure(times: int = 3) -> dict[str, float]:
    """Median milliseconds from starting `tonebot chat` to its first reply, and the very first start's."""
    first, runs = chat_runs(times)
    return {"cold_start_ms": round(statistics.median(runs), 1), "cold_start_first_ms": round(first, 1)}


async def _telegram_once(directory: Path, attempt: int) -> float:
    from tests.support.botapi import BotApiStandin

    # A new chat and update ids new to the database: a message it has seen is taken for a redelivery and
    # not answered again.
    async with BotApiStandin(first_update_id=100_000_001 + 1000 * attempt) as api:
        api.add_message(100_001 + attempt, "привет")
        env = {
            **_environment(directory),
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_API_BASE": api.base_url,
            "DATABASE_URL": f"sqlite:///{directory / 'cold.db'}",
        }
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run", "telegram"],
            cwd=directory,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await api.wait_for_sent(1, timeout=60, method="sendMessage")
            return (time.perf_counter() - started) * 1000
        finally:
            process.terminate()
            process.wait(15)


def measure_telegram(times: int = 3) -> float:
    """Median milliseconds from starting `tonebot run telegram` to the stand-in receiving its first reply
    (database and cache made by the first start, which is not counted)."""
    delays = []
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        for attempt in range(times + 1):
            delays.append(asyncio.run(_telegram_once(directory, attempt)))
    return round(statistics.median(delays[1:]), 1)


def main(argv: list[str] | None = None) -> int:
    """Print every chat start's figure (and Telegram's median with --telegram)."""
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="measured starts after the first (default 3)")
    parser.add_argument("--telegram", action="store_true", help="also `tonebot run telegram`")
    args = parser.parse_args(argv)
    first, runs = chat_runs(args.runs)
    print(f"cold_start_first_ms {first:.1f}")
    print("cold_start_runs_ms " + " ".join(f"{run:.1f}" for run in runs))
    print(f"cold_start_ms {statistics.median(runs):.1f}")
    if args.telegram:
        print(f"cold_start_telegram_ms {measure_telegram(args.runs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
