"""tonebot in a VK community: vkbottle's own HTTP client against the local VK API stand-in.

Every test starts the stand-in on 127.0.0.1 itself; nothing reaches the real VK.
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
from vkbottle import VKAPIError
from vkbottle_types.events.bot_events import BaseGroupEvent, MessageEdit, MessageEvent, MessageNew

from bot.channels.gateway import ChannelGateway
from bot.channels.limits import RateLimits
from bot.channels.webhook import webhook_app
from bot.vk.inbound import read_update
from bot.vk.outbound import MAX_BUTTONS, MAX_LABEL, MAX_ROWS, keyboard_json, random_id
from bot.vk.runner import VK_LIMITS, VK_TEXT_LIMIT, make_gateway, poll, run_polling, webhook_reader
from bot.vk.settings import DEFAULT_API_BASE, VkConfigError, VkSettings
from common.messages import AttachmentKind, Button, IncomingMessage, Reply
from dialogs.content import LiveContent
from dialogs.engine import Engine, Turn
from dialogs.service import ConversationService
from personas.guides import fill
from personas.labels import PERSONAS
from storage import SqlStore, connect
from storage.database import sqlite_url
from tests.support.vk_api import DEFAULT_GROUP_ID, DEFAULT_TOKEN, VkApiStandin
from tests.support.webserver import add_operator, always_open, web_runtime
from wiring.runtime import Runtime

pytestmark = pytest.mark.anyio
PEER = 5001
FAST = RateLimits(per_chat_interval=0.0, global_per_second=10_000)
SECRET = "s3cret-callback"
CODE = "a1b2c3d4"
OPERATOR, OPERATOR_NAME = "anna", "Анна"
T = TypeVar("T")


@pytest.fixture
async def vk() -> AsyncIterator[VkApiStandin]:
    async with VkApiStandin() as standin:
        yield standin


@pytest.fixture
def service(tmp_path: Path, engine: Engine) -> ConversationService:
    return ConversationService(engine, SqlStore(connect(sqlite_url(str(tmp_path / "vk.db")))))


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path) -> Runtime:
    """The bot and the operators' desk over one SQLite file, with teams working around the clock."""
    built = web_runtime(tmp_path, always_open(content_copy))
    add_operator(built, OPERATOR, "correct horse battery", OPERATOR_NAME)
    return built


def settings_for(vk: VkApiStandin, **callback: str) -> VkSettings:
    return VkSettings(vk.token, vk.group_id, vk.base_url, callback.get("secret"), callback.get("code"))


@contextlib.asynccontextmanager
async def polling(
    vk: VkApiStandin, service: Any, limits: RateLimits = FAST, outbox: Any = None
) -> AsyncIterator[ChannelGateway]:
    """The bot on Bots Long Poll against the stand-in; yields its gateway; stops it cleanly after."""
    settings = settings_for(vk)
    gateway = make_gateway(service, settings, limits)
    stop = asyncio.Event()
    servers = len(vk.api_calls("groups.getLongPollServer")) + 1
    task = asyncio.create_task(poll(gateway, settings, outbox, stop=stop))
    try:
        await vk.wait_until_polling(servers)
        yield gateway
        await gateway.drain()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def callback_server(vk: VkApiStandin, service: Any) -> AsyncIterator[str]:
    """The Callback API served by the shared webhook app on 127.0.0.1; yields its URL."""
    settings = settings_for(vk, secret=SECRET, code=CODE)
    app = webhook_app(webhook_reader(settings), make_gateway(service, settings, FAST))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/vk/callback"
    finally:
        await runner.cleanup()


async def eventually(check: Callable[[], T], timeout: float = 5.0, what: str = "the condition") -> T:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.02)
    return value


def variants(content: LiveContent, moment: str, **values: str) -> set[str]:
    """Every way any persona words a moment."""
    guides = content.get().guides
    return {fill(text, values) for persona in PERSONAS for text in guides.variants(moment, persona)}


def sends(vk: VkApiStandin, peer: int = PEER) -> list[Any]:
    return vk.api_calls("messages.send", peer)


