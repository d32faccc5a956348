"""VK's Callback API and MAX's webhook served by a PostgreSQL worker (the one `tonebot worker` runs).

A real PostgreSQL database, the VK and MAX stand-ins posting webhooks to the worker on 127.0.0.1, and
vkbottle's and maxapi's own clients sending the replies: a first message answered in each, a handoff, and
the operator's reply delivered from the outbox by the worker's drainer for that messenger.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.channels.limits import RateLimits
from bot.channels.workers import ChannelWorker
from bot.max import runner as max_runner
from bot.max.settings import MaxSettings
from bot.vk import runner as vk_runner
from bot.vk.settings import VkSettings
from tests.support.databases import fresh_postgres
from tests.support.max_api import MaxApiStandin
from tests.support.vk_api import VkApiStandin
from tests.support.webserver import add_operator, always_open, web_runtime
from wiring.runtime import Runtime

pytestmark = pytest.mark.anyio
FAST = RateLimits(per_chat_interval=0.0, global_per_second=10_000)
SECRET, CODE = "callback-secret-123", "a1b2c3d4"
MAX_SECRET = "max-webhook-secret-456"
OPERATOR, OPERATOR_NAME = "anna", "Анна"


@pytest.fixture
def pg_runtime(tmp_path: Path, content_copy: Path) -> Iterator[Runtime]:
    with fresh_postgres() as url:
        runtime = web_runtime(tmp_path, always_open(content_copy), url)
        add_operator(runtime, OPERATOR, "correct horse battery", OPERATOR_NAME)
        yield runtime


@contextlib.asynccontextmanager
async def worker_serving(runtime: Runtime, vk: VkApiStandin, max_api: MaxApiStandin) -> AsyncIterator[str]:
    vk_settings = VkSettings(vk.token, vk.group_id, vk.base_url, SECRET, CODE)
    max_settings = MaxSettings(max_api.token, max_api.base_url, MAX_SECRET)
    worker = ChannelWorker(
        runtime,
        [
            (
                vk_runner.webhook_reader(vk_settings),
                vk_runner.make_gateway(runtime.service, vk_settings, FAST),
            ),
            (
                max_runner.webhook_reader(max_settings),
                max_runner.make_gateway(runtime.service, max_settings, FAST),
            ),
        ],
        threads=2,
    )
    runner = web.AppRunner(worker.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def _until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_vk_and_max_webhooks_through_a_postgresql_worker_with_an_operator(pg_runtime: Runtime) -> None:
    runtime = pg_runtime
    async with VkApiStandin() as vk, MaxApiStandin() as max_api, worker_serving(runtime, vk, max_api) as url:
        assert await vk.confirm(f"{url}/vk/callback") == (200, CODE)
        vk.set_callback(f"{url}/vk/callback", SECRET)
        vk.add_message(501, "не работает интернет")
        first = await vk.wait_for_messages(1, timeout=15, peer_id=501)
        assert first[0]

        update = max_api.add_message(601, "позовите оператора")
        assert await max_api.post_webhook(f"{url}/max/webhook", update, secret="wrong") == 403
        assert await max_api.post_webhook(f"{url}/max/webhook", update, secret=MAX_SECRET) == 200
        # A repeated delivery of the same update is stored once.
        assert await max_api.post_webhook(f"{url}/max/webhook", update, secret=MAX_SECRET) == 200
        await max_api.wait_for_sent(1, timeout=15, chat_id=601, name="send_message")
        rows = runtime.desk_store.chat_messages("max", "601", 0)
        assert sum(1 for row in rows if row.direction == "in") == 1
        conversation_id = int(rows[-1].conversation_id)
        view = runtime.desk_store.conversation(conversation_id)
        assert view is not None and view.handoff is not None

        runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
        runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, "Сейчас проверю линию.")
        await _until(lambda: "Сейчас проверю линию." in max_api.sent_texts(601))
        # Nothing of MAX's went to VK, and VK's chat got no MAX reply.
        assert "Сейчас проверю линию." not in vk.sent_texts(501)


@pytest.mark.slow
async def test_whatsapp_through_a_postgresql_worker_stores_receipts_and_links_the_operators_reply(
    pg_runtime: Runtime,
) -> None:
    from bot.whatsapp import runner as whatsapp_runner
    from bot.whatsapp.settings import WhatsAppSettings
    from tests.support.whatsapp_api import GraphApiStandin

    runtime = pg_runtime
    async with GraphApiStandin() as graph:
        env = graph.env()
        settings = WhatsAppSettings.from_env(env)
        gateway = whatsapp_runner.make_gateway(runtime.service, settings, FAST)
        worker = ChannelWorker(
            runtime,
            [(whatsapp_runner.webhook_reader(settings), gateway)],
            threads=2,
            record_receipts=runtime.desk_store.record_receipts,
        )
        runner = web.AppRunner(worker.app())
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            graph.connect(f"http://127.0.0.1:{runner.addresses[0][1]}/whatsapp/webhook")
            assert (await graph.verify())[0] == 200
            wa_id = "79131234567"
            await graph.client_text(wa_id, "позовите оператора")
            await graph.wait_for_sent(1, timeout=15, to=wa_id)
            rows = runtime.desk_store.chat_messages("whatsapp", wa_id, 0)
            conversation_id = int(rows[-1].conversation_id)
            runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
            runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, "Смотрю вашу линию.")
            await _until(lambda: "Смотрю вашу линию." in graph.sent_texts(wa_id))
            reply = next(call for call in graph.sent(wa_id) if call.text == "Смотрю вашу линию.")
            await graph.statuses(reply.wamid, ("sent", "delivered", "read"))
            # The outbox row knows WhatsApp's id of the reply, and its receipts show how far it got.
            stored = [
                row for row in runtime.store.messages(conversation_id) if row.text == "Смотрю вашу линию."
            ]
            assert [row.external_id for row in stored] == [reply.wamid]
            await _until(lambda: bool(runtime.desk_store.receipts_of([("whatsapp", wa_id)])))
            lines = runtime.desk_store.receipts_of([("whatsapp", wa_id)])
            assert [line.status for line in lines if line.external_id == reply.wamid] == ["read"]
        finally:
            await runner.cleanup()
