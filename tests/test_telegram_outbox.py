"""Operators' messages reaching Telegram: the outbox drained by the gateway through the Bot API stand-in.

A client asks for a person in Telegram, an operator takes the conversation and answers in the console
(OperatorDesk), and the gateway sends what was stored as "pending" through aiogram's (or
python-telegram-bot's) own HTTP client to the stand-in on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiogram import Bot
from telegram.ext import Application

from bot.channels.limits import RateLimits
from bot.telegram.aiogram_io import AiogramOutbound
from bot.telegram.gateway import TelegramGateway
from bot.telegram.ptb_io import PtbOutbound, tonebot_handler
from bot.telegram.runner import TelegramSettings, make_bot, make_dispatcher, run_polling
from common.messages import IncomingMessage
from personas.guides import fill
from storage import connect
from storage.desk import DeskStore
from storage.tables import write_lock_for
from tests.support.botapi import BotApiStandin
from tests.support.webserver import add_operator, always_open, web_runtime
from wiring.runtime import Runtime

pytestmark = pytest.mark.anyio
CHAT = 7001
OTHER_CHAT = 7002
FAST = RateLimits(per_chat_interval=0.0, global_per_second=10_000)
OPERATOR, OPERATOR_NAME = "anna", "Анна"
ASK_FOR_A_PERSON = "позовите оператора"
LIBRARIES = ["aiogram", "python-telegram-bot"]
T = TypeVar("T")


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path) -> Runtime:
    """The bot and the operators' desk over one SQLite file, with teams working around the clock."""
    built = web_runtime(tmp_path, always_open(content_copy))
    add_operator(built, OPERATOR, "correct horse battery", OPERATOR_NAME)
    return built


# --- Telegram clients pointed at the stand-in ------------------------------------------------------


@contextlib.asynccontextmanager
async def telegram_bot(library: str, api: BotApiStandin, runtime: Runtime) -> AsyncIterator[TelegramGateway]:
    """A bot polling the stand-in with the library's own client; yields the gateway it feeds."""
    if library == "aiogram":
        bot = make_bot(TelegramSettings(api.token, api.base_url))
        dispatcher = make_dispatcher(runtime.service, bot, FAST)
        gateway: TelegramGateway = dispatcher["tonebot_gateway"]
        task = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False, polling_timeout=1))
        try:
            yield gateway
            await gateway.drain()
        finally:
            await dispatcher.stop_polling()
            await asyncio.wait_for(task, 10)
            await bot.session.close()
        return
    application = (
        Application.builder()
        .token(api.token)
        .base_url(api.ptb_base_url)
        .base_file_url(api.ptb_base_file_url)
        .build()
    )
    gateway = TelegramGateway(runtime.service, PtbOutbound(application.bot), FAST)
    application.add_handler(tonebot_handler(gateway))
    async with application:
        await application.start()
        assert application.updater is not None
        await application.updater.start_polling(poll_interval=0, timeout=1)
        try:
            yield gateway
            await gateway.drain()
        finally:
            await application.updater.stop()
            await application.stop()


@contextlib.asynccontextmanager
async def sending_only(library: str, api: BotApiStandin, runtime: Runtime) -> AsyncIterator[TelegramGateway]:
    """A gateway that only sends (no polling): what drains the outbox in another process."""
    if library == "aiogram":
        bot: Bot = make_bot(TelegramSettings(api.token, api.base_url))
        try:
            yield TelegramGateway(runtime.service, AiogramOutbound(bot), FAST)
        finally:
            await bot.session.close()
        return
    application = (
        Application.builder()
        .token(api.token)
        .base_url(api.ptb_base_url)
        .base_file_url(api.ptb_base_file_url)
        .build()
    )
    async with application:
        yield TelegramGateway(runtime.service, PtbOutbound(application.bot), FAST)


# --- helpers -------------------------------------------------------------------------------------