# --- a dialog ------------------------------------------------------------------------------------


async def test_dialog_with_callback_buttons(vk: VkApiStandin, service: ConversationService) -> None:
    async with polling(vk, service):
        vk.add_message(PEER, "Здравствуйте, не работает интернет")
        texts = await vk.wait_for_messages(1, peer_id=PEER)
        assert "договор" in texts[-1].lower()
        vk.add_message(PEER, "договор 1234567")
        await vk.wait_for_messages(2, peer_id=PEER)
        keyboard = vk.sent(PEER)[-1].keyboard
        assert keyboard is not None and keyboard["inline"] is True
        actions = vk.sent(PEER)[-1].buttons()
        assert all(a["type"] == "callback" for a in actions)
        assert {
            "label": "Все лампочки горят",
            "payload": '{"tb": "choice:router_lights:all_on"}',
        }.items() <= next(a for a in actions if a["label"] == "Все лампочки горят").items()
        pressed = vk.press_button(PEER, "Все лампочки горят")
        texts = await vk.wait_for_messages(3, peer_id=PEER)
        assert "1234567" in texts[-1]
        answers = await vk.wait_for_calls("messages.sendMessageEventAnswer", 1)
    assert answers[0].params["event_id"] == pressed["object"]["event_id"]
    assert (answers[0].params["user_id"], answers[0].params["peer_id"]) == (str(PEER), str(PEER))
    assert answers[0].at < sends(vk)[-1].at, "the spinner stops before the answer is worked out"


async def test_apps_without_callback_buttons_get_text_buttons(
    vk: VkApiStandin, service: ConversationService
) -> None:
    vk.set_client(PEER, callback_buttons=False)
    async with polling(vk, service):
        vk.add_message(PEER, "не работает интернет")
        vk.add_message(PEER, "договор 7654321")
        await vk.wait_for_messages(2, peer_id=PEER)
        assert {a["type"] for a in vk.sent(PEER)[-1].buttons()} == {"text"}
        pressed = vk.press_button(PEER, "Все лампочки горят")
        texts = await vk.wait_for_messages(3, peer_id=PEER)
    # The label came as the client's text, the payload said which option it was.
    assert pressed["type"] == "message_new" and pressed["object"]["message"]["payload"]
    assert "7654321" in texts[-1] and "перезагрузите" in texts[-1].lower()
    assert not vk.api_calls("messages.sendMessageEventAnswer")


async def test_start_button_greets_like_telegrams_start(
    vk: VkApiStandin, service: ConversationService
) -> None:
    async with polling(vk, service):
        event = vk.add_start(PEER, ref="promo_october")
        texts = await vk.wait_for_messages(1, peer_id=PEER)
    inbound = read_update(event)
    assert inbound is not None and inbound.message.text == "/start promo_october"
    assert "Сибирские сети" in texts[0]


@pytest.mark.parametrize(
    ("kind", "moment"),
    [
        ("photo", "attachment.photo"),
        ("sticker", "attachment.sticker"),
        ("audio_message", "attachment.voice"),
        ("doc", "attachment.document"),
        ("video", "attachment.video"),
        ("wall", "attachment.other"),
        ("link", "attachment.other"),
        ("geo", "attachment.location"),
    ],
)
async def test_attachments_are_answered_politely(
    vk: VkApiStandin, service: ConversationService, live_content: LiveContent, kind: str, moment: str
) -> None:
    async with polling(vk, service):
        vk.add_attachment(PEER, kind)
        texts = await vk.wait_for_messages(1, peer_id=PEER)
    assert texts[0] in variants(live_content, moment)


