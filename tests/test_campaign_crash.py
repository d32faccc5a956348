"""kill -9 in the middle of `tonebot campaigns run`, then a restart: nobody gets the message twice.

The command runs as a real process against a Telegram Bot API stand-in and a VK API stand-in served by this
test. It is killed once the stand-ins have seen some of its sends, then started again and let finish.
Telegram cannot recognise a repeated send: the steps the dead process held are given up and counted, never
repeated. VK drops a repeat with the same random_id: those steps are sent again under the same key.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from storage import SqlStore, connect
from storage.campaigns import INTERRUPTED
from storage.database import sqlite_url
from storage.tables import recipients
from tests.support.botapi import BotApiStandin
from tests.support.campaigns import campaign, campaign_content, client_wrote
from tests.support.vk_api import VkApiStandin

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.subprocess]
ROOT = Path(__file__).resolve().parent.parent
TELEGRAM_CHATS = [str(7_000 + n) for n in range(150)]
VK_PEERS = [str(9_000 + n) for n in range(100)]


async def started(
    content: Path, db: Path, api: BotApiStandin, vk: VkApiStandin
) -> asyncio.subprocess.Process:
    """`tonebot campaigns run blast` pointed at the stand-ins, as a user would run it."""
    env = {
        **os.environ,
        "PYTHONIOENCODING": "utf-8",
        "TELEGRAM_BOT_TOKEN": api.token,
        "TELEGRAM_API_BASE": api.base_url,
        "VK_GROUP_TOKEN": vk.token,
        "VK_GROUP_ID": str(vk.group_id),
        "VK_API_BASE": vk.base_url,
    }
    env.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "bot.cli", "--content", str(content), "campaigns", "run", "blast"]
    return await asyncio.create_subprocess_exec(
        *command,
        "--db",
        str(db),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.01)


async def test_a_killed_run_restarted_sends_nobody_a_second_message(tmp_path: Path) -> None:
    content = campaign_content(
        tmp_path,
        campaign(
            "blast", audience={"query": {"channels": ["telegram", "vk"]}}, rate={"telegram": 30, "vk": 20}
        ),
    )
    db = tmp_path / "crash.db"
    engine = connect(sqlite_url(str(db)))
    store = SqlStore(engine)
    wrote = datetime.now(UTC) - timedelta(days=1)
    for chat in TELEGRAM_CHATS:
        client_wrote(store, "telegram", chat, wrote)
    for peer in VK_PEERS:
        client_wrote(store, "vk", peer, wrote)
    engine.dispose()
    async with BotApiStandin() as api, VkApiStandin() as vk:
        # Each Telegram send takes a moment: the kill finds some under way, accepted but not recorded.
        api.set_latency(0.05, "sendMessage")
        first = await started(content, db, api, vk)
        await until(lambda: len(api.sent(method="sendMessage")) >= 40 and len(vk.sent()) >= 25, 60, "sends")
        first.send_signal(signal.SIGKILL)
        await first.wait()
        assert first.returncode == -signal.SIGKILL
        before = len(api.sent(method="sendMessage"))
        assert before < len(TELEGRAM_CHATS)
        again = await started(content, db, api, vk)
        out, err = await asyncio.wait_for(again.communicate(), 120)
        assert again.returncode == 0, err.decode()[-3000:]
        telegram = Counter(str(call.chat_id) for call in api.sent(method="sendMessage"))
        vk_shown = Counter(str(message.peer_id) for message in vk.sent())
    # Nobody saw the campaign twice.
    assert max(telegram.values()) == 1 and max(vk_shown.values()) == 1
    engine = connect(sqlite_url(str(db)))
    with engine.connect() as connection:
        rows = connection.execute(
            select(recipients.c.channel, recipients.c.chat_id, recipients.c.status, recipients.c.reason)
        ).all()
    engine.dispose()
    by_status = Counter((row.channel, row.status, row.reason) for row in rows)
    interrupted = {row.chat_id for row in rows if row.reason == INTERRUPTED}
    # Every VK recipient got exactly one message: the dead process's steps went again under the same key.
    assert by_status[("vk", "sent", "")] == len(VK_PEERS) and set(vk_shown) == set(VK_PEERS)
    # Every Telegram recipient recorded as sent got exactly one; those the dead process held were given up
    # (counted, with the reason) and got at most the one it may have sent.
    sent = {row.chat_id for row in rows if row.channel == "telegram" and row.status == "sent"}
    assert all(telegram[chat] == 1 for chat in sent)
    assert interrupted and by_status[("telegram", "failed", INTERRUPTED)] == len(interrupted)
    assert sent | interrupted == set(TELEGRAM_CHATS)
    assert "failed: " + INTERRUPTED in out.decode()
