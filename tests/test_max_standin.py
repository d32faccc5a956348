"""tonebot over MAX: maxapi's own HTTP client against the local MAX Bot API stand-in.

Every test starts the stand-in on 127.0.0.1 itself; nothing reaches the real MAX.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from maxapi.connection.base import BaseConnection

from bot.channels.limits import RateLimits
from bot.channels.outbound import Rejected, TemporaryFailure
from bot.channels.webhook import webhook_app
from bot.max.inbound import UPDATE_TYPES, incoming, parse_update
from bot.max.outbound import MAX_TEXT_LIMIT
from bot.max.runner import make_gateway, run_polling, subscribe_webhook, webhook_reader
from bot.max.settings import DEFAULT_API_BASE, MaxConfigError, MaxSettings
from bot.max.webhook import SECRET_HEADER, WEBHOOK_PATH
from common.messages import AttachmentKind, IncomingMessage, Reply
from dialogs.content import LiveContent
from dialogs.engine import Engine, Turn
from dialogs.service import ConversationService
from personas.guides import fill
from storage import SqlStore, connect
from storage.database import sqlite_url
from storage.desk.base import Outbox
from tests.support.max_api import DEFAULT_TOKEN, MaxApiStandin
from tests.support.webserver import add_operator, always_open, web_runtime
from wiring.runtime import Runtime

pytestmark = pytest.mark.anyio
CHAT = 5001
OTHER_CHAT = 5002
FAST = RateLimits(per_chat_interval=0.0, global_per_second=10_000)
OPERATOR, OPERATOR_NAME = "anna", "Анна"
SECRET = "s3cret-webhook-token"
T = TypeVar("T")


@pytest.fixture
async def api() -> AsyncIterator[MaxApiStandin]:
    """A MAX Bot API stand-in on 127.0.0.1 for the length of one test."""
    async with MaxApiStandin() as standin:
        yield standin


@pytest.fixture
def service(tmp_path: Path, engine: Engine) -> ConversationService:
    return ConversationService(engine, SqlStore(connect(sqlite_url(str(tmp_path / "max.db")))))


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path) -> Runtime:
    """The bot and the operators' desk over one SQLite file, with teams working around the clock."""
    built = web_runtime(tmp_path, always_open(content_copy))
    add_operator(built, OPERATOR, "correct horse battery", OPERATOR_NAME)
    return built


def settings(api: MaxApiStandin, secret: str | None = None) -> MaxSettings:
    return MaxSettings(api.token, api.base_url, secret)


@contextlib.asynccontextmanager
async def polling(
    api: MaxApiStandin,
    service: Any,
    *,
    limits: RateLimits | None = FAST,
    outbox: Outbox | None = None,
    timeout_s: int = 1,
) -> AsyncIterator[asyncio.Task[None]]:
    """tonebot's run_polling against the stand-in; on leaving, stopped (what it fetched is answered)."""
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_polling(
            service,
            settings(api),
            outbox,
            stop=stop,
            limits=limits,
            poll_interval_s=0,
            poll_timeout_s=timeout_s,
        )
    )
    try:
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


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


def texts(api: MaxApiStandin, chat: int = CHAT) -> list[str]:
    return api.sent_texts(chat)


# --- a dialog -----------------------------------------------------------------------------------------


async def test_a_dialog_with_a_deep_link_buttons_and_details(
    api: MaxApiStandin, service: ConversationService
) -> None:
    async with polling(api, service):
        api.add_start(CHAT, "promo_october")
        await api.wait_for_sent(1, 10, chat_id=CHAT, name="send_message")
        assert "Сибирские сети" in texts(api)[0]
        api.add_message(CHAT, "Здравствуйте, не работает интернет")
        await api.wait_for_sent(2, 10, chat_id=CHAT, name="send_message")
        assert "договор" in texts(api)[-1].lower()
        api.add_message(CHAT, "договор 1234567")
        calls = await api.wait_for_sent(3, 10, chat_id=CHAT, name="send_message")
        buttons = [button for row in calls[-1].buttons for button in row]
        assert {b["type"] for b in buttons} == {"callback"}
        assert "Все лампочки горят" in [b["text"] for b in buttons]
        press = api.press_button(CHAT, "Все лампочки горят")
        await api.wait_for_sent(4, 10, chat_id=CHAT, name="send_message")
        answers = await api.wait_for_sent(1, 5, chat_id=CHAT, name="answer")
    assert "1234567" in texts(api)[-1]
    # The press is acknowledged without a notification, and the keyboard's message is left as it was.
    assert answers[0].query["callback_id"] == press["callback"]["callback_id"]
    assert answers[0].body == {}
    polls = [call for call in api.calls if call.name == "updates"]
    assert polls and polls[0].query["types"] == ",".join(UPDATE_TYPES)
    assert all(call.ok for call in api.calls)