async def test_the_stand_ins_events_are_valid_for_vkbottle(vk: VkApiStandin) -> None:
    events = [vk.add_message(PEER, "привет"), vk.add_start(PEER, "ref"), vk.add_edit(PEER, 1, "исправил")]
    kinds = ("photo", "sticker", "audio_message", "doc", "geo", "video", "wall", "link")
    events += [vk.add_attachment(PEER, kind) for kind in kinds]
    button = {"user_id": PEER, "peer_id": PEER, "event_id": "ab12", "payload": {"tb": "x"}}
    events.append(vk.add_event("message_event", {**button, "conversation_message_id": 3}))
    models: dict[str, type[BaseGroupEvent]] = {
        "message_new": MessageNew,
        "message_event": MessageEvent,
        "message_edit": MessageEdit,
    }
    for event in events:
        models[event["type"]].model_validate(event)


async def test_edited_message_is_read_again(vk: VkApiStandin, service: ConversationService) -> None:
    async with polling(vk, service):
        vk.add_message(PEER, "перезвоните мне")
        await vk.wait_for_messages(1, peer_id=PEER)
        sent = vk.add_message(PEER, "8 913 123 45 67")
        await vk.wait_for_messages(2, peer_id=PEER)
        vk.add_edit(PEER, sent["object"]["message"]["conversation_message_id"], "8 913 000 11 22")
        texts = await vk.wait_for_messages(3, peer_id=PEER)
    assert "+7 913 000-11-22" in texts[-1]


class SlowService:
    """A service that thinks for a while, to see "typing…" meanwhile."""

    def __init__(self, inner: ConversationService, seconds: float = 0.6) -> None:
        self.inner, self.seconds = inner, seconds

    def handle(self, message: IncomingMessage) -> Turn:
        time.sleep(self.seconds)
        return self.inner.handle(message)


async def test_typing_is_shown_while_a_reply_takes_time(
    vk: VkApiStandin, service: ConversationService
) -> None:
    async with polling(vk, SlowService(service)):
        vk.add_message(PEER, "не работает интернет")
        await vk.wait_for_messages(1, peer_id=PEER)
    typing = vk.api_calls("messages.setActivity", PEER)
    assert typing and typing[0].params["type"] == "typing"
    assert typing[0].at < sends(vk)[0].at


class LongReplyService:
    """One very long reply, to test splitting without a long guide."""

    def handle(self, message: IncomingMessage) -> Turn:
        return Turn(replies=[Reply("Это очень подробное объяснение одного шага настройки. " * 200)])


async def test_long_reply_is_split_under_vks_limit(vk: VkApiStandin) -> None:
    async with polling(vk, LongReplyService()):
        vk.add_message(PEER, "расскажи подробно")
        texts = await vk.wait_for_messages(3, peer_id=PEER)
    assert len(texts) == 3 and all(len(t) <= VK_TEXT_LIMIT and t.endswith(".") for t in texts)
    assert len({call.params["random_id"] for call in sends(vk)}) == 3, "each part is its own message for VK"


class ManyButtonsService:
    """A reply with more, and longer, buttons than VK's inline keyboard takes."""

    def handle(self, message: IncomingMessage) -> Turn:
        buttons = tuple(
            Button(f"Вариант ответа номер {n}, очень длинная подпись", f"choice:x:{n}") for n in range(12)
        )
        return Turn(replies=[Reply("Выберите вариант.", buttons)])


async def test_keyboards_keep_within_vks_limits(vk: VkApiStandin) -> None:
    async with polling(vk, ManyButtonsService()):
        vk.add_message(PEER, "варианты?")
        await vk.wait_for_messages(1, peer_id=PEER)
    keyboard = vk.sent(PEER)[0].keyboard
    assert keyboard is not None
    labels = [a["label"] for a in vk.sent(PEER)[0].buttons()]
    assert len(labels) == MAX_BUTTONS and len(keyboard["buttons"]) <= MAX_ROWS
    assert all(len(label) <= MAX_LABEL for label in labels) and labels[0].endswith("…")
    assert all(call.ok for call in sends(vk)), "the stand-in checks VK's keyboard rules (error 911)"


def test_ratings_fit_one_row() -> None:
    keyboard = keyboard_json([Button(str(n), f"rate:{n}") for n in range(1, 6)])
    assert keyboard is not None and keyboard.count("callback") == 5 and keyboard.count("]") == 2


