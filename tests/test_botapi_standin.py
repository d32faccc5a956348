"""The Bot API stand-in, exercised through aiogram's and python-telegram-bot's own HTTP clients.

These tests run on anyio's pytest plugin (installed with httpx, which PTB needs), so they need no
pytest configuration: the module is marked ``anyio`` and ``anyio_backend`` picks asyncio.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import telegram
from aiogram import Bot as AiogramBot
from aiogram import Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from telegram.error import NetworkError, RetryAfter
from telegram.ext import Application, CommandHandler, ContextTypes
from telegram.request import HTTPXRequest

from tests.support.botapi import SECRET_HEADER, BotApiStandin, UploadedFile

pytestmark = pytest.mark.anyio

CHAT = 4242
JsonDict = dict[str, Any]


def aiogram_bot(api: BotApiStandin, token: str | None = None) -> AiogramBot:
    """An aiogram Bot whose real AiohttpSession talks to the stand-in."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
    return AiogramBot(token or api.token, session=session)


@pytest.fixture
async def aiobot(api: BotApiStandin) -> AsyncIterator[AiogramBot]:
    async with aiogram_bot(api) as bot:
        yield bot


@pytest.fixture
async def ptbbot(api: BotApiStandin, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[telegram.Bot]:
    # PTB warns (PTBDeprecationWarning) when it builds RetryAfter unless time periods are timedeltas,
    # and this project turns warnings into errors.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    bot = telegram.Bot(
        api.token,
        base_url=api.ptb_base_url,
        base_file_url=api.ptb_base_file_url,
        request=HTTPXRequest(),
        get_updates_request=HTTPXRequest(),
    )
    async with bot:
        yield bot


def keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="Да", callback_data="yes"),
                InlineKeyboardButton(text="Нет", callback_data="no"),
            ]
        ]
    )