class SlowService:
    """A service that thinks for a while, to see "typing…" while it works."""

    def __init__(self, inner: ConversationService, seconds: float = 0.6) -> None:
        self.inner, self.seconds = inner, seconds

    def handle(self, message: IncomingMessage) -> Turn:
        time.sleep(self.seconds)
        return self.inner.handle(message)


async def test_typing_is_shown_while_a_reply_takes_time(
    api: MaxApiStandin, service: ConversationService
) -> None:
    async with polling(api, SlowService(service)):
        api.add_message(CHAT, "не работает интернет")
        await api.wait_for_sent(1, 10, chat_id=CHAT, name="send_message")
    actions = api.sent(CHAT, "action")
    assert actions and actions[0].body == {"action": "typing_on"}
    assert actions[0].at < api.sent(CHAT, "send_message")[0].at


async def test_attachments_are_answered_politely(
    api: MaxApiStandin, service: ConversationService, live_content: LiveContent
) -> None:
    kinds = {
        "image": AttachmentKind.PHOTO,
        "sticker": AttachmentKind.STICKER,
        "audio": AttachmentKind.VOICE,
        "video": AttachmentKind.VIDEO,
        "file": AttachmentKind.DOCUMENT,
        "location": AttachmentKind.LOCATION,
    }
    guides = live_content.get().guides
    async with polling(api, service):
        for chat, (kind, attachment) in enumerate(kinds.items(), start=6000):
            api.add_attachment(chat, kind)
            await api.wait_for_sent(1, 10, chat_id=chat, name="send_message")
            moment = f"attachment.{attachment.value}"
            expected = {fill(t, {}) for persona in guides.guides for t in guides.variants(moment, persona)}
            assert texts(api, chat) == [texts(api, chat)[0]] and texts(api, chat)[0] in expected, kind


async def test_a_shared_contact_is_read_and_vouched_for_only_when_it_is_the_senders(
    api: MaxApiStandin, service: ConversationService
) -> None:
    async with polling(api, service):
        api.add_message(CHAT, "перезвоните мне")
        await api.wait_for_sent(1, 10, chat_id=CHAT, name="send_message")
        api.add_contact(CHAT, "79131234567")
        await api.wait_for_sent(2, 10, chat_id=CHAT, name="send_message")
        api.add_message(CHAT, "завтра после 18")
        await api.wait_for_sent(3, 10, chat_id=CHAT, name="send_message")
    assert "+7 913 123-45-67" in texts(api)[-1]
    # The cards as MAX sends them, read with maxapi's models (no bot polls them any more).
    own, _ = incoming(parse_update(api.add_contact(CHAT, "+79131234567")))
    someone_elses, _ = incoming(parse_update(api.add_contact(OTHER_CHAT, "+79130000000", own=False)))
    assert own is not None and own.contact_phone == "+79131234567" and own.contact_verified
    assert own.attachment is AttachmentKind.CONTACT
    assert someone_elses is not None and not someone_elses.contact_verified


async def test_an_edited_message_is_read_again(api: MaxApiStandin, service: ConversationService) -> None:
    async with polling(api, service):
        api.add_message(CHAT, "перезвоните мне")
        await api.wait_for_sent(1, 10, chat_id=CHAT, name="send_message")
        sent = api.add_message(CHAT, "8 913 123 45 67")
        await api.wait_for_sent(2, 10, chat_id=CHAT, name="send_message")
        api.add_edited_message(CHAT, sent["message"]["body"]["mid"], "8 913 000 11 22")
        await api.wait_for_sent(3, 10, chat_id=CHAT, name="send_message")
    assert "+7 913 000-11-22" in texts(api)[-1]