# --- failures ------------------------------------------------------------------------------------


async def test_too_many_requests_storm_is_waited_out_and_nothing_is_lost(
    vk: VkApiStandin, service: ConversationService
) -> None:
    vk.fail_next("messages.send", 6, times=3)
    async with polling(vk, service):
        started = time.monotonic()
        vk.add_message(PEER, "не работает интернет")
        await vk.wait_for_messages(1, 15, peer_id=PEER)
    assert time.monotonic() - started >= 3, "error 6 is waited out a second at a time"
    assert len(vk.sent_texts(PEER)) == 1
    assert [call.error_code for call in sends(vk)] == [6, 6, 6, None]


@pytest.mark.parametrize("fault", ["http 502", "vk error 10"])
async def test_server_errors_are_retried(vk: VkApiStandin, service: ConversationService, fault: str) -> None:
    if fault == "http 502":
        vk.fail_next_http("messages.send", 502, times=2)
    else:
        vk.fail_next("messages.send", 10, times=2)
    async with polling(vk, service):
        vk.add_message(PEER, "не работает интернет")
        await vk.wait_for_messages(1, 15, peer_id=PEER)
        await asyncio.sleep(0.2)
    assert len(vk.sent_texts(PEER)) == 1
    assert len(sends(vk)) == 3 and sends(vk)[-1].ok


async def test_a_send_whose_answer_was_lost_is_retried_and_shown_once(
    vk: VkApiStandin, service: ConversationService
) -> None:
    vk.lose_next_answers("messages.send")
    async with polling(vk, service):
        vk.add_message(PEER, "не работает интернет")
        await vk.wait_for_calls("messages.send", 2, 10, peer_id=PEER)
    calls = sends(vk)
    assert len(calls) == 2 and calls[0].http_status == 0, "the first answer never reached the bot"
    assert calls[0].params["random_id"] == calls[1].params["random_id"] != "0"
    assert calls[1].result == calls[0].result, "VK answers the retry with the message sent the first time"
    assert len(vk.sent_texts(PEER)) == 1


def test_random_id_is_stable_non_zero_and_31_bit() -> None:
    ids = {random_id(str(peer), f"msg:{n}:0:0") for peer in range(50) for n in range(200)}
    assert len(ids) == 50 * 200 and all(0 < i < 2**31 for i in ids)
    assert random_id("5", "outbox:7:0") == random_id("5", "outbox:7:0") != random_id("6", "outbox:7:0")
    assert random_id("5", "") == 0


async def test_duplicate_updates_are_processed_once(vk: VkApiStandin, service: ConversationService) -> None:
    async with polling(vk, service) as gateway:
        vk.duplicate_next_updates(2)
        vk.add_message(PEER, "не работает интернет")
        vk.add_message(PEER, "1234567")
        await vk.wait_for_messages(2, peer_id=PEER)
        await vk.wait_until_consumed()
        await asyncio.sleep(0.3)
        await gateway.drain()
    fetched = [e for e in vk.events if e["type"] == "message_new"]
    assert len(fetched) == 4, "each of the two came twice"
    assert len(vk.sent_texts(PEER)) == 2


async def test_restart_mid_dialog_continues(vk: VkApiStandin, tmp_path: Path, engine: Engine) -> None:
    db = sqlite_url(str(tmp_path / "restart.db"))
    first = ConversationService(engine, SqlStore(connect(db)))
    async with polling(vk, first):
        vk.add_message(PEER, "перезвоните мне")
        await vk.wait_for_messages(1, peer_id=PEER)
    second = ConversationService(engine, SqlStore(connect(db)))
    async with polling(vk, second):
        vk.add_message(PEER, "8 913 123 45 67")
        texts = await vk.wait_for_messages(2, peer_id=PEER)
    assert "время" in texts[-1].lower() or "когда" in texts[-1].lower()


