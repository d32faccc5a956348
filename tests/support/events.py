"""For the trigger API's end-to-end test and benchmark: signed requests, a content copy whose missed-call
campaign may write at any hour, and `tonebot demo` running against a Telegram Bot API stand-in."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dialogs.content import copy_content
from tests.support.botapi import ApiCall, BotApiStandin
from web.events_signature import signature

SECRET = "events-secret-" + "s" * 40
CAMPAIGN = "missed_call"
# What the demo must not take from the environment of whoever runs the test.
FOREIGN_VARIABLES = (
    "DATABASE_URL",
    "TONEBOT_CONTENT_DIR",
    "TONEBOT_COMPANY",
    "TELEGRAM_WEBHOOK_SECRET",
    "VK_GROUP_TOKEN",
    "MAX_BOT_TOKEN",
    "WHATSAPP_TOKEN",
)
READY_TIMEOUT_S = 60.0


def signed_headers(body: bytes, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    """The headers of a request to POST /api/events signed with `secret` at `at` (now by default)."""
    stamp = str(int(time.time() if at is None else at))
    return {
        "Content-Type": "application/json",
        "X-Tonebot-Timestamp": stamp,
        "X-Tonebot-Signature": signature(secret, stamp, body),
    }


def missed_call_in_chat(event_id: str, chat_id: int) -> bytes:
    """A missed-call event for a Telegram chat, as a request body."""
    event = {"id": event_id, "kind": CAMPAIGN, "client": {"channel": "telegram", "chat_id": str(chat_id)}}
    return json.dumps(event).encode()


def content_open_around_the_clock(directory: Path, company: str = "bank") -> Path:
    """A copy of a shipped company's content whose missed-call campaign may write at any hour (so what a
    test sees does not depend on when it runs)."""
    content = copy_content(directory / "content", company)
    path = content / "campaigns" / f"{CAMPAIGN}.yaml"
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    for campaign in data["campaigns"]:
        campaign["hours"] = {"business": "00:00-24:00", "quiet": None, "days": "mon-sun"}
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return content


def is_campaign_message(call: ApiCall, campaign: str = CAMPAIGN) -> bool:
    """Whether a sendMessage carries the campaign's buttons (payloads `campaign:<id>:<action>`)."""
    return f"campaign:{campaign}:" in json.dumps(call.params.get("reply_markup") or {})


async def campaign_message(api: BotApiStandin, chat_id: int, timeout: float = 30.0) -> ApiCall:
    """The first campaign message the stand-in received in a chat, once it has arrived."""
    deadline = time.monotonic() + timeout
    while True:
        found = [call for call in api.sent(chat_id, "sendMessage") if is_campaign_message(call)]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            texts = api.sent_texts(chat_id)
            raise TimeoutError(f"no campaign message in chat {chat_id} within {timeout}s; got {texts}")
        await asyncio.sleep(0.005)


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Demo:
    """A running `tonebot demo`: its URL, its database file and, once stopped, its exit and stderr."""

    url: str
    database: Path
    process: asyncio.subprocess.Process
    stderr_path: Path
    returncode: int | None = None

    @property
    def errors(self) -> str:
        """What the demo wrote to stderr."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


@asynccontextmanager
async def running_demo(
    directory: Path, content: Path, api: BotApiStandin, secret: str = SECRET
) -> AsyncIterator[Demo]:
    """`tonebot demo` on a free port with Telegram on the stand-in and the events API on; stopped with
    Ctrl+C (SIGINT) at the end."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_VARIABLES}
    env.update(
        PYTHONIOENCODING="utf-8",
        TELEGRAM_BOT_TOKEN=api.token,
        TELEGRAM_API_BASE=api.base_url,
        TONEBOT_CONTENT_DIR=str(content),
        TONEBOT_EVENTS_SECRET=secret,
    )
    port, database = free_port(), directory / "demo.db"
    stdout_path, stderr_path = directory / "demo.out", directory / "demo.err"
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "demo",
            "--port",
            str(port),
            "--db",
            str(database),
            cwd=directory,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    demo = Demo(f"http://127.0.0.1:{port}", database, process, stderr_path)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "Press Ctrl+C" not in stdout_path.read_text(encoding="utf-8", errors="replace"):
            if process.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"tonebot demo did not start:\n{demo.errors[-3000:]}")
            await asyncio.sleep(0.05)
        yield demo
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        demo.returncode = process.returncode