async def eventually(check: Callable[[], T], timeout: float = 5.0, what: str = "the condition") -> T:
    """Poll `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.02)


def conversation_of(runtime: Runtime, chat: int) -> int:
    """The id of the (latest) Telegram conversation of a chat."""
    rows = runtime.desk_store.chat_messages("telegram", str(chat), 0)
    assert rows, f"nothing stored for chat {chat}"
    return int(rows[-1].conversation_id)


def outgoing(runtime: Runtime, conversation_id: int) -> list[Any]:
    """The conversation's outgoing messages, oldest first."""
    return [row for row in runtime.store.messages(conversation_id) if row.direction == "out"]


def outbox(runtime: Runtime, conversation_id: int) -> list[Any]:
    """What the console stored for an adapter to deliver (operator replies and desk announcements)."""
    return [row for row in outgoing(runtime, conversation_id) if row.delivery != ""]


def phrasings(runtime: Runtime, conversation_id: int, moment: str, **values: str) -> set[str]:
    """Every way the guides word a moment for the conversation's persona."""
    view = runtime.desk_store.conversation(conversation_id)
    assert view is not None
    guides = runtime.content.get().guides
    return {fill(template, values) for template in guides.variants(moment, view.state.persona)}


def send_calls(api: BotApiStandin, chat: int) -> list[Any]:
    """Every sendMessage the stand-in received for a chat, accepted or not."""
    return [call for call in api.calls if call.method == "sendMessage" and call.chat_id == chat]


async def hand_over(api: BotApiStandin, runtime: Runtime, gateway: TelegramGateway, chat: int = CHAT) -> int:
    """The client asks for a person through the stand-in; the bot answers; the conversation's id."""
    before = len(api.sent_texts(chat))
    api.add_message(chat, ASK_FOR_A_PERSON)
    await api.wait_for_sent(before + 1, 10, chat_id=chat, method="sendMessage")
    await gateway.drain()
    conversation_id = conversation_of(runtime, chat)
    view = runtime.desk_store.conversation(conversation_id)
    assert view is not None and view.handoff is not None and view.handoff.status == "waiting"
    answer = api.sent_texts(chat)[-1]
    assert any(text in answer for text in phrasings(runtime, conversation_id, "handoff_wait", wait="2 минут"))
    return conversation_id


def hand_over_quietly(runtime: Runtime, chat: int) -> int:
    """Set up a handed-off Telegram conversation straight through the service (its replies unsent)."""
    message = IncomingMessage(
        "telegram", str(chat), str(chat), ASK_FOR_A_PERSON, datetime.now(UTC), f"msg:{chat}:1"
    )
    runtime.service.handle(message)
    return conversation_of(runtime, chat)


# --- 1. an operator's reply reaches the Telegram chat, once ----------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
async def test_operator_take_and_reply_are_delivered_once(
    api: BotApiStandin, runtime: Runtime, library: str
) -> None:
    async with telegram_bot(library, api, runtime) as gateway:
        conversation_id = await hand_over(api, runtime, gateway)
        runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
        runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, "Здравствуйте! Проверяю вашу линию.")
        pending = outbox(runtime, conversation_id)
        assert [row.delivery for row in pending] == ["pending", "pending"]
        assert [row.author for row in pending] == ["bot", OPERATOR]
        before = len(api.sent_texts(CHAT))

        assert await gateway.deliver_pending(runtime.desk_store) == 2

        delivered = api.sent_texts(CHAT)[before:]
        assert delivered[0] in phrasings(runtime, conversation_id, "operator_joined", operator=OPERATOR_NAME)
        assert delivered[1] == "Здравствуйте! Проверяю вашу линию."
        assert len(delivered) == 2
        assert [row.delivery for row in outbox(runtime, conversation_id)] == ["sent", "sent"]

        assert await gateway.deliver_pending(runtime.desk_store) == 0
        assert len(api.sent_texts(CHAT)) == before + 2
        assert len(send_calls(api, CHAT)) == before + 2