def free_loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class WebhookReceiver:
    """A tiny webhook endpoint on 127.0.0.1 that records what the stand-in POSTs to it."""

    def __init__(self) -> None:
        self.updates: list[JsonDict] = []
        self.secrets: list[str | None] = []
        self.statuses: list[int] = []
        """Statuses to answer, one per request, before answering 200."""
        self.reply: JsonDict | None = None
        """A JSON body for 200 answers: a method call for the stand-in to execute."""
        self.url = ""
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = free_loopback_socket()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.updates.append(await request.json())
        self.secrets.append(request.headers.get(SECRET_HEADER))
        self._arrived.set()
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200 and self.reply is not None:
            return web.json_response(self.reply)
        return web.Response(status=status)

    async def wait(self, count: int, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while len(self.updates) < count:
                self._arrived.clear()
                await self._arrived.wait()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver()
    await hook.start()
    yield hook
    await hook.stop()


# ---------------------------------------------------------------------- raw HTTP


async def test_raw_http_answers_like_telegram(api: BotApiStandin) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(api.method_url("getMe", token="1:unknown")) as resp:
            assert resp.status == 401
            assert await resp.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.post(api.method_url("noSuchMethod")) as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with http.get(api.method_url("getMe")) as resp:
            body = await resp.json()
            assert resp.status == 200
            assert body["ok"] is True
            assert body["result"]["id"] == api.bot_id
        # Method names are case-insensitive; JSON bodies are typed as sent.
        payload = {"chat_id": CHAT, "text": "123", "reply_markup": '{"inline_keyboard": []}'}
        async with http.post(api.method_url("sendmessage"), json=payload) as resp:
            body = await resp.json()
            assert body["ok"] is True
            assert body["result"]["text"] == "123"
    [call] = api.sent(CHAT)
    assert (call.method, call.content_type) == ("sendMessage", "application/json")
    assert call.params["reply_markup"] == {"inline_keyboard": []}


async def test_raw_http_multipart_body(api: BotApiStandin) -> None:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("chat_id", str(CHAT))
    form.add_field("text", "42")
    form.add_field("reply_markup", '{"inline_keyboard": [[{"text": "OK", "callback_data": "ok"}]]}')
    form.add_field("attachment", b"%PDF-1.4", filename="a.pdf", content_type="application/pdf")
    async with aiohttp.ClientSession() as http, http.post(api.method_url("sendMessage"), data=form) as resp:
        body = await resp.json()
    assert body["ok"] is True
    assert body["result"]["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "ok"
    [call] = api.sent(CHAT)
    assert call.content_type == "multipart/form-data"
    assert (call.params["chat_id"], call.text) == (CHAT, "42")
    assert call.params["attachment"] == UploadedFile("a.pdf", "application/pdf", b"%PDF-1.4")


async def test_raw_http_fault_as_html_page(api: BotApiStandin) -> None:
    api.fail_next("getMe", 502, as_html=True)
    async with aiohttp.ClientSession() as http, http.post(api.method_url("getMe")) as resp:
        assert resp.status == 502
        assert resp.content_type == "text/html"
        assert "502 Bad Gateway" in await resp.text()


# ---------------------------------------------------------------------- aiogram


async def test_aiogram_get_me(api: BotApiStandin, aiobot: AiogramBot) -> None:
    me = await aiobot.get_me()
    assert (me.id, me.is_bot, me.username) == (api.bot_id, True, api.bot_username)


async def test_aiogram_send_message_with_inline_keyboard(api: BotApiStandin, aiobot: AiogramBot) -> None:
    message = await aiobot.send_message(
        CHAT, "<b>Здравствуйте!</b> Чем помочь?", parse_mode="HTML", reply_markup=keyboard()
    )
    assert message.text == "Здравствуйте! Чем помочь?"
    assert message.chat.id == CHAT
    assert message.chat.type == "private"
    assert message.from_user is not None
    assert message.from_user.id == api.bot_id
    assert isinstance(message.reply_markup, InlineKeyboardMarkup)
    assert message.reply_markup.inline_keyboard[0][1].callback_data == "no"
    [call] = api.sent(CHAT)
    assert call.method == "sendMessage"
    # aiohttp's FormData, which aiogram fills, goes multipart only when a file is attached.
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.params["chat_id"] == CHAT
    assert call.params["parse_mode"] == "HTML"
    assert call.params["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Да", "callback_data": "yes"}, {"text": "Нет", "callback_data": "no"}],
        ]
    }
    assert call.result["message_id"] == message.message_id


async def test_aiogram_long_poll_returns_enqueued_message(api: BotApiStandin, aiobot: AiogramBot) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(aiobot.get_updates(timeout=10))
    await asyncio.sleep(0.2)
    assert not poll.done(), "the long poll must wait while there are no updates"
    queued = api.add_message(CHAT, "Привет, есть вопрос")
    updates = await asyncio.wait_for(poll, 3)
    assert loop.time() - started < 3
    [update] = updates
    assert update.update_id == queued["update_id"]
    assert update.message is not None
    assert update.message.text == "Привет, есть вопрос"
    assert update.message.chat.type == "private"
    assert update.message.from_user is not None
    assert update.message.from_user.id == CHAT


async def test_stop_answers_pending_long_poll(api: BotApiStandin, aiobot: AiogramBot) -> None:
    poll = asyncio.create_task(aiobot.get_updates(timeout=30))
    await asyncio.sleep(0.1)
    await asyncio.wait_for(api.stop(), 3)
    assert await asyncio.wait_for(poll, 1) == []


async def test_aiogram_long_poll_times_out_empty(aiobot: AiogramBot) -> None:
    assert await aiobot.get_updates(timeout=1) == []