async def test_two_hundred_chats_at_once_keep_each_chats_order(
    vk: VkApiStandin, service: ConversationService
) -> None:
    peers = range(10_000, 10_200)
    async with polling(vk, service) as gateway:
        for peer in peers:
            vk.add_message(peer, "не работает интернет")
            vk.add_message(peer, f"договор {peer}00")
            vk.add_message(peer, "2")
        await vk.wait_for_messages(600, 120)
        await gateway.drain()
    for peer in peers:
        replies = vk.sent_texts(peer)
        assert len(replies) == 3
        assert "договор" in replies[0].lower()
        assert "роутер" in replies[1].lower() or "горит" in replies[1].lower()
        assert f"{peer}00" in replies[2]


async def test_replies_of_the_same_moment_share_execute_calls(
    vk: VkApiStandin, service: ConversationService
) -> None:
    peers = range(30_000, 30_060)
    refusing = 30_007
    vk.deny_messages(refusing, event=False)
    async with polling(vk, service) as gateway:
        for peer in peers:
            vk.add_message(peer, "не работает интернет")
        await vk.wait_for_messages(59, 10)
        await gateway.drain()
    inner = [call for call in vk.api_calls("messages.send") if call.via == "execute"]
    assert vk.executes >= 3 and len(inner) >= 50, "most replies went in batches"
    assert len(vk.api_calls("execute")) + len(vk.api_calls("messages.send")) - len(inner) < 60 / 2
    # One refusal inside a batch fails that send alone, and is not retried.
    assert [call.error_code for call in vk.api_calls("messages.send", refusing)] == [901]
    assert gateway.not_allowed == {str(refusing)}
    assert all(len(vk.sent_texts(peer)) == (peer != refusing) for peer in peers)


async def test_a_batch_whose_answer_was_lost_is_shown_once(
    vk: VkApiStandin, service: ConversationService
) -> None:
    vk.lose_next_answers("execute")
    async with polling(vk, service) as gateway:
        for peer in range(31_000, 31_010):
            vk.add_message(peer, "не работает интернет")
        await vk.wait_for_calls("messages.send", 20, 10)
        await gateway.drain()
    assert vk.api_calls("execute")[0].http_status == 0
    assert all(len(vk.sent_texts(peer)) == 1 for peer in range(31_000, 31_010))


async def test_a_batch_vk_cannot_run_is_sent_one_by_one(
    vk: VkApiStandin, service: ConversationService
) -> None:
    vk.fail_next("execute", 12)
    async with polling(vk, service) as gateway:
        for peer in range(32_000, 32_010):
            vk.add_message(peer, "не работает интернет")
        await vk.wait_for_messages(10, 10)
        await gateway.drain()
    assert vk.api_calls("execute")[0].error_code == 12
    assert all(len(vk.sent_texts(peer)) == 1 for peer in range(32_000, 32_010))


async def test_vks_default_limits_keep_within_twenty_calls_a_second(service: ConversationService) -> None:
    peers = range(20_000, 20_030)
    async with VkApiStandin(rate_limit=20) as vk, polling(vk, service, limits=VK_LIMITS):
        for text in ("не работает интернет", "договор 1234567"):
            for peer in peers:
                vk.add_message(peer, text)
            await vk.wait_for_messages(len(peers) * (1 + (text != "не работает интернет")), 10)
        # Thirty presses at once: thirty acknowledgements, each a call of its own, besides the replies.
        for peer in peers:
            vk.press_button(peer, "Все лампочки горят")
        await vk.wait_for_messages(len(peers) * 3, 10)
        await vk.wait_for_calls("messages.sendMessageEventAnswer", len(peers), 10)
    assert all(call.error_code is None for call in vk.calls), "VK never counted more than 20 in a second"