async def test_odd_updates_are_passed_over_and_the_next_is_answered(
    api: MaxApiStandin, service: ConversationService
) -> None:
    async with polling(api, service):
        api.add_update({"update_type": "message_created", "timestamp": 1})  # no message: MAX's voice bug
        api.add_message(CHAT, "не работает интернет")
        await api.wait_for_sent(1, 10, chat_id=CHAT, name="send_message")
        api.add_message(CHAT, "1234567")
        await api.wait_for_sent(2, 10, chat_id=CHAT, name="send_message")
        # A press on a message deleted since: acknowledged, and there is no chat to answer in.
        api.press_button(CHAT, "Все лампочки горят")
        api.add_callback(CHAT, "choice:router_lights:all_on", message_gone=True)
        await api.wait_for_sent(2, 10, chat_id=CHAT, name="answer")
        await api.wait_until_consumed(5)
    assert len(texts(api)) == 3


# --- an operator takes over ------------------------------------------------------------------------


def conversation_of(runtime: Runtime, chat: int) -> int:
    """The id of the (latest) MAX conversation of a chat."""
    rows = runtime.desk_store.chat_messages("max", str(chat), 0)
    assert rows, f"nothing stored for chat {chat}"
    return int(rows[-1].conversation_id)


def phrasings(runtime: Runtime, conversation_id: int, moment: str, **values: str) -> set[str]:
    """Every way the guides word a moment for the conversation's persona."""
    view = runtime.desk_store.conversation(conversation_id)
    assert view is not None
    guides = runtime.content.get().guides
    return {fill(template, values) for template in guides.variants(moment, view.state.persona)}


def outbox_states(runtime: Runtime, conversation_id: int) -> list[str]:
    """Delivery states of what the console stored for an adapter to send."""
    rows = runtime.store.messages(conversation_id)
    return [row.delivery for row in rows if row.direction == "out" and row.delivery != ""]


async def test_handoff_operator_reply_close_and_rating_through_the_outbox(
    api: MaxApiStandin, runtime: Runtime
) -> None:
    async with polling(api, runtime.service, outbox=runtime.desk_store):
        api.add_start(CHAT)
        api.add_message(CHAT, "позовите оператора")
        await api.wait_for_sent(2, 10, chat_id=CHAT, name="send_message")
        conversation_id = conversation_of(runtime, CHAT)
        assert any(
            t in texts(api)[-1] for t in phrasings(runtime, conversation_id, "handoff_wait", wait="2 минут")
        )

        runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
        runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, "Здравствуйте! Проверяю вашу линию.")
        await api.wait_for_sent(4, 10, chat_id=CHAT, name="send_message")
        joined = phrasings(runtime, conversation_id, "operator_joined", operator=OPERATOR_NAME)
        assert texts(api)[2] in joined and texts(api)[3] == "Здравствуйте! Проверяю вашу линию."

        # While a person has the conversation the bot keeps quiet.
        api.add_message(CHAT, "жду, спасибо")
        await api.wait_until_consumed(5)
        runtime.desk.close(conversation_id, OPERATOR)
        calls = await api.wait_for_sent(5, 10, chat_id=CHAT, name="send_message")
        assert calls[-1].text in phrasings(runtime, conversation_id, "rating_request")
        buttons = [button for row in calls[-1].buttons for button in row]
        assert [(b["text"], b["payload"]) for b in buttons] == [(str(n), f"rate:{n}") for n in range(1, 6)]

        api.press_button(CHAT, "2")
        await api.wait_for_sent(6, 10, chat_id=CHAT, name="send_message")
        await api.wait_for_sent(1, 5, chat_id=CHAT, name="answer")
        await eventually(lambda: set(outbox_states(runtime, conversation_id)) == {"sent"}, what="outbox sent")
        await asyncio.sleep(0.6)  # another outbox poll: nothing is sent again

    assert texts(api)[-1] in phrasings(runtime, conversation_id, "rating_bad")
    assert len(texts(api)) == 6 and texts(api).count("Здравствуйте! Проверяю вашу линию.") == 1
    view = runtime.desk_store.conversation(conversation_id)
    assert view is not None and view.handoff is not None
    assert (view.handoff.status, view.handoff.rating, view.handoff.follow_up) == ("closed", 2, True)