async def test_aiogram_offset_confirms_updates(api: BotApiStandin, aiobot: AiogramBot) -> None:
    first = api.add_message(CHAT, "один")
    second = api.add_message(CHAT, "два")
    updates = await aiobot.get_updates()
    assert [u.update_id for u in updates] == [first["update_id"], second["update_id"]]
    # Without an offset nothing is confirmed, so the same updates come again.
    assert [u.update_id for u in await aiobot.get_updates()] == [u.update_id for u in updates]
    assert await aiobot.get_updates(offset=second["update_id"] + 1) == []
    assert api.pending_updates == []
    third = api.add_message(CHAT, "три")
    [update] = await aiobot.get_updates(offset=second["update_id"] + 1, limit=10)
    assert update.update_id == third["update_id"]


async def test_aiogram_retry_after(api: BotApiStandin, aiobot: AiogramBot) -> None:
    api.fail_next("sendMessage", 429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as caught:
        await aiobot.send_message(CHAT, "первая попытка")
    assert caught.value.retry_after == 3
    await aiobot.send_message(CHAT, "вторая попытка")
    assert [call.status for call in api.calls if call.method == "sendMessage"] == [429, 200]
    assert api.sent_texts(CHAT) == ["вторая попытка"]


async def test_aiogram_server_errors(api: BotApiStandin, aiobot: AiogramBot) -> None:
    api.fail_next("sendMessage", 500, times=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await aiobot.send_message(CHAT, "текст")
    api.fail_next(None, 502)
    with pytest.raises(TelegramServerError, match="Bad Gateway"):
        await aiobot.get_me()
    await aiobot.send_message(CHAT, "текст")
    assert len(api.sent(CHAT)) == 1


async def test_aiogram_unknown_token(api: BotApiStandin) -> None:
    async with aiogram_bot(api, token="987654:not-the-token") as bot:
        with pytest.raises(TelegramUnauthorizedError):
            await bot.get_me()


async def test_aiogram_callback_answer_and_edit(api: BotApiStandin, aiobot: AiogramBot) -> None:
    sent = await aiobot.send_message(CHAT, "Подтвердите заказ", reply_markup=keyboard())
    api.press_button(CHAT, "Да")
    [update] = await aiobot.get_updates()
    query = update.callback_query
    assert query is not None
    assert query.data == "yes"
    assert isinstance(query.message, Message)
    assert query.message.message_id == sent.message_id
    assert await aiobot.answer_callback_query(query.id, text="Принято")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await aiobot.answer_callback_query(query.id)
    edited = await aiobot.edit_message_text("Заказ подтверждён", chat_id=CHAT, message_id=sent.message_id)
    assert isinstance(edited, Message)
    assert edited.text == "Заказ подтверждён"
    assert edited.reply_markup is None, "editMessageText without reply_markup drops the keyboard"
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await aiobot.edit_message_text("Заказ подтверждён", chat_id=CHAT, message_id=sent.message_id)
    assert [call.method for call in api.sent(CHAT)] == [
        "sendMessage",
        "answerCallbackQuery",
        "editMessageText",
    ]


async def test_aiogram_chat_action_and_blocked_chat(api: BotApiStandin, aiobot: AiogramBot) -> None:
    assert await aiobot.send_chat_action(CHAT, "typing")
    api.block_chat(CHAT)
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await aiobot.send_message(CHAT, "вы здесь?")
    assert [call.method for call in api.sent(CHAT)] == ["sendChatAction"]


async def test_aiogram_formatting_mistakes_are_rejected(api: BotApiStandin, aiobot: AiogramBot) -> None:
    with pytest.raises(TelegramBadRequest, match="reserved and must be escaped"):
        await aiobot.send_message(CHAT, "Цена 10.5!", parse_mode="MarkdownV2")
    escaped = await aiobot.send_message(CHAT, r"*Цена* 10\.5\!", parse_mode="MarkdownV2")
    assert escaped.text == "Цена 10.5!"
    with pytest.raises(TelegramBadRequest, match='Unsupported start tag "foo"'):
        await aiobot.send_message(CHAT, "a <foo>b</foo>", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="Can't find end tag"):
        await aiobot.send_message(CHAT, "<b>жирный", parse_mode="HTML")
    long_data = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="x", callback_data="x" * 65)]]
    )
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await aiobot.send_message(CHAT, "кнопка", reply_markup=long_data)
    assert api.sent_texts(CHAT) == ["Цена 10.5!"]