async def test_a_client_who_has_not_allowed_messages_is_recorded_not_retried(
    vk: VkApiStandin, service: ConversationService
) -> None:
    vk.deny_messages(PEER, event=False)
    async with polling(vk, service) as gateway:
        vk.add_message(PEER, "не работает интернет")
        await eventually(lambda: sends(vk), what="the refused send")
        await gateway.drain()
        await asyncio.sleep(0.3)
        assert [call.error_code for call in sends(vk)] == [901]
        assert gateway.not_allowed == {str(PEER)}
        # Allowing messages (message_allow) opens the door again.
        vk.allow_messages(PEER)
        await eventually(lambda: not gateway.not_allowed, what="forgetting the refusal")
        vk.add_message(PEER, "договор 1234567")
        await vk.wait_for_messages(1, peer_id=PEER)


async def test_message_deny_closes_the_door_before_a_send_fails(
    vk: VkApiStandin, service: ConversationService
) -> None:
    async with polling(vk, service) as gateway:
        vk.deny_messages(PEER)
        await eventually(lambda: gateway.not_allowed == {str(PEER)}, what="recording the refusal")


@pytest.mark.parametrize("failed", [1, 2, 3])
async def test_long_poll_failures_are_handled_as_vk_documents(
    vk: VkApiStandin, service: ConversationService, failed: int
) -> None:
    vk.fail_next_poll(failed)
    async with polling(vk, service):
        # 1: on from the ts VK gives; 2: a new key, the same ts; 3: a new key and ts.
        servers = 1 if failed == 1 else 2
        await eventually(lambda: len(vk.api_calls("groups.getLongPollServer")) == servers and vk.polls >= 1)
        vk.add_message(PEER, "не работает интернет")
        await vk.wait_for_messages(1, peer_id=PEER)
    assert len(vk.api_calls("groups.getLongPollServer")) == servers


async def test_run_polling_stops_cleanly_and_delivers_the_outbox(vk: VkApiStandin, runtime: Runtime) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_polling(runtime.service, settings_for(vk), runtime.desk_store, stop=stop))
    await vk.wait_until_polling()
    vk.add_message(PEER, "позовите оператора")
    await vk.wait_for_messages(1, peer_id=PEER)
    queue = await eventually(lambda: runtime.desk_store.queue(datetime.now(UTC)), what="the handoff")
    conversation_id = queue[0].conversation_id
    runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
    runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, "Вижу обрыв на линии, уже чиним.")
    texts = await vk.wait_for_messages(3, 10, peer_id=PEER)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert texts[-1] == "Вижу обрыв на линии, уже чиним."
    assert len(vk.sent_texts(PEER)) == 3


@pytest.mark.parametrize(("token", "group"), [("vk1.a." + "W" * 80, DEFAULT_GROUP_ID), (DEFAULT_TOKEN, 7)])
async def test_a_wrong_token_or_community_stops_polling_saying_what_to_check(
    vk: VkApiStandin, service: ConversationService, token: str, group: int
) -> None:
    settings = VkSettings(token, group, vk.base_url)
    with pytest.raises(VkConfigError, match="check VK_GROUP_TOKEN and VK_GROUP_ID") as caught:
        await asyncio.wait_for(run_polling(service, settings), 10)
    assert isinstance(caught.value.__cause__, VKAPIError)


# --- operators: handoff, reply, close and rating ----------------------------------------------------


def outbox_states(runtime: Runtime, conversation_id: int) -> list[str]:
    rows = runtime.store.messages(conversation_id)
    return [row.delivery for row in rows if row.direction == "out" and row.delivery != ""]