def hand_over_quietly(runtime: Runtime, chat: int) -> int:
    """A handed-off MAX conversation set up straight through the service (its replies unsent)."""
    message = IncomingMessage(
        "max", str(chat), str(chat), "позовите оператора", datetime.now(UTC), f"m{chat}"
    )
    runtime.service.handle(message)
    return conversation_of(runtime, chat)


async def test_a_chat_that_blocked_the_bot_is_marked_failed_not_retried(
    api: MaxApiStandin, runtime: Runtime
) -> None:
    blocked, fine = hand_over_quietly(runtime, CHAT), hand_over_quietly(runtime, OTHER_CHAT)
    for conversation_id in (blocked, fine):
        runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
        runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, "Ваш вопрос решён?")
    api.block_chat(CHAT)
    gateway = make_gateway(runtime.service, settings(api), FAST)
    try:
        assert await gateway.deliver_pending(runtime.desk_store) == 4
        assert await gateway.deliver_pending(runtime.desk_store) == 0
    finally:
        await gateway.close()
    attempts = [call for call in api.calls if call.name == "send_message" and call.chat_id == CHAT]
    # The first refusal marks the chat: the second message fails without asking MAX again.
    assert [call.status for call in attempts] == [403]
    assert gateway.not_allowed == {str(CHAT)}
    assert outbox_states(runtime, blocked) == ["failed", "failed"]
    assert outbox_states(runtime, fine) == ["sent", "sent"]
    assert texts(api, OTHER_CHAT)[-1] == "Ваш вопрос решён?"


# --- when MAX misbehaves -----------------------------------------------------------------------------


async def test_a_429_storm_is_waited_out_and_nothing_is_lost(
    api: MaxApiStandin, service: ConversationService
) -> None:
    api.fail_next("send_message", 429, times=3, retry_after=1)
    started = time.monotonic()
    async with polling(api, service):
        api.add_message(CHAT, "не работает интернет")
        await api.wait_for_sent(1, 15, chat_id=CHAT, name="send_message")
    # maxapi keeps no Retry-After, so each 429 is waited out for the default second.
    assert time.monotonic() - started >= 3
    assert len(texts(api)) == 1
    assert [c.status for c in api.calls if c.name == "send_message"] == [429, 429, 429, 200]


@pytest.mark.parametrize(("status", "html"), [(503, False), (502, True), (500, False)])
async def test_server_errors_are_retried(
    api: MaxApiStandin, service: ConversationService, status: int, html: bool
) -> None:
    api.fail_next("send_message", status, times=2, html=html)
    api.fail_next("updates", status)
    async with polling(api, service):
        api.add_message(CHAT, "не работает интернет")
        await api.wait_for_sent(1, 15, chat_id=CHAT, name="send_message")
    assert len(texts(api)) == 1
    assert [c.status for c in api.calls if c.name == "send_message"] == [status, status, 200]


async def test_a_refused_message_is_not_sent_again_and_the_chat_goes_on(
    api: MaxApiStandin, service: ConversationService
) -> None:
    api.fail_next("send_message", 400, message="attachments: invalid keyboard")
    async with polling(api, service):
        api.add_message(CHAT, "не работает интернет")
        await eventually(lambda: any(c.status == 400 for c in api.calls), what="the refusal")
        api.add_message(CHAT, "1234567")
        await api.wait_for_sent(1, 10, chat_id=CHAT, name="send_message")
    assert [c.status for c in api.calls if c.name == "send_message"] == [400, 200]


