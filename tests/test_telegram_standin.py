"""tonebot over Telegram: aiogram and python-telegram-bot clients against the local Bot API stand-in.

Every test starts the stand-in on 127.0.0.1 itself; nothing reaches the real Telegram.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiogram import Bot, Dispatcher
from aiohttp import web
from telegram.ext import Application

from bot.channels.limits import RateLimits
from bot.channels.text_split import TELEGRAM_TEXT_LIMIT, split_text
from bot.telegram.aiogram_io import AiogramOutbound
from bot.telegram.gateway import TelegramGateway
from bot.telegram.ptb_io import PtbOutbound, tonebot_handler
from bot.telegram.runner import TelegramSettings, make_bot, make_dispatcher, webhook_app
from common.messages import IncomingMessage, Reply
from dialogs.content import LiveContent
from dialogs.engine import Engine, Turn
from dialogs.service import ConversationService
from storage import SqlStore, connect
from storage.database import sqlite_url
from tests.support.botapi import SECRET_HEADER, BotApiStandin

pytestmark = pytest.mark.anyio
CHAT = 5001
FAST = RateLimits(per_chat_interval=0.0, global_per_second=10_000)


@pytest.fixture
def service(tmp_path: Path, engine: Engine) -> ConversationService:
    return ConversationService(engine, SqlStore(connect(sqlite_url(str(tmp_path / "tg.db")))))


@dataclass
class Polling:
    bot: Bot
    dispatcher: Dispatcher
    task: asyncio.Task[None]

    @property
    def gateway(self) -> TelegramGateway:
        gateway: TelegramGateway = self.dispatcher["tonebot_gateway"]
        return gateway


@contextlib.asynccontextmanager
async def aiogram_polling(
    api: BotApiStandin, service: ConversationService, limits: RateLimits = FAST
) -> AsyncIterator[Polling]:
    bot = make_bot(TelegramSettings(api.token, api.base_url))
    dispatcher = make_dispatcher(service, bot, limits)
    task = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        yield Polling(bot, dispatcher, task)
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(task, 10)
        await bot.session.close()


def texts(api: BotApiStandin, chat: int = CHAT) -> list[str]:
    return api.sent_texts(chat)


async def test_no_internet_dialog_over_aiogram(api: BotApiStandin, service: ConversationService) -> None:
    async with aiogram_polling(api, service):
        api.add_message(CHAT, "Здравствуйте, не работает интернет")
        await api.wait_for_sent(1, 10, chat_id=CHAT, method="sendMessage")
        assert "договор" in texts(api)[-1].lower()
        api.add_message(CHAT, "договор 1234567")
        calls = await api.wait_for_sent(2, 10, chat_id=CHAT, method="sendMessage")
        keyboard = calls[-1].params["reply_markup"]["inline_keyboard"]
        assert any(b["text"] == "Все лампочки горят" for row in keyboard for b in row)
        api.press_button(CHAT, "Все лампочки горят")
        await api.wait_for_sent(3, 10, chat_id=CHAT, method="sendMessage")
        assert "1234567" in texts(api)[-1]
        await api.wait_for_sent(1, 5, chat_id=CHAT, method="answerCallbackQuery")


class SlowService:
    """A service that thinks for a second, to see "typing…" while it works."""

    def __init__(self, inner: ConversationService, seconds: float = 1.0) -> None:
        self.inner, self.seconds = inner, seconds

    def handle(self, message: IncomingMessage) -> Turn:
        time.sleep(self.seconds)
        return self.inner.handle(message)


async def test_typing_is_shown_while_a_reply_takes_time(
    api: BotApiStandin, service: ConversationService
) -> None:
    async with aiogram_polling(api, SlowService(service)):  # type: ignore[arg-type]
        api.add_message(CHAT, "не работает интернет")
        await api.wait_for_sent(1, 10, chat_id=CHAT, method="sendMessage")
    actions = api.sent(CHAT, "sendChatAction")
    assert actions and actions[0].params["action"] == "typing"
    assert actions[0].at < api.sent(CHAT, "sendMessage")[0].at


async def test_typing_is_shed_while_the_bot_is_backlogged(
    api: BotApiStandin, service: ConversationService, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.channels.gateway as gateway_module

    monkeypatch.setattr(gateway_module, "TYPING_MAX_BACKLOG", 2)
    chats = [CHAT + n for n in range(6)]
    async with aiogram_polling(api, SlowService(service, seconds=0.4)):  # type: ignore[arg-type]
        for chat in chats:
            api.add_message(chat, "не работает интернет")
        for chat in chats:
            await api.wait_for_sent(1, 20, chat_id=chat, method="sendMessage")
    # Six turns queue behind one handler: every reply arrives, no indicator was sent while they waited.
    assert api.sent(method="sendChatAction") == []


async def test_python_telegram_bot_handler(api: BotApiStandin, service: ConversationService) -> None:
    application = (
        Application.builder()
        .token(api.token)
        .base_url(api.ptb_base_url)
        .base_file_url(api.ptb_base_file_url)
        .build()
    )
    gateway = TelegramGateway(service, PtbOutbound(application.bot), FAST)
    application.add_handler(tonebot_handler(gateway))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=1)
        try:
            api.add_message(CHAT, "перезвоните мне")
            await api.wait_for_sent(1, 10, chat_id=CHAT, method="sendMessage")
            api.add_contact(CHAT, "+79131234567", own=True)
            await api.wait_for_sent(2, 10, chat_id=CHAT, method="sendMessage")
            assert "звон" in texts(api)[-1].lower() or "время" in texts(api)[-1].lower()
        finally:
            await application.updater.stop()
            await application.stop()


class LongReplyService:
    """A service answering with one very long reply, to test splitting without a long guide."""

    def handle(self, message: IncomingMessage) -> Turn:
        sentence = "Это очень подробное объяснение одного шага настройки. "
        return Turn(replies=[Reply(sentence * 200)])


async def test_long_reply_is_split_at_sentences(api: BotApiStandin) -> None:
    async with aiogram_polling(api, LongReplyService()) as polling:  # type: ignore[arg-type]
        api.add_message(CHAT, "расскажи подробно")
        await api.wait_for_sent(3, 10, chat_id=CHAT, method="sendMessage")
        await polling.gateway.drain()
    parts = texts(api)
    assert len(parts) == 3 and all(len(p) <= TELEGRAM_TEXT_LIMIT for p in parts)
    assert all(p.endswith(".") for p in parts)


def test_split_text_keeps_every_word() -> None:
    text = " ".join(f"Предложение номер {i}." for i in range(2000)) + " " + "x" * 5000
    chunks = split_text(text)
    assert all(len(c) <= TELEGRAM_TEXT_LIMIT for c in chunks)
    assert "".join(chunks).replace(" ", "") == text.replace(" ", "")


async def test_429_storm_is_waited_out_and_nothing_is_lost(
    api: BotApiStandin, service: ConversationService
) -> None:
    api.fail_next("sendMessage", 429, retry_after=1, times=3)
    started = time.monotonic()
    async with aiogram_polling(api, service) as polling:
        api.add_message(CHAT, "не работает интернет")
        await api.wait_for_sent(1, 15, chat_id=CHAT, method="sendMessage")
        await polling.gateway.drain()
    assert time.monotonic() - started >= 3
    assert len(texts(api)) == 1
    rejected = [c for c in api.calls if c.method == "sendMessage" and not c.ok]
    assert len(rejected) == 3


async def test_server_errors_are_retried(api: BotApiStandin, service: ConversationService) -> None:
    api.fail_next("sendMessage", 502, times=2)
    async with aiogram_polling(api, service):
        api.add_message(CHAT, "не работает интернет")
        await api.wait_for_sent(1, 15, chat_id=CHAT, method="sendMessage")
    assert len(texts(api)) == 1


async def test_duplicate_updates_are_processed_once(api: BotApiStandin, service: ConversationService) -> None:
    api.duplicate_next_updates(2)
    async with aiogram_polling(api, service) as polling:
        api.add_message(CHAT, "не работает интернет")
        api.add_message(CHAT, "1234567")
        await api.wait_for_sent(2, 10, chat_id=CHAT, method="sendMessage")
        await api.wait_until_consumed(10)
        await asyncio.sleep(0.5)
        await polling.gateway.drain()
    assert len(texts(api)) == 2


async def test_restart_mid_dialog_continues(api: BotApiStandin, tmp_path: Path) -> None:
    db = sqlite_url(str(tmp_path / "restart.db"))
    first = ConversationService(Engine(LiveContent()), SqlStore(connect(db)))
    async with aiogram_polling(api, first):
        api.add_message(CHAT, "перезвоните мне")
        await api.wait_for_sent(1, 10, chat_id=CHAT, method="sendMessage")
    second = ConversationService(Engine(LiveContent()), SqlStore(connect(db)))
    async with aiogram_polling(api, second):
        api.add_message(CHAT, "8 913 123 45 67")
        await api.wait_for_sent(2, 10, chat_id=CHAT, method="sendMessage")
    assert "время" in texts(api)[-1].lower() or "когда" in texts(api)[-1].lower()


async def test_one_chat_is_kept_within_a_message_a_second(
    api: BotApiStandin, service: ConversationService
) -> None:
    async with aiogram_polling(api, service, RateLimits()):
        for text in ("привет", "не работает интернет", "1234567"):
            api.add_message(CHAT, text)
        await api.wait_for_sent(3, 15, chat_id=CHAT, method="sendMessage")
    times = api.send_times(CHAT)
    assert all(later - earlier >= 0.95 for earlier, later in itertools.pairwise(times))


async def test_stickers_and_start_payloads(api: BotApiStandin, service: ConversationService) -> None:
    async with aiogram_polling(api, service):
        api.add_start(CHAT, "promo_october")
        await api.wait_for_sent(1, 10, chat_id=CHAT, method="sendMessage")
        api.add_sticker(CHAT)
        await api.wait_for_sent(2, 10, chat_id=CHAT, method="sendMessage")
        api.add_voice(CHAT)
        await api.wait_for_sent(3, 10, chat_id=CHAT, method="sendMessage")
    assert "Сибирские сети" in texts(api)[0]
    assert all(t.strip() for t in texts(api))


async def test_two_hundred_chats_at_once_keep_each_chats_order(
    api: BotApiStandin, service: ConversationService
) -> None:
    chats = range(10_000, 10_200)
    async with aiogram_polling(api, service) as polling:
        for chat in chats:
            api.add_message(chat, "не работает интернет")
            api.add_message(chat, f"договор {chat}00")
            api.add_message(chat, "2")
        await api.wait_for_sent(600, 120, method="sendMessage")
        await polling.gateway.drain()
    for chat in chats:
        replies = texts(api, chat)
        assert len(replies) == 3
        assert "договор" in replies[0].lower()
        assert "роутер" in replies[1].lower() or "горит" in replies[1].lower()
        assert f"{chat}00" in replies[2]


async def test_webhook_checks_the_secret(api: BotApiStandin, service: ConversationService) -> None:
    bot = make_bot(TelegramSettings(api.token, api.base_url))
    app = webhook_app(service, bot, "s3cret-token")
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": CHAT, "type": "private"},
            "from": {"id": CHAT, "is_bot": False, "first_name": "Клиент"},
            "text": "не работает интернет",
        },
    }
    try:
        async with aiohttp.ClientSession() as client:
            async with client.post(url, json=update, headers={SECRET_HEADER: "wrong"}) as response:
                assert response.status == 401
            async with client.post(url, json=update) as response:
                assert response.status == 401
            assert not texts(api)
        # The stand-in, like Telegram, posts updates with the secret registered by setWebhook.
        await bot.set_webhook(url, secret_token="s3cret-token")
        api.add_message(CHAT, "не работает интернет")
        await api.wait_for_sent(1, 10, chat_id=CHAT, method="sendMessage")
        assert api.webhook_deliveries and all(d.status == 200 for d in api.webhook_deliveries)
    finally:
        await runner.cleanup()
        await bot.session.close()


async def test_edited_message_is_read_again(api: BotApiStandin, service: ConversationService) -> None:
    async with aiogram_polling(api, service):
        api.add_message(CHAT, "перезвоните мне")
        await api.wait_for_sent(1, 10, chat_id=CHAT, method="sendMessage")
        sent = api.add_message(CHAT, "8 913 123 45 67")
        await api.wait_for_sent(2, 10, chat_id=CHAT, method="sendMessage")
        api.add_edited_message(CHAT, sent["message"]["message_id"], "8 913 000 11 22")
        await api.wait_for_sent(3, 10, chat_id=CHAT, method="sendMessage")
    assert "+7 913 000-11-22" in texts(api)[-1]


async def test_global_rate_stays_near_thirty_a_second() -> None:
    from bot.channels.limits import Throttle

    throttle = Throttle(RateLimits())
    started = time.monotonic()
    for chat in range(61):
        await throttle.wait(str(chat))
    assert time.monotonic() - started >= 1.9


class BrokenStorageService:
    """A service whose storage fails for the first `failures` calls."""

    def __init__(self, inner: ConversationService, failures: int) -> None:
        self.inner, self.failures = inner, failures
        self.engine = inner.engine

    def handle(self, message: IncomingMessage) -> Turn:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("database is locked")
        return self.inner.handle(message)

    def apology(self) -> Turn:
        return self.inner.apology()


@pytest.mark.parametrize(("failures", "apologised"), [(2, False), (10, True)])
async def test_storage_failures_are_retried_apologised_for_and_the_message_still_answered(
    api: BotApiStandin, service: ConversationService, failures: int, apologised: bool
) -> None:
    flaky = BrokenStorageService(service, failures)
    gateway = TelegramGateway(
        flaky,
        AiogramOutbound(make_bot(TelegramSettings(api.token, api.base_url))),
        FAST,  # type: ignore[arg-type]
        handle_attempts=3,
        retry_base_s=0.01,
    )
    await gateway.submit(
        IncomingMessage("telegram", str(CHAT), str(CHAT), "не работает интернет", datetime.now(UTC), "m1")
    )
    await gateway.drain()
    assert any("сбой" in text for text in texts(api)) == apologised
    assert "договор" in texts(api)[-1].lower(), "once storage works again the message is answered"
    assert flaky.failures == 0
    await gateway.outbound.bot.session.close()  # type: ignore[attr-defined]