async def test_aiogram_duplicate_delivery(api: BotApiStandin, aiobot: AiogramBot) -> None:
    api.duplicate_next_updates(1)
    queued = api.add_message(CHAT, "дубль")
    next_offset = queued["update_id"] + 1
    [first] = await aiobot.get_updates()
    [again] = await aiobot.get_updates(offset=next_offset)
    assert first.update_id == again.update_id == queued["update_id"]
    assert await aiobot.get_updates(offset=next_offset, timeout=0) == []


async def test_aiogram_second_poller_gets_conflict(api: BotApiStandin, aiobot: AiogramBot) -> None:
    older = asyncio.create_task(aiobot.get_updates(timeout=10))
    await asyncio.sleep(0.1)
    assert await aiobot.get_updates() == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(older, 2)


async def test_flood_limit_and_send_times(api: BotApiStandin, aiobot: AiogramBot) -> None:
    api.set_flood_limit(1, per_seconds=0.3, retry_after=1)
    await aiobot.send_message(CHAT, "раз")
    with pytest.raises(TelegramRetryAfter):
        await aiobot.send_message(CHAT, "два")
    await asyncio.sleep(0.35)
    await aiobot.send_message(CHAT, "три")
    first, second = api.send_times(CHAT)
    assert second - first >= 0.3


async def test_latency(api: BotApiStandin, aiobot: AiogramBot) -> None:
    api.set_latency(0.2, "getMe")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await aiobot.get_me()
    assert loop.time() - started >= 0.2


async def test_message_kinds_parse_in_both_libraries(
    api: BotApiStandin, aiobot: AiogramBot, ptbbot: telegram.Bot
) -> None:
    api.set_user(CHAT, "Анна", username="anna_k")
    api.add_start(CHAT, "promo_42")
    api.add_contact(CHAT, "+79991234567")
    api.add_sticker(CHAT, "😀")
    api.add_photo(CHAT, caption="вот фото")
    api.add_voice(CHAT, duration=7)
    api.add_document(CHAT, "договор.pdf")
    plain = api.add_message(CHAT, "опечатка")
    api.add_edited_message(CHAT, plain["message"]["message_id"], "исправлено")

    updates = await aiobot.get_updates()
    messages = [u.message for u in updates if u.message is not None]
    start, contact, sticker, photo, voice, document, _ = messages
    assert start.text == "/start promo_42"
    assert start.entities is not None
    assert start.entities[0].type == "bot_command"
    assert start.from_user is not None
    assert (start.from_user.first_name, start.from_user.username) == ("Анна", "anna_k")
    assert contact.contact is not None
    assert contact.contact.phone_number == "+79991234567"
    assert contact.contact.user_id == CHAT
    assert sticker.sticker is not None
    assert sticker.sticker.emoji == "😀"
    assert photo.photo is not None
    assert photo.caption == "вот фото"
    assert photo.photo[-1].width == 1280
    assert voice.voice is not None
    assert voice.voice.duration == 7
    assert document.document is not None
    assert document.document.file_name == "договор.pdf"
    assert updates[-1].edited_message is not None
    assert updates[-1].edited_message.text == "исправлено"

    # The same JSON must also satisfy python-telegram-bot's parser.
    ptb_updates = await ptbbot.get_updates()
    assert [u.update_id for u in ptb_updates] == [u.update_id for u in updates]
    ptb_start = ptb_updates[0].message
    assert ptb_start is not None
    assert ptb_start.entities[0].type == telegram.MessageEntity.BOT_COMMAND
    assert ptb_updates[1].message is not None
    assert ptb_updates[1].message.contact is not None
    assert ptb_updates[4].message is not None
    assert ptb_updates[4].message.voice is not None
    assert ptb_updates[-1].edited_message is not None