async def test_an_unreachable_max_is_a_temporary_failure(service: ConversationService) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    gateway = make_gateway(service, MaxSettings(DEFAULT_TOKEN, f"http://127.0.0.1:{port}"), FAST)
    try:
        with pytest.raises(TemporaryFailure):
            await gateway.outbound.send_text(str(CHAT), "Здравствуйте", ())
    finally:
        await gateway.close()


async def test_duplicate_updates_are_processed_once(api: MaxApiStandin, service: ConversationService) -> None:
    api.duplicate_next_updates(3)
    async with polling(api, service):
        api.add_message(CHAT, "не работает интернет")
        api.add_message(CHAT, "1234567")
        await api.wait_for_sent(2, 10, chat_id=CHAT, name="send_message")
        api.press_button(CHAT, "Все лампочки горят")
        await api.wait_for_sent(3, 10, chat_id=CHAT, name="send_message")
        await api.wait_until_consumed(10)
    # Each of the three came twice (the stand-in re-sent it after the marker confirmed it).
    assert sum(len(call.result["updates"]) for call in api.calls if call.name == "updates") == 6
    assert len(texts(api)) == 3


async def test_a_restart_mid_dialog_continues(api: MaxApiStandin, tmp_path: Path) -> None:
    db = sqlite_url(str(tmp_path / "restart.db"))
    first = ConversationService(Engine(LiveContent()), SqlStore(connect(db)))
    async with polling(api, first):
        api.add_message(CHAT, "перезвоните мне")
        await api.wait_for_sent(1, 10, chat_id=CHAT, name="send_message")
    second = ConversationService(Engine(LiveContent()), SqlStore(connect(db)))
    async with polling(api, second):
        # The new poller passes no marker: MAX sends again what the first never confirmed; it is dropped.
        api.add_message(CHAT, "8 913 123 45 67")
        await api.wait_for_sent(2, 10, chat_id=CHAT, name="send_message")
        await api.wait_until_consumed(5)
    assert len(texts(api)) == 2
    assert "время" in texts(api)[-1].lower() or "когда" in texts(api)[-1].lower()


async def test_two_hundred_chats_at_once_keep_each_chats_order(
    api: MaxApiStandin, service: ConversationService
) -> None:
    chats = range(10_000, 10_200)
    api.set_latency(0.01, "send_message")  # answers overtake each other, as over a real network
    async with polling(api, service):
        for chat in chats:
            api.add_message(chat, "не работает интернет")
            api.add_message(chat, f"договор {chat}00")
            api.add_message(chat, "2")
        await api.wait_for_sent(600, 120, name="send_message")
    for chat in chats:
        replies = texts(api, chat)
        assert len(replies) == 3
        assert "договор" in replies[0].lower()
        assert "роутер" in replies[1].lower() or "горит" in replies[1].lower()
        assert f"{chat}00" in replies[2]


async def test_polling_stops_at_once_even_mid_long_poll(
    api: MaxApiStandin, service: ConversationService
) -> None:
    async with polling(api, service, timeout_s=60):
        await eventually(lambda: any(c.name == "me" for c in api.calls), what="the start")
        await asyncio.sleep(0.2)  # the long poll is waiting
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 2


async def test_polling_leaves_webhook_mode(api: MaxApiStandin, service: ConversationService) -> None:
    await subscribe_webhook(settings(api, SECRET), "http://127.0.0.1:9/")
    async with polling(api, service):
        await eventually(lambda: any(c.name == "unsubscribe" for c in api.calls), what="the unsubscribe")
        api.add_message(CHAT, "не работает интернет")
        await api.wait_for_sent(1, 10, chat_id=CHAT, name="send_message")
    unsubscribed = [c for c in api.calls if c.name == "unsubscribe"]
    assert [c.query["url"] for c in unsubscribed] == [f"http://127.0.0.1:9{WEBHOOK_PATH}"]
    assert not api.webhook_deliveries