async def test_operator_dialog_handoff_reply_close_and_rating(
    vk: VkApiStandin, runtime: Runtime, live_content: LiveContent
) -> None:
    async with polling(vk, runtime.service) as gateway:
        vk.add_message(PEER, "позовите оператора")
        await vk.wait_for_messages(1, peer_id=PEER)
        await gateway.drain()
        rows = runtime.desk_store.chat_messages("vk", str(PEER), 0)
        conversation_id = int(rows[-1].conversation_id)
        view = runtime.desk_store.conversation(conversation_id)
        assert view is not None and view.handoff is not None and view.handoff.status == "waiting"

        runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
        runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, "Перезагрузили порт, проверьте.")
        assert await gateway.deliver_pending(runtime.desk_store) == 2
        texts = vk.sent_texts(PEER)
        assert texts[-1] == "Перезагрузили порт, проверьте."
        assert texts[-2] in variants(runtime.content, "operator_joined", operator=OPERATOR_NAME)

        runtime.desk.close(conversation_id, OPERATOR)
        assert await gateway.deliver_pending(runtime.desk_store) == 1
        request = vk.sent(PEER)[-1]
        assert request.text in variants(runtime.content, "rating_request")
        assert [a["label"] for a in request.buttons()] == ["1", "2", "3", "4", "5"]
        assert outbox_states(runtime, conversation_id) == ["sent"] * 3

        vk.press_button(PEER, "2")
        texts = await vk.wait_for_messages(5, peer_id=PEER)
        await vk.wait_for_calls("messages.sendMessageEventAnswer", 1)
        await gateway.drain()
        assert texts[-1] in variants(runtime.content, "rating_bad")
        view = runtime.desk_store.conversation(conversation_id)
        assert view is not None and view.handoff is not None
        assert (view.handoff.status, view.handoff.rating, view.handoff.follow_up) == ("closed", 2, True)
        assert await gateway.deliver_pending(runtime.desk_store) == 0
    # Operators' messages are keyed by their outbox id: a second drainer could not show them twice.
    keys = [call.params["random_id"] for call in sends(vk)]
    assert len(keys) == len(set(keys)) == 5


async def test_outbox_resent_after_a_lost_answer_is_shown_once(vk: VkApiStandin, runtime: Runtime) -> None:
    message = IncomingMessage("vk", str(PEER), str(PEER), "позовите оператора", datetime.now(UTC), "msg:1")
    runtime.service.handle(message)
    conversation_id = int(runtime.desk_store.chat_messages("vk", str(PEER), 0)[-1].conversation_id)
    runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
    runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, "Сейчас посмотрю.")
    vk.lose_next_answers("messages.send", times=2)
    gateway = make_gateway(runtime.service, settings_for(vk), FAST)
    try:
        assert await gateway.deliver_pending(runtime.desk_store) == 2
    finally:
        await gateway.close()
    assert vk.sent_texts(PEER)[-1] == "Сейчас посмотрю." and len(vk.sent_texts(PEER)) == 2
    assert len(sends(vk)) == 4
    assert outbox_states(runtime, conversation_id) == ["sent", "sent"]


# --- the Callback API ------------------------------------------------------------------------------


async def test_callback_api_confirms_checks_the_secret_and_answers_ok(
    vk: VkApiStandin, service: ConversationService
) -> None:
    async with callback_server(vk, service) as url:
        assert await vk.confirm(url) == (200, CODE)
        event = {"type": "message_new", "group_id": vk.group_id, "event_id": "e1", "v": "5.199"}
        event["object"] = vk.add_message(PEER, "не работает интернет")["object"]
        assert (await vk.post_event(url, event, "wrong"))[0] == 403
        assert (await vk.post_event(url, event))[0] == 403
        assert (await vk.post_event(url, {**event, "group_id": 1}, SECRET))[0] == 403
        await asyncio.sleep(0.3)
        assert not vk.sent(PEER), "nothing in a refused request was read"
        assert await vk.post_event(url, event, SECRET) == (200, "ok")
        await vk.wait_for_messages(1, peer_id=PEER)
        async with aiohttp.ClientSession() as client, client.post(url, data=b"{not json") as response:
            assert response.status == 400


async def test_callback_api_dialog_with_a_button_press(
    vk: VkApiStandin, service: ConversationService
) -> None:
    async with callback_server(vk, service) as url:
        vk.set_callback(url, SECRET)
        vk.add_message(PEER, "не работает интернет")
        vk.add_message(PEER, "договор 1234567")
        await vk.wait_for_messages(2, peer_id=PEER)
        vk.press_button(PEER, "Все лампочки горят")
        texts = await vk.wait_for_messages(3, peer_id=PEER)
        await vk.wait_for_calls("messages.sendMessageEventAnswer", 1)
        await vk.wait_until_pushed()
    assert "1234567" in texts[-1]
    answers = [d.body for d in vk.callback_deliveries]
    assert answers == ["ok"] * 3


