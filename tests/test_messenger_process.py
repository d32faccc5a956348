"""`tonebot run vk|max|whatsapp` and `tonebot demo` with messengers, as separate processes.

A wrong setting stops the command with one line and exit 2; with tokens set, the demo answers in VK and
MAX (long polling the stand-ins on 127.0.0.1 with vkbottle's and maxapi's own clients) beside the web chat.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from tests.support.cli import tonebot
from tests.support.max_api import MaxApiStandin
from tests.support.vk_api import VkApiStandin

pytestmark = [pytest.mark.subprocess]
MESSENGER_VARIABLES = (
    "TELEGRAM_BOT_TOKEN",
    "VK_GROUP_TOKEN",
    "VK_GROUP_ID",
    "VK_API_BASE",
    "VK_CALLBACK_SECRET",
    "VK_CONFIRMATION_CODE",
    "MAX_BOT_TOKEN",
    "MAX_API_BASE",
    "MAX_WEBHOOK_SECRET",
    "WHATSAPP_TOKEN",
    "WHATSAPP_PHONE_NUMBER_ID",
    "WHATSAPP_APP_SECRET",
    "WHATSAPP_VERIFY_TOKEN",
    "WHATSAPP_API_BASE",
    "DATABASE_URL",
    "TONEBOT_CONTENT_DIR",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _without_messengers(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in MESSENGER_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("channel", "env", "says"),
    [
        ("vk", {}, "VK_GROUP_TOKEN is not set"),
        ("vk", {"VK_GROUP_TOKEN": "short", "VK_GROUP_ID": "1"}, "VK_GROUP_TOKEN"),
        ("vk", {"VK_GROUP_TOKEN": "vk1.a." + "x" * 80, "VK_GROUP_ID": "club1"}, "VK_GROUP_ID"),
        ("max", {}, "MAX_BOT_TOKEN is not set"),
        ("max", {"MAX_BOT_TOKEN": "has spaces in it and is not a token"}, "MAX_BOT_TOKEN"),
        ("whatsapp", {}, "WHATSAPP_TOKEN is not set"),
        (
            "whatsapp",
            {"WHATSAPP_TOKEN": "EAAG" + "x" * 60, "WHATSAPP_PHONE_NUMBER_ID": "1234567890"},
            "WHATSAPP_APP_SECRET",
        ),
    ],
)
def test_a_missing_or_malformed_setting_is_one_line_and_exit_2(
    channel: str, env: dict[str, str], says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _without_messengers(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    done = tonebot("run", channel, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tonebot: ") and says in lines[0], done.stderr
    assert not (tmp_path / "tonebot.db").exists()


@pytest.mark.anyio
async def test_demo_answers_in_vk_and_max_beside_the_web_chat(tmp_path: Path) -> None:
    async with VkApiStandin() as vk, MaxApiStandin() as max_api:
        env = {k: v for k, v in os.environ.items() if k not in MESSENGER_VARIABLES}
        env.update(
            PYTHONIOENCODING="utf-8",
            VK_GROUP_TOKEN=vk.token,
            VK_GROUP_ID=str(vk.group_id),
            VK_API_BASE=vk.base_url,
            MAX_BOT_TOKEN=max_api.token,
            MAX_API_BASE=max_api.base_url,
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "demo",
            "--port",
            str(free_port()),
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            printed = await asyncio.wait_for(_until_ready(process), 60)
            assert "VK:" in printed and "MAX:" in printed, printed
            assert "on (long polling)" in printed, printed
            assert "WhatsApp:" in printed and "off (set WHATSAPP_TOKEN" in printed, printed
            vk.add_message(501, "не работает интернет")
            max_api.add_message(601, "не работает интернет")
            vk_replies = await vk.wait_for_messages(1, timeout=30, peer_id=501)
            max_replies = await max_api.wait_for_sent(1, timeout=30, chat_id=601, name="send_message")
            assert vk_replies[0] and max_replies[0].text
        finally:
            process.send_signal(signal.SIGINT)
            _, errors = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode in (0, 130, -signal.SIGINT), errors.decode()
    assert b"Traceback" not in errors, errors.decode()


async def _until_ready(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    while not any(line.startswith("Press Ctrl+C") for line in lines):
        line = (await process.stdout.readline()).decode()
        if not line:
            stderr = await process.stderr.read() if process.stderr else b""
            raise AssertionError("".join(lines) + stderr.decode())
        lines.append(line)
    return "".join(lines)


def test_clients_verify_records_the_company_confirmation(tmp_path: Path, content_copy: Path) -> None:
    from datetime import UTC, datetime

    from common.messages import IncomingMessage
    from tests.support.webserver import web_runtime

    db = tmp_path / "web.db"
    runtime = web_runtime(tmp_path, content_copy)
    at = datetime.now(UTC)
    for channel, user in (("vk", "501"), ("telegram", "777")):
        runtime.service.handle(IncomingMessage(channel, user, user, "не работает интернет", at, "m1"))
    runtime.store.engine.dispose()

    unknown = tonebot(
        "clients",
        "verify",
        "--channel",
        "vk",
        "--user",
        "999",
        "--phone",
        "+79131234567",
        "--db",
        str(db),
        cwd=tmp_path,
    )
    assert unknown.returncode == 1 and "999" in unknown.stderr
    first = tonebot(
        "clients",
        "verify",
        "--channel",
        "vk",
        "--user",
        "501",
        "--phone",
        "+79131234567",
        "--by",
        "crm",
        "--db",
        str(db),
        cwd=tmp_path,
    )
    assert first.returncode == 0, first.stderr
    assert "phone confirmed by company:crm" in first.stdout
    second = tonebot(
        "clients",
        "verify",
        "--channel",
        "telegram",
        "--user",
        "777",
        "--phone",
        "8 913 123-45-67",
        "--by",
        "crm",
        "--db",
        str(db),
        cwd=tmp_path,
    )
    assert second.returncode == 0, second.stderr
    # The same confirmed number makes the Telegram and the VK client one person.
    assert "one person with clients" in second.stdout