async def test_aiogram_dispatcher_polling_round_trip(api: BotApiStandin, aiobot: AiogramBot) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> None:
        await message.answer(f"эхо: {message.text}")

    polling = asyncio.create_task(
        dispatcher.start_polling(aiobot, handle_signals=False, close_bot_session=False, polling_timeout=1)
    )
    try:
        api.add_message(CHAT, "алло")
        [call] = await api.wait_for_sent(1, chat_id=CHAT)
        assert call.text == "эхо: алло"
        await api.wait_until_consumed()
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 5)


# ---------------------------------------------------------------------- python-telegram-bot


async def test_ptb_get_me(api: BotApiStandin, ptbbot: telegram.Bot) -> None:
    me = await ptbbot.get_me()
    assert (me.id, me.is_bot, me.username) == (api.bot_id, True, api.bot_username)
    assert ptbbot.base_url == f"{api.base_url}/bot{api.token}"


async def test_ptb_send_message(api: BotApiStandin, ptbbot: telegram.Bot) -> None:
    markup = telegram.InlineKeyboardMarkup([[telegram.InlineKeyboardButton("Да", callback_data="yes")]])
    message = await ptbbot.send_message(CHAT, "Добрый день", reply_markup=markup)
    assert message.text == "Добрый день"
    assert message.chat.id == CHAT
    assert message.from_user is not None
    assert message.from_user.id == api.bot_id
    [call] = api.sent(CHAT)
    assert call.content_type == "application/x-www-form-urlencoded"
    assert call.params["chat_id"] == CHAT
    assert call.params["reply_markup"] == {"inline_keyboard": [[{"text": "Да", "callback_data": "yes"}]]}


async def test_ptb_get_updates_long_poll(api: BotApiStandin, ptbbot: telegram.Bot) -> None:
    poll = asyncio.create_task(ptbbot.get_updates(timeout=dt.timedelta(seconds=10)))
    await asyncio.sleep(0.2)
    assert not poll.done()
    api.add_message(CHAT, "вопрос")
    [update] = await asyncio.wait_for(poll, 3)
    assert update.message is not None
    assert update.message.text == "вопрос"
    assert update.message.chat.type == telegram.constants.ChatType.PRIVATE
    confirmed = await ptbbot.get_updates(offset=update.update_id + 1)
    assert confirmed == ()


async def test_ptb_retry_after(api: BotApiStandin, ptbbot: telegram.Bot) -> None:
    api.fail_next("sendMessage", 429, retry_after=2)
    with pytest.raises(RetryAfter) as caught:
        await ptbbot.send_message(CHAT, "текст")
    assert caught.value.retry_after == dt.timedelta(seconds=2)
    api.fail_next("sendMessage", 500)
    with pytest.raises(NetworkError):
        await ptbbot.send_message(CHAT, "текст")
    assert api.sent(CHAT) == []