def test_webhook_reader_needs_the_callback_settings() -> None:
    with pytest.raises(VkConfigError, match="VK_CALLBACK_SECRET and VK_CONFIRMATION_CODE"):
        webhook_reader(VkSettings(DEFAULT_TOKEN, 1))


# --- settings --------------------------------------------------------------------------------------

GOOD = {"VK_GROUP_TOKEN": DEFAULT_TOKEN, "VK_GROUP_ID": "218000001"}


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"VK_GROUP_ID": "1"}, "VK_GROUP_TOKEN is not set"),
        ({**GOOD, "VK_GROUP_TOKEN": "123456:short"}, "VK_GROUP_TOKEN does not look like a community token"),
        ({**GOOD, "VK_GROUP_TOKEN": "vk1.a.has spaces " + "x" * 60}, "does not look like a community token"),
        ({"VK_GROUP_TOKEN": DEFAULT_TOKEN}, "VK_GROUP_ID is not set"),
        ({**GOOD, "VK_GROUP_ID": "club123"}, "VK_GROUP_ID must be the community's id in digits"),
        ({**GOOD, "VK_GROUP_ID": "-123"}, "VK_GROUP_ID must be the community's id in digits"),
        ({**GOOD, "VK_API_BASE": "api.vk.com"}, "VK_API_BASE must start with http:// or https://"),
        ({**GOOD, "VK_CALLBACK_SECRET": "s"}, "set VK_CONFIRMATION_CODE too"),
        ({**GOOD, "VK_CONFIRMATION_CODE": "c"}, "set VK_CALLBACK_SECRET too"),
    ],
)
def test_settings_say_what_to_set(env: dict[str, str], says: str) -> None:
    with pytest.raises(VkConfigError, match=says) as caught:
        VkSettings.from_env(env)
    assert "\n" not in str(caught.value)


def test_settings_from_the_environment() -> None:
    plain = VkSettings.from_env(GOOD)
    assert (plain.group_id, plain.api_base, plain.callback_configured) == (218000001, DEFAULT_API_BASE, False)
    assert plain.method_url == "https://api.vk.com/method/"
    configured = VkSettings.from_env(
        {
            **GOOD,
            "VK_API_BASE": "http://127.0.0.1:9/method/",
            "VK_CALLBACK_SECRET": "s",
            "VK_CONFIRMATION_CODE": "c",
        }
    )
    assert configured.callback_configured and configured.method_url == "http://127.0.0.1:9/method/"
    assert DEFAULT_TOKEN not in repr(configured) and "'s'" not in repr(configured)
    old_style = VkSettings.from_env({**GOOD, "VK_GROUP_TOKEN": "0123456789abcdef" * 5 + "01234"})
    assert len(old_style.token) == 85


def test_inbound_ignores_what_is_not_a_clients_message() -> None:
    own = {"type": "message_new", "object": {"message": {"peer_id": 5, "from_id": -1, "out": 1, "id": 1}}}
    chat = {"type": "message_new", "object": {"message": {"peer_id": 2_000_000_001, "from_id": 5, "id": 2}}}
    assert read_update(own) is None and read_update(chat) is None
    assert read_update({"type": "wall_post_new", "object": {}}) is None
    assert read_update({"type": "message_new", "object": "garbage"}) is None
    forwarded = {
        "type": "message_new",
        "object": {
            "message": {"peer_id": 5, "from_id": 5, "conversation_message_id": 9, "fwd_messages": [{}]}
        },
    }
    inbound = read_update(forwarded)
    assert inbound is not None and inbound.message.attachment is AttachmentKind.OTHER


def test_chunks_of_one_key_never_share_a_random_id() -> None:
    keys = [f"msg:{n}:{i}:{c}" for n, i, c in itertools.product(range(30), range(3), range(4))]
    assert len({random_id("77", key) for key in keys}) == len(keys)