async def test_run_polling_with_an_outbox_delivers_operator_messages(
    api: BotApiStandin, runtime: Runtime
) -> None:
    settings = TelegramSettings(api.token, api.base_url)
    task = asyncio.create_task(
        run_polling(runtime.service, settings, runtime.desk_store, handle_signals=False)
    )
    try:
        api.add_message(CHAT, ASK_FOR_A_PERSON)
        await api.wait_for_sent(1, 10, chat_id=CHAT, method="sendMessage")
        queue = await eventually(lambda: runtime.desk_store.queue(datetime.now(UTC)), what="the handoff")
        conversation_id = queue[0].conversation_id
        runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
        runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, "Вижу обрыв на линии, уже чиним.")
        await api.wait_for_sent(3, 10, chat_id=CHAT, method="sendMessage")
        await eventually(
            lambda: all(row.delivery == "sent" for row in outbox(runtime, conversation_id)),
            what="marking the outbox sent",
        )
        await asyncio.sleep(0.6)  # another outbox poll: nothing is sent again
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # aiogram's start_polling, when cancelled, leaves its per-bot polling task running: end it too.
        leftovers = [t for t in asyncio.all_tasks() if "Dispatcher._polling" in repr(t.get_coro())]
        for leftover in leftovers:
            leftover.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
    assert api.sent_texts(CHAT)[-1] == "Вижу обрыв на линии, уже чиним."
    assert len(api.sent_texts(CHAT)) == 3


# --- 2. the bot keeps quiet while a person has the conversation ------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
async def test_bot_is_silent_while_the_operator_has_the_conversation(
    api: BotApiStandin, runtime: Runtime, library: str
) -> None:
    async with telegram_bot(library, api, runtime) as gateway:
        conversation_id = await hand_over(api, runtime, gateway)
        runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
        await gateway.deliver_pending(runtime.desk_store)
        sent_before = len(send_calls(api, CHAT))

        api.add_message(CHAT, "интернет так и не работает, что мне делать?")
        await eventually(
            lambda: any(
                row.direction == "in" and "что мне делать" in row.text
                for row in runtime.store.messages(conversation_id)
            ),
            what="storing the client's message",
        )
        await api.wait_until_consumed(5)
        await gateway.drain()
        await asyncio.sleep(0.4)  # past the "typing…" delay, had there been a reply to work on

        assert len(send_calls(api, CHAT)) == sent_before
        assert not api.sent(CHAT, "sendChatAction")
        rows = runtime.store.messages(conversation_id)
        assert rows[-1].direction == "in" and rows[-1].text == "интернет так и не работает, что мне делать?"
        view = runtime.desk_store.conversation(conversation_id)
        assert view is not None and view.conversation.status == "with_operator"
        assert view.handoff is not None and view.handoff.status == "taken"
        assert await gateway.deliver_pending(runtime.desk_store) == 0


# --- 3. closing asks for a rating; a low one flags a follow-up --------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
async def test_close_asks_for_a_rating_and_a_low_one_flags_a_follow_up(
    api: BotApiStandin, runtime: Runtime, library: str
) -> None:
    async with telegram_bot(library, api, runtime) as gateway:
        conversation_id = await hand_over(api, runtime, gateway)
        runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
        runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, "Перезагрузили порт, проверьте.")
        runtime.desk.close(conversation_id, OPERATOR)
        assert await gateway.deliver_pending(runtime.desk_store) == 3

        request = api.sent(CHAT, "sendMessage")[-1]
        assert request.text in phrasings(runtime, conversation_id, "rating_request")
        keyboard = request.params["reply_markup"]["inline_keyboard"]
        buttons = [button for row in keyboard for button in row]
        assert [b["text"] for b in buttons] == ["1", "2", "3", "4", "5"]
        assert [b["callback_data"] for b in buttons] == [f"rate:{n}" for n in range(1, 6)]
        assert [row.delivery for row in outbox(runtime, conversation_id)] == ["sent"] * 3

        sent_before = len(api.sent_texts(CHAT))
        api.press_button(CHAT, "2")
        await api.wait_for_sent(1, 10, chat_id=CHAT, method="answerCallbackQuery")
        await api.wait_for_sent(sent_before + 1, 10, chat_id=CHAT, method="sendMessage")
        await gateway.drain()

        assert api.sent_texts(CHAT)[-1] in phrasings(runtime, conversation_id, "rating_bad")
        view = runtime.desk_store.conversation(conversation_id)
        assert view is not None and view.handoff is not None
        assert view.handoff.status == "closed"
        assert view.handoff.rating == 2
        assert view.handoff.follow_up is True
        # The bot's answer went out at once; it is not in the outbox to be sent a second time.
        assert await gateway.deliver_pending(runtime.desk_store) == 0
        assert len(api.sent_texts(CHAT)) == sent_before + 1


