"""Oversized or malformed updates are refused at the adapter with a log line and never half-stored."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import func, select

from bot.telegram.runner import TelegramSettings, make_bot
from bot.telegram.workers import MAX_UPDATE_BYTES, SECRET_HEADER, WEBHOOK_PATH, WebhookWorker
from storage.tables import messages
from tests.support.botapi import BotApiStandin
from tests.support.webserver import always_open, web_runtime
from wiring.runtime import Runtime

# aiohttp warns that posting a body this large blocks its loop for a moment: expected in this test.
pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning")]
SECRET = "s3cret-token-for-tests"


@pytest.fixture
async def worker(
    api: BotApiStandin, tmp_path: Path, content_copy: Path
) -> AsyncIterator[tuple[str, Runtime]]:
    runtime = web_runtime(tmp_path, always_open(content_copy))
    app = WebhookWorker(runtime, make_bot(TelegramSettings(api.token, api.base_url)), SECRET).app()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}{WEBHOOK_PATH}", runtime
    await runner.cleanup()


def stored(runtime: Runtime) -> int:
    with runtime.store.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(messages).where(messages.c.direction == "in")
            ).scalar_one()
        )


def update(text: str, update_id: int = 1) -> dict[str, object]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_790_000_000,
            "chat": {"id": 42, "type": "private"},
            "from": {"id": 42, "is_bot": False, "first_name": "Ира"},
            "text": text,
        },
    }


async def post(url: str, body: bytes, secret: str = SECRET) -> int:
    async with (
        aiohttp.ClientSession(trust_env=False) as client,
        client.post(
            url, data=body, headers={SECRET_HEADER: secret, "Content-Type": "application/json"}
        ) as answer,
    ):
        return answer.status


async def test_malformed_and_oversized_updates_are_refused_and_logged(
    worker: tuple[str, Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    url, runtime = worker
    caplog.set_level(logging.WARNING, logger="bot.telegram.workers")
    assert await post(url, b"{not json") == 400
    assert await post(url, json.dumps({"update_id": "x", "message": {"text": 5}}).encode()) == 400
    assert await post(url, json.dumps([1, 2, 3]).encode()) == 400
    assert await post(url, b"{" + b" " * MAX_UPDATE_BYTES + b"}") == 413
    assert await post(url, json.dumps(update("чужой")).encode(), secret="wrong") == 401
    assert stored(runtime) == 0, "nothing half-stored"
    refusals = [r for r in caplog.records if "malformed update" in r.getMessage()]
    assert len(refusals) == 3
    assert await post(url, json.dumps(update("не работает интернет")).encode()) == 200
    assert stored(runtime) == 1, "a good update after the bad ones is taken"


async def test_an_update_with_a_huge_text_is_stored_whole_up_to_the_limit(
    worker: tuple[str, Runtime],
) -> None:
    url, runtime = worker
    body = json.dumps(update("интернет " * 15_000, 2), ensure_ascii=False).encode()
    assert await post(url, body) == 200
    with runtime.store.engine.connect() as connection:
        text = connection.execute(select(messages.c.text).where(messages.c.direction == "in")).scalar_one()
    assert 0 < len(text) <= 100_000


async def test_a_lone_surrogate_in_a_webhook_update_is_cleaned_not_refused(
    worker: tuple[str, Runtime],
) -> None:
    url, runtime = worker
    # json.dumps writes the lone surrogate as the escape "\ud800", as a broken client library might send.
    body = json.dumps(update("нет интернета \ud800 с утра")).encode()
    assert b"\\ud800" in body
    assert await post(url, body) == 200
    with runtime.store.engine.connect() as connection:
        texts = [
            row.text
            for row in connection.execute(select(messages.c.text).where(messages.c.direction == "in"))
        ]
    assert texts == ["нет интернета \ufffd с утра"]


async def test_polling_reads_a_batch_with_a_lone_surrogate(api: BotApiStandin) -> None:
    """aiogram's own session, with tonebot's lenient parser, over real HTTP from a server on 127.0.0.1."""
    raw = json.dumps({"ok": True, "result": [update("привет \udc80")]}).encode()

    async def get_updates(_request: web.Request) -> web.Response:
        return web.Response(body=raw, content_type="application/json")

    app = web.Application()
    app.router.add_post("/bot{token}/getUpdates", get_updates)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        bot = make_bot(TelegramSettings(api.token, f"http://127.0.0.1:{port}"))
        try:
            updates = await bot.get_updates()
        finally:
            await bot.session.close()
    finally:
        await runner.cleanup()
    assert [u.message.text for u in updates if u.message] == ["привет \ufffd"]


def test_updates_are_cleaned_the_same_with_or_without_the_walk() -> None:
    """`loads_clean` skips walking an answer that cannot hold an unsafe string, and only such a one."""
    import json

    from dialogs.safetext import clean_json, loads_clean

    answers = [
        '{"ok": true, "result": [{"message": {"text": "привет 😊", "chat": {"id": 1}}}]}',
        '{"text": "\\\\u0000 is text, not a NUL"}',
        '{"text": "a \\u0000 NUL"}',
        '{"text": "a lone \\ud800 half", "k\\uDFFF": 1}',
        '{"text": "a pair \\ud83d\\ude0a"}',
        '{"text": "\\u0416"}',
        '{"text": "raw \ud800 surrogate"}',
    ]
    for raw in answers:
        assert loads_clean(raw) == clean_json(json.loads(raw)), raw
        assert loads_clean(raw.encode("utf-8", "surrogatepass")) == clean_json(json.loads(raw)), raw