async def test_a_non_numeric_chat_is_refused_not_retried(
    api: MaxApiStandin, service: ConversationService
) -> None:
    gateway = make_gateway(service, settings(api), FAST)
    try:
        # Rejected is the gateway's "do not send again" (anything else it retries for ever).
        with pytest.raises(Rejected, match="not a MAX chat id"):
            await gateway.outbound.send_text("not-a-chat", "Здравствуйте", ())
    finally:
        await gateway.close()
    assert not api.calls


async def test_a_refused_token_is_a_settings_error(api: MaxApiStandin, service: ConversationService) -> None:
    wrong = MaxSettings("x" * 40, api.base_url)
    with pytest.raises(MaxConfigError, match="MAX_BOT_TOKEN"):
        await run_polling(service, wrong, stop=asyncio.Event())


# --- limits --------------------------------------------------------------------------------------------


async def test_one_chat_gets_at_most_two_messages_a_second(
    api: MaxApiStandin, service: ConversationService
) -> None:
    api.set_flood_limit(2, 1.0)
    async with polling(api, service, limits=None):
        for text in ("привет", "не работает интернет", "1234567", "2"):
            api.add_message(CHAT, text)
        await api.wait_for_sent(4, 15, chat_id=CHAT, name="send_message")
    times = api.send_times(CHAT)
    assert all(later - earlier >= 0.45 for earlier, later in itertools.pairwise(times))
    assert all(call.ok for call in api.calls if call.name == "send_message"), "MAX's flood control never hit"


class LongReplyService:
    """A service answering with one very long reply, to test splitting without a long guide."""

    def handle(self, message: IncomingMessage) -> Turn:
        return Turn(replies=[Reply("Это очень подробное объяснение одного шага настройки. " * 200)])


async def test_a_long_reply_is_split_under_maxs_limit(api: MaxApiStandin) -> None:
    async with polling(api, LongReplyService()):
        api.add_message(CHAT, "расскажи подробно")
        await api.wait_for_sent(3, 10, chat_id=CHAT, name="send_message")
    parts = texts(api)
    assert len(parts) == 3 and all(len(p) <= MAX_TEXT_LIMIT < 4000 for p in parts)
    assert all(p.endswith(".") for p in parts)


# --- webhook --------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve an aiohttp app on a free port of 127.0.0.1; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_the_webhook_checks_the_secret(api: MaxApiStandin, service: ConversationService) -> None:
    with pytest.raises(MaxConfigError, match="MAX_WEBHOOK_SECRET"):
        webhook_reader(settings(api))
    reader = webhook_reader(settings(api, SECRET))
    gateway = make_gateway(service, settings(api, SECRET), FAST)
    update = api.add_message(CHAT, "не работает интернет")
    async with serving(webhook_app(reader, gateway)) as base, aiohttp.ClientSession() as client:
        url = base + WEBHOOK_PATH
        assert await api.post_webhook(url, update) == 403
        assert await api.post_webhook(url, update, secret="wrong-secret") == 403
        assert await api.post_webhook(url, update, secret=SECRET.upper()) == 403
        async with client.get(url, headers={SECRET_HEADER: SECRET}) as response:
            assert response.status == 405
        async with client.post(url, data=b"{not json", headers={SECRET_HEADER: SECRET}) as response:
            assert response.status == 400
        sender = update["message"]["sender"]
        user_added = {"update_type": "user_added", "timestamp": 1, "chat_id": CHAT, "user": sender}
        assert await api.post_webhook(url, user_added, secret=SECRET) == 200
        await asyncio.sleep(0.1)
        assert not api.sent(), "nothing was read without the secret"

        # Subscribed, the stand-in posts every update with the secret, as MAX does.
        await subscribe_webhook(settings(api, SECRET), base)
        subscribed = [call for call in api.calls if call.name == "subscribe"]
        assert subscribed[0].body == {"url": url, "update_types": list(UPDATE_TYPES), "secret": SECRET}
        await api.wait_for_sent(1, 10, chat_id=CHAT, name="send_message")
        api.add_message(CHAT, "1234567")
        await api.wait_for_sent(2, 10, chat_id=CHAT, name="send_message")
        api.press_button(CHAT, "Все лампочки горят")
        await api.wait_for_sent(3, 10, chat_id=CHAT, name="send_message")
        await api.wait_for_sent(1, 5, chat_id=CHAT, name="answer")
    assert {d.status for d in api.webhook_deliveries} == {200}
    assert "1234567" in texts(api)[-1]