# --- 4. two drainers, one outbox ----------------------------------------------------------------


def second_process_store(runtime: Runtime) -> DeskStore:
    """The same database opened again, with its own write lock, as another process would open it."""
    engine = connect(runtime.store.engine.url.render_as_string(hide_password=False))
    return DeskStore(engine, write_lock_for(engine))


def fill_outbox(runtime: Runtime, chats: range, replies_per_chat: int) -> list[str]:
    """Hand over, take and answer each chat; the operator texts, in the order they were written."""
    written = []
    for chat in chats:
        conversation_id = hand_over_quietly(runtime, chat)
        runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
        for n in range(replies_per_chat):
            text = f"Чат {chat}, ответ {n + 1}."
            runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, text)
            written.append(text)
    return written


def deliveries(runtime: Runtime, chats: range) -> Counter[str]:
    """How many outbox messages of these chats are in each delivery state."""
    found: Counter[str] = Counter()
    for chat in chats:
        found.update(row.delivery for row in outbox(runtime, conversation_of(runtime, chat)))
    return found


@pytest.mark.parametrize("second", LIBRARIES)
async def test_two_gateways_draining_one_outbox_send_each_message_once(
    api: BotApiStandin, runtime: Runtime, second: str
) -> None:
    chats = range(8001, 8006)
    # More than one claim's worth (100), so both drainers get a share.
    written = fill_outbox(runtime, chats, 40)
    total = len(written) + len(chats)  # each chat also hears that the operator joined
    other_store = second_process_store(runtime)
    async with sending_only("aiogram", api, runtime) as first, sending_only(second, api, runtime) as other:
        shares = [0, 0]
        for _ in range(5):
            handled = await asyncio.gather(
                first.deliver_pending(runtime.desk_store), other.deliver_pending(other_store)
            )
            shares = [a + b for a, b in zip(shares, handled, strict=True)]
            if handled == [0, 0]:
                break
        assert sum(shares) == total
        assert all(count > 0 for count in shares), shares

    sent = Counter(text for chat in chats for text in api.sent_texts(chat))
    assert all(sent[text] == 1 for text in written), [t for t in written if sent[t] != 1]
    assert sum(len(send_calls(api, chat)) for chat in chats) == total
    assert deliveries(runtime, chats) == Counter({"sent": total})
    # A chat is drained by one worker at a time, so its messages arrive in the order they were written.
    for chat in chats:
        texts = [text for text in api.sent_texts(chat) if text in set(written)]
        assert texts == [text for text in written if text in set(texts)], chat


