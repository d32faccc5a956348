"""Resident memory of a serving process with many active conversations.

Each measurement runs in a fresh process (`python -m bench.memory N`): the service on an SQLite file,
warmed like a started bot, then N conversations of the benchmark mix, three messages each.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.engine import conversations, rss_mb

ROOT = Path(__file__).resolve().parent.parent


def fill(active: int, db: Path) -> dict[str, float]:
    """In this process: RSS before any conversation, and after `active` conversations."""
    from datetime import UTC, datetime, timedelta

    from common.messages import IncomingMessage
    from dialogs.content import LiveContent
    from dialogs.engine import Engine
    from dialogs.service import ConversationService
    from storage import SqlStore, connect
    from storage.database import sqlite_url

    service = ConversationService(Engine(LiveContent()), SqlStore(connect(sqlite_url(str(db)))))
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    service.handle(IncomingMessage("bench", "warm-up", "warm-up", "привет", start, "1"))
    gc.collect()
    idle = rss_mb()
    dialogs = conversations()
    for index in range(active):
        chat = f"c{index}"
        for step, text in enumerate(dialogs[index % len(dialogs)][:3]):
            at = start + timedelta(seconds=index + step * 20)
            service.handle(IncomingMessage("bench", chat, chat, text, at, str(step)))
    gc.collect()
    return {"rss_mb_idle": idle, "rss_mb": rss_mb()}


def measure(active: int) -> dict[str, float]:
    """RSS with `active` conversations, measured in a fresh process."""
    with tempfile.TemporaryDirectory() as directory:
        done = subprocess.run(
            [sys.executable, "-m", "bench.memory", str(active), str(Path(directory) / "memory.db")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    print(json.dumps(fill(int(sys.argv[1]), Path(sys.argv[2]))))