async def test_the_stand_in_checks_the_token_as_max_does(api: MaxApiStandin) -> None:
    async with aiohttp.ClientSession() as client:
        for headers, query, status in [
            ({"Authorization": api.token}, "", 200),
            ({}, f"?access_token={api.token}", 200),  # what clients sent before MAX moved it to the header
            ({}, "", 401),
            ({"Authorization": f"Bearer {api.token}"}, "", 401),
        ]:
            async with client.get(f"{api.base_url}/me{query}", headers=headers) as response:
                assert response.status == status, (headers, query)
                if status == 401:
                    assert (await response.json())["code"] == "verify.token"
        async with client.get(f"{api.base_url}/nowhere", headers={"Authorization": api.token}) as response:
            assert response.status == 404


# --- settings ----------------------------------------------------------------------------------------------


def test_settings_are_read_with_maxapis_default_address() -> None:
    read = MaxSettings.from_env({"MAX_BOT_TOKEN": f" {DEFAULT_TOKEN} ", "MAX_WEBHOOK_SECRET": SECRET})
    assert read == MaxSettings(DEFAULT_TOKEN, DEFAULT_API_BASE, SECRET)
    assert DEFAULT_API_BASE == BaseConnection.API_URL
    assert DEFAULT_TOKEN not in repr(read) and SECRET not in repr(read)
    custom = MaxSettings.from_env({"MAX_BOT_TOKEN": DEFAULT_TOKEN, "MAX_API_BASE": "http://127.0.0.1:8081/"})
    assert custom.api_base == "http://127.0.0.1:8081" and custom.webhook_secret is None


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({}, "MAX_BOT_TOKEN is not set"),
        ({"MAX_BOT_TOKEN": "   "}, "MAX_BOT_TOKEN is not set"),
        ({"MAX_BOT_TOKEN": "short"}, "MAX_BOT_TOKEN does not look like"),
        (
            {"MAX_BOT_TOKEN": DEFAULT_TOKEN[:20] + " " + DEFAULT_TOKEN[20:]},
            "MAX_BOT_TOKEN does not look like",
        ),
        ({"MAX_BOT_TOKEN": f"Bearer {DEFAULT_TOKEN}"}, "without 'Bearer '"),
        ({"MAX_BOT_TOKEN": DEFAULT_TOKEN, "MAX_API_BASE": "platform-api2.max.ru"}, "MAX_API_BASE"),
        ({"MAX_BOT_TOKEN": DEFAULT_TOKEN, "MAX_API_BASE": "ftp://max.ru"}, "MAX_API_BASE"),
        ({"MAX_BOT_TOKEN": DEFAULT_TOKEN, "MAX_WEBHOOK_SECRET": "abc"}, "MAX_WEBHOOK_SECRET"),
        ({"MAX_BOT_TOKEN": DEFAULT_TOKEN, "MAX_WEBHOOK_SECRET": "no_underscores"}, "MAX_WEBHOOK_SECRET"),
    ],
)
def test_settings_errors_say_what_to_fix_in_one_line(env: dict[str, str], names: str) -> None:
    with pytest.raises(MaxConfigError) as raised:
        MaxSettings.from_env(env)
    message = str(raised.value)
    assert names in message and "\n" not in message
    assert DEFAULT_TOKEN not in message


# --- the benchmark ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_end_to_end_bench_runs_tonebot_and_both_echo_bots() -> None:
    from bench.e2e_max import measure

    figures = measure(chats=10, rounds=2)
    assert {"e2e_max_msgs_per_s", "e2e_max_echo_msgs_per_s", "e2e_max_vs_echo"} <= set(figures)
    assert all(value > 0 for value in figures.values())
    ratio = figures["e2e_max_msgs_per_s"] / figures["e2e_max_echo_msgs_per_s"]
    assert figures["e2e_max_vs_echo"] == pytest.approx(ratio, abs=0.01)