async def test_a_second_drainer_starting_does_not_resend_what_the_first_is_sending(
    api: BotApiStandin, runtime: Runtime
) -> None:
    """Two bot processes over one database, the second started while the first is mid-batch.

    A starting drainer puts back only stale claims (a dead worker's), never those a live drainer is
    sending right now; otherwise both would send them.
    """
    chats = range(8101, 8103)
    written = fill_outbox(runtime, chats, 10)
    total = len(written) + len(chats)
    api.set_latency(0.03, "sendMessage")  # the first drainer's batch takes a while to send
    other_store = second_process_store(runtime)
    async with sending_only("aiogram", api, runtime) as first, sending_only("aiogram", api, runtime) as other:
        first_task = asyncio.create_task(first.deliver_outbox(runtime.desk_store, poll_s=0.05))
        await api.wait_for_sent(3, 10, method="sendMessage")
        other_task = asyncio.create_task(other.deliver_outbox(other_store, poll_s=0.05))
        try:
            await eventually(
                lambda: deliveries(runtime, chats) == Counter({"sent": total}), 10, "delivering the outbox"
            )
            await asyncio.sleep(0.3)
        finally:
            for task in (first_task, other_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    sent = Counter(text for chat in chats for text in api.sent_texts(chat))
    twice = sorted(text for text in written if sent[text] != 1)
    assert not twice, f"sent more than once: {twice}"
    assert sum(len(send_calls(api, chat)) for chat in chats) == total


# --- 5. a drainer died after claiming ------------------------------------------------------------


async def test_messages_claimed_by_a_dead_drainer_are_sent_once_after_restart(
    api: BotApiStandin, runtime: Runtime
) -> None:
    conversation_id = hand_over_quietly(runtime, CHAT)
    runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
    runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, "Сейчас посмотрю, минуту.")
    # A drainer claimed the messages and died before sending them.
    claimed = runtime.desk_store.claim_pending("telegram", datetime.now(UTC) - timedelta(minutes=10))
    assert [item.reply.text for item in claimed][-1] == "Сейчас посмотрю, минуту."
    assert [row.delivery for row in outbox(runtime, conversation_id)] == ["sending", "sending"]

    async with sending_only("aiogram", api, runtime) as gateway:
        # Claimed rows are someone else's: a plain pass skips them.
        assert await gateway.deliver_pending(runtime.desk_store) == 0
        assert not send_calls(api, CHAT)

        task = asyncio.create_task(gateway.deliver_outbox(runtime.desk_store, poll_s=0.05))
        try:
            await api.wait_for_sent(2, 5, chat_id=CHAT, method="sendMessage")
            await eventually(
                lambda: [row.delivery for row in outbox(runtime, conversation_id)] == ["sent", "sent"],
                what="marking the outbox sent",
            )
            await asyncio.sleep(0.3)  # several more polls
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert api.sent_texts(CHAT)[-1] == "Сейчас посмотрю, минуту."
    assert len(send_calls(api, CHAT)) == 2


# --- 6. a chat that blocked the bot -------------------------------------------------------------


@pytest.mark.parametrize("library", LIBRARIES)
async def test_a_chat_that_blocked_the_bot_is_marked_failed_not_retried(
    api: BotApiStandin, runtime: Runtime, library: str
) -> None:
    blocked = hand_over_quietly(runtime, CHAT)
    fine = hand_over_quietly(runtime, OTHER_CHAT)
    for conversation_id in (blocked, fine):
        runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
        runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, "Ваш вопрос решён?")
    api.block_chat(CHAT)

    async with sending_only(library, api, runtime) as gateway:
        assert await gateway.deliver_pending(runtime.desk_store) == 4
        refused = set(gateway.not_allowed)
        task = asyncio.create_task(gateway.deliver_outbox(runtime.desk_store, poll_s=0.05))
        try:
            await asyncio.sleep(0.4)  # several polls: a failed message is not picked up again
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert [row.delivery for row in outbox(runtime, blocked)] == ["failed", "failed"]
    attempts = send_calls(api, CHAT)
    # The first refusal marks the chat: the second message is failed without asking Telegram again.
    assert len(attempts) == 1 and attempts[0].status == 403
    assert refused == {str(CHAT)}
    assert [row.delivery for row in outbox(runtime, fine)] == ["sent", "sent"]
    assert api.sent_texts(OTHER_CHAT)[-1] == "Ваш вопрос решён?"
