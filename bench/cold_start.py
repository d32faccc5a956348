"""Process start to first reply: `tonebot run telegram` started with a client's message waiting."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.botapi import BotApiStandin

ROOT = Path(__file__).resolve().parent.parent


async def _once(directory: Path) -> float:
    async with BotApiStandin() as api:
        api.add_message(100_001, "привет")
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_API_BASE": api.base_url,
            "DATABASE_URL": f"sqlite:///{directory / 'cold.db'}",
            "PYTHONPATH": str(ROOT),
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


def measure(times: int = 3) -> float:
    """Median milliseconds from starting the process to the stand-in receiving the first reply."""
    delays = []
    for attempt in range(times):
        with tempfile.TemporaryDirectory() as directory:
            run = Path(directory) / str(attempt)
            run.mkdir()
            delays.append(asyncio.run(_once(run)))
    return round(statistics.median(delays), 1)


if __name__ == "__main__":
    print(f"cold_start_ms {measure()}")