async def test_ptb_application_polling_round_trip(
    api: BotApiStandin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    app = (
        Application.builder()
        .token(api.token)
        .base_url(api.ptb_base_url)
        .base_file_url(api.ptb_base_file_url)
        .build()
    )

    async def start(update: telegram.Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"start {' '.join(context.args or [])}")

    app.add_handler(CommandHandler("start", start))
    async with app:
        assert app.updater is not None
        await app.start()
        await app.updater.start_polling(poll_interval=0.0, timeout=dt.timedelta(seconds=1))
        try:
            api.add_start(CHAT, "promo_42")
            [call] = await api.wait_for_sent(1, chat_id=CHAT)
            assert call.text == "start promo_42"
        finally:
            await app.updater.stop()
            await app.stop()
    # PTB's updater removes any webhook before polling.
    assert "deleteWebhook" in [call.method for call in api.calls]


# ---------------------------------------------------------------------- webhooks


async def test_webhook_delivery_with_secret(
    api: BotApiStandin, aiobot: AiogramBot, receiver: WebhookReceiver
) -> None:
    assert await aiobot.set_webhook(receiver.url, secret_token="s3cr3t-Token_1")
    info = await aiobot.get_webhook_info()
    assert info.url == receiver.url
    queued = api.add_message(CHAT, "через вебхук")
    await receiver.wait(1)
    assert receiver.secrets == ["s3cr3t-Token_1"]
    assert receiver.updates == [queued]
    await api.wait_until_consumed()
    assert (await aiobot.get_webhook_info()).pending_update_count == 0
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await aiobot.get_updates()


async def test_webhook_retries_non_2xx(
    api: BotApiStandin, aiobot: AiogramBot, receiver: WebhookReceiver
) -> None:
    receiver.statuses = [500, 502]
    await aiobot.set_webhook(receiver.url)
    queued = api.add_message(CHAT, "повтор")
    await receiver.wait(3)
    assert [update["update_id"] for update in receiver.updates] == [queued["update_id"]] * 3
    assert receiver.secrets == [None, None, None]
    await api.wait_until_consumed()
    assert [(d.attempt, d.status) for d in api.webhook_deliveries] == [(1, 500), (2, 502), (3, 200)]
    info = await aiobot.get_webhook_info()
    assert info.last_error_message is not None
    assert "502" in info.last_error_message
    assert api.webhook_failed == []


async def test_webhook_gives_up_then_goes_on(
    api: BotApiStandin, aiobot: AiogramBot, receiver: WebhookReceiver
) -> None:
    receiver.statuses = [500, 500, 500]
    await aiobot.set_webhook(receiver.url)
    lost = api.add_message(CHAT, "потеряется")
    kept = api.add_message(CHAT, "дойдёт")
    await receiver.wait(4)
    await api.wait_until_consumed()
    assert api.webhook_failed == [lost]
    assert receiver.updates[-1] == kept


async def test_webhook_reply_method_is_executed(
    api: BotApiStandin, aiobot: AiogramBot, receiver: WebhookReceiver
) -> None:
    receiver.reply = {"method": "sendMessage", "chat_id": CHAT, "text": "ответ в теле"}
    await aiobot.set_webhook(receiver.url)
    api.add_message(CHAT, "вопрос")
    [call] = await api.wait_for_sent(1, chat_id=CHAT)
    assert (call.text, call.via) == ("ответ в теле", "webhook-reply")


async def test_aiogram_webhook_handler_reply_in_response(api: BotApiStandin, aiobot: AiogramBot) -> None:
    # aiogram answers a webhook with a multipart method call when a handler returns one.
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def reply(message: Message) -> SendMessage:
        return message.answer("сразу в ответе")

    app = web.Application()
    SimpleRequestHandler(dispatcher, aiobot, handle_in_background=False, secret_token="hook-secret").register(
        app, path="/aiogram"
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = free_loopback_socket()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/aiogram"
    await web.SockSite(runner, sock).start()
    try:
        await aiobot.set_webhook(url, secret_token="hook-secret")
        api.add_message(CHAT, "привет")
        [call] = await api.wait_for_sent(1, chat_id=CHAT)
        assert (call.text, call.via, call.params["chat_id"]) == ("сразу в ответе", "webhook-reply", CHAT)
        assert [d.status for d in api.webhook_deliveries] == [200]
    finally:
        await aiobot.delete_webhook()
        await runner.cleanup()


async def test_delete_webhook_drops_pending(api: BotApiStandin, aiobot: AiogramBot) -> None:
    api.add_message(CHAT, "старое")
    assert await aiobot.delete_webhook(drop_pending_updates=True)
    assert await aiobot.get_updates() == []


async def test_set_webhook_refuses_non_loopback(aiobot: AiogramBot) -> None:
    with pytest.raises(TelegramBadRequest, match="loopback"):
        await aiobot.set_webhook("https://example.com/hook")
