"""The WhatsApp adapter end to end through the Cloud API stand-in on 127.0.0.1.

The bot is the real thing: `make_gateway` (pywa_async's client with its own httpx session, pointed at the
stand-in) behind the shared `webhook_app` with `webhook_reader`; the stand-in's driver posts signed
webhooks to it as Meta does and records every Graph API call the bot makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from pywa.errors import WhatsAppError
from pywa.types.callback import Button as WaButton
from pywa.types.callback import Section, SectionList, SectionRow
from sqlalchemy import Engine as SqlEngine

from bot.channels.gateway import ChannelGateway
from bot.channels.limits import RateLimits
from bot.channels.outbound import NotAllowed, Rejected, RetryLater, TemporaryFailure
from bot.channels.webhook import WebhookReader, WebhookResult, webhook_app
from bot.whatsapp.client import make_client
from bot.whatsapp.outbound import SentHook
from bot.whatsapp.runner import make_gateway, webhook_reader
from bot.whatsapp.settings import WhatsAppConfigError, WhatsAppSettings
from bot.whatsapp.window import LastInboundLookup
from common.messages import AttachmentKind, Button, DeliveryReceipt, IncomingMessage, Reply
from dialogs.engine import Engine, Turn
from dialogs.service import ConversationService
from personas.guides import fill
from storage import SqlStore, connect
from storage.database import sqlite_url
from storage.desk import DeskStore
from storage.desk.base import Outbox
from storage.tables import write_lock_for
from tests.support.webserver import add_operator, always_open, web_runtime
from tests.support.whatsapp_api import GraphApiStandin
from wiring.runtime import Runtime

pytestmark = pytest.mark.anyio
CHAT = "79130000001"
OTHER = "79130000002"
FAST = RateLimits(per_chat_interval=0.0, global_per_second=10_000)
OPERATOR, OPERATOR_NAME = "anna", "Анна"
T = TypeVar("T")


# --- the bot under test, served on 127.0.0.1 -------------------------------------------------------


class RecordingReader:
    """The bot's own reader, keeping each result it produced (storing receipts is not the reader's job)."""

    def __init__(self, inner: WebhookReader) -> None:
        self.inner = inner
        self.channel, self.path = inner.channel, inner.path
        self.results: list[WebhookResult] = []

    async def read(self, request: web.Request) -> WebhookResult:
        result = await self.inner.read(request)
        self.results.append(result)
        return result

    @property
    def messages(self) -> list[IncomingMessage]:
        return [item.message for result in self.results for item in result.inbound]

    @property
    def receipts(self) -> list[DeliveryReceipt]:
        return [receipt for result in self.results for receipt in result.receipts]


@dataclass
class Bot:
    gateway: ChannelGateway
    reader: RecordingReader
    url: str


@contextlib.asynccontextmanager
async def whatsapp_bot(
    wa: GraphApiStandin,
    service: Any,
    *,
    outbox: Outbox | None = None,
    limits: RateLimits = FAST,
    last_inbound: LastInboundLookup | None = None,
    on_sent: SentHook | None = None,
) -> AsyncIterator[Bot]:
    """`tonebot run whatsapp` in this process: the webhook app on a free port, the driver pointed at it."""
    settings = WhatsAppSettings.from_env(wa.env())
    gateway = make_gateway(service, settings, limits, last_inbound=last_inbound, on_sent=on_sent)
    reader = RecordingReader(webhook_reader(settings))
    runner = web.AppRunner(webhook_app(reader, gateway, outbox), access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}{reader.path}"
    await web.SockSite(runner, sock).start()
    wa.connect(url)
    try:
        yield Bot(gateway, reader, url)
        await gateway.drain()
    finally:
        await runner.cleanup()  # closes the gateway and pywa's session


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


@pytest.fixture
async def wa() -> AsyncIterator[GraphApiStandin]:
    async with GraphApiStandin() as standin:
        yield standin


@pytest.fixture
def database(tmp_path: Path) -> SqlEngine:
    return connect(sqlite_url(str(tmp_path / "wa.db")))


@pytest.fixture
def service(database: SqlEngine, engine: Engine) -> ConversationService:
    return ConversationService(engine, SqlStore(database))


@pytest.fixture
def desk(database: SqlEngine) -> DeskStore:
    """The desk's view of the bot's database: what was stored of each chat."""
    return DeskStore(database, write_lock_for(database))


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path) -> Runtime:
    """The bot and the operators' desk over one SQLite file, teams working around the clock."""
    built = web_runtime(tmp_path, always_open(content_copy))
    add_operator(built, OPERATOR, "correct horse battery", OPERATOR_NAME)
    return built


def stored(where: Runtime | DeskStore, chat: str = CHAT) -> list[Any]:
    """The messages of a WhatsApp chat stored so far, both directions."""
    desk = where.desk_store if isinstance(where, Runtime) else where
    return desk.chat_messages("whatsapp", chat, 0)


def phrasings(runtime: Runtime, conversation_id: int, moment: str, **values: str) -> set[str]:
    """Every way the guides word a moment for the conversation's persona."""
    view = runtime.desk_store.conversation(conversation_id)
    assert view is not None
    guides = runtime.content.get().guides
    return {fill(template, values) for template in guides.variants(moment, view.state.persona)}


# --- settings ------------------------------------------------------------------------------------

GOOD_ENV = {
    "WHATSAPP_TOKEN": "EAAtoken123",
    "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
    "WHATSAPP_APP_SECRET": "0123456789abcdef",
    "WHATSAPP_VERIFY_TOKEN": "verify-me",
}


def test_settings_read_from_the_environment() -> None:
    settings = WhatsAppSettings.from_env(GOOD_ENV)
    assert settings.api_base == "https://graph.facebook.com"
    assert settings.phone_number_id == "106540352242922"
    assert "EAAtoken123" not in repr(settings) and "0123456789abcdef" not in repr(settings)
    pointed = WhatsAppSettings.from_env({**GOOD_ENV, "WHATSAPP_API_BASE": "http://127.0.0.1:9000/"})
    assert pointed.api_base == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"WHATSAPP_APP_SECRET": ""}, "WHATSAPP_APP_SECRET"),
        ({"WHATSAPP_APP_SECRET": "   "}, "WHATSAPP_APP_SECRET"),
        ({"WHATSAPP_TOKEN": ""}, "WHATSAPP_TOKEN"),
        ({"WHATSAPP_VERIFY_TOKEN": ""}, "WHATSAPP_VERIFY_TOKEN"),
        ({"WHATSAPP_PHONE_NUMBER_ID": "+7 913 000-00-01"}, "WHATSAPP_PHONE_NUMBER_ID"),
        ({"WHATSAPP_PHONE_NUMBER_ID": "abc"}, "WHATSAPP_PHONE_NUMBER_ID"),
        ({"WHATSAPP_API_BASE": "graph.facebook.com"}, "WHATSAPP_API_BASE"),
        ({"WHATSAPP_API_BASE": "ftp://graph.facebook.com"}, "WHATSAPP_API_BASE"),
    ],
)
def test_settings_refuse_to_start_and_say_what_to_fix(change: dict[str, str], named: str) -> None:
    env = {key: value for key, value in {**GOOD_ENV, **change}.items() if value}
    with pytest.raises(WhatsAppConfigError) as raised:
        WhatsAppSettings.from_env(env)
    message = str(raised.value)
    assert named in message and "\n" not in message


# --- the webhook: verification and signatures --------------------------------------------------


async def test_verification_handshake(wa: GraphApiStandin, service: ConversationService) -> None:
    async with whatsapp_bot(wa, service):
        assert await wa.verify(challenge="8241937") == (200, "8241937")
        assert (await wa.verify("not-the-token"))[0] == 403
        assert (await wa.verify(mode="unsubscribe"))[0] == 403


@pytest.mark.parametrize("signing", ["wrong", "none"])
async def test_posts_without_the_right_signature_are_refused_and_nothing_is_handled(
    wa: GraphApiStandin, service: ConversationService, desk: DeskStore, signing: str
) -> None:
    async with whatsapp_bot(wa, service) as bot:
        wa.signing = signing  # type: ignore[assignment]
        with pytest.raises(AssertionError, match="401"):
            await wa.client_text(CHAT, "не работает интернет")
        await asyncio.sleep(0.4)
        await bot.gateway.drain()
        assert [post.status for post in wa.webhook_posts] == [401]
        assert bot.reader.messages == [] and wa.sent() == [] and stored(desk) == []
        # The same message signed with the app secret is answered: the refusal was the signature's.
        wa.signing = "right"
        await wa.client_text(CHAT, "не работает интернет")
        await wa.wait_for_sent(1, 10, to=CHAT)
    assert len(stored(desk)) == 2


async def test_malformed_and_foreign_posts(wa: GraphApiStandin, service: ConversationService) -> None:
    async with whatsapp_bot(wa, service) as bot:
        assert (await wa.post_raw(b"{not json")).status == 400
        assert (await wa.post_raw(b'{"object": "whatsapp_business_account"}')).status == 400
        # Another business number of the same app: accepted (Meta would retry otherwise), not handled.
        message = {
            "from": CHAT,
            "id": "wamid.X1",
            "timestamp": "1700000000",
            "type": "text",
            "text": {"body": "?"},
        }
        post = await wa.post({"messages": [message]}, phone_number_id="999000999")
        assert post.status == 200
        await asyncio.sleep(0.3)
        assert bot.reader.messages == [] and wa.sent() == []


# --- the stand-in refuses what WhatsApp refuses (so the tests above can fail) ----------------------


def _reply_buttons(*titles: str) -> list[WaButton]:
    return [WaButton(title=title, callback_data=f"id{n}") for n, title in enumerate(titles)]


def _list(*titles: str) -> SectionList:
    rows = [SectionRow(title=title, callback_data=f"id{n}") for n, title in enumerate(titles)]
    return SectionList(button_title="Выбрать", sections=[Section("Варианты", rows)])


@pytest.mark.parametrize(
    ("text", "buttons"),
    [
        ("Какой?", _reply_buttons("1", "2", "3", "4")),
        ("Какой?", _reply_buttons("Двадцать один символ!")),
        ("Какой?", _reply_buttons("Да", "Да")),
        ("x" * 1025, _reply_buttons("Да", "Нет")),
        ("Какой?", _list(*(str(n) for n in range(11)))),
        ("Какой?", _list("Двадцать пять символов!!!")),
    ],
)
async def test_the_stand_in_refuses_what_whatsapp_refuses(
    wa: GraphApiStandin, text: str, buttons: Any
) -> None:
    client, session = make_client(WhatsAppSettings.from_env(wa.env()))
    try:
        with pytest.raises(WhatsAppError) as raised:
            await client.send_message(to=CHAT, text=text, buttons=buttons)
        assert raised.value.code == 131009
        await client.send_message(to=CHAT, text=text[:1024], buttons=_reply_buttons("Да", "Нет"))
    finally:
        await session.aclose()
    assert [call.status for call in wa.calls] == [400, 200]


# --- a whole dialog: buttons, a list, a handoff, the operator, closing and a rating ------------------


async def test_dialog_with_buttons_handoff_operator_close_and_rating(
    wa: GraphApiStandin, runtime: Runtime
) -> None:
    async with whatsapp_bot(wa, runtime.service, outbox=runtime.desk_store) as bot:
        await wa.client_text(CHAT, "не работает интернет")
        await wa.wait_for_sent(1, 10, to=CHAT)
        assert "договор" in wa.sent_texts(CHAT)[-1].lower()

        # Four options: more than WhatsApp's three reply buttons, so a list; a cut label is shown whole.
        await wa.client_text(CHAT, "договор 1234567")
        lights = (await wa.wait_for_sent(2, 10, to=CHAT))[-1]
        assert lights.interactive_type == "list"
        assert lights.body["interactive"]["action"]["button"] == "Выбрать"
        rows = {row["id"]: row for row in lights.choices}
        assert rows["choice:router_lights:wan_off"] == {
            "id": "choice:router_lights:wan_off",
            "title": "Не горит значок…",
            "description": "Не горит значок интернета",
        }
        assert rows["choice:router_lights:all_on"] == {
            "id": "choice:router_lights:all_on",
            "title": "Все лампочки горят",
        }

        await wa.press(CHAT, "Все лампочки горят")
        advice = (await wa.wait_for_sent(3, 10, to=CHAT))[-1]
        assert "1234567" in advice.text
        assert advice.interactive_type == "button"
        assert [choice["title"] for choice in advice.choices] == ["Да, помогло", "Нет, не помогло"]
        pressed = bot.reader.messages[-1]
        assert (
            pressed.button_payload == "choice:router_lights:all_on" and pressed.text == "Все лампочки горят"
        )

        await wa.press(CHAT, "Нет, не помогло")
        await wa.wait_for_sent(4, 10, to=CHAT)
        conversation_id = int(stored(runtime)[-1].conversation_id)
        view = runtime.desk_store.conversation(conversation_id)
        assert view is not None and view.handoff is not None and view.handoff.status == "waiting"

        runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
        runtime.desk.reply(conversation_id, OPERATOR, OPERATOR_NAME, "Здравствуйте! Вижу обрыв, уже чиним.")
        delivered = await wa.wait_for_sent(6, 10, to=CHAT)
        joined = phrasings(runtime, conversation_id, "operator_joined", operator=OPERATOR_NAME)
        assert delivered[4].text in joined
        assert delivered[5].text == "Здравствуйте! Вижу обрыв, уже чиним."

        runtime.desk.close(conversation_id, OPERATOR)
        request = (await wa.wait_for_sent(7, 10, to=CHAT))[-1]
        assert request.text in phrasings(runtime, conversation_id, "rating_request")
        assert request.interactive_type == "list"
        assert [(row["id"], row["title"]) for row in request.choices] == [
            (f"rate:{n}", str(n)) for n in range(1, 6)
        ]

        await wa.press(CHAT, "2")
        await wa.wait_for_sent(8, 10, to=CHAT)
        await eventually(
            lambda: all(
                row.delivery in ("", "immediate", "sent") for row in runtime.store.messages(conversation_id)
            ),
            what="the outbox marked sent",
        )
    assert wa.sent_texts(CHAT)[-1] in phrasings(runtime, conversation_id, "rating_bad")
    view = runtime.desk_store.conversation(conversation_id)
    assert view is not None and view.handoff is not None
    assert (view.handoff.status, view.handoff.rating, view.handoff.follow_up) == ("closed", 2, True)
    assert len(wa.sent(CHAT)) == 8 and wa.refused() == []


# --- what a client can send, and what WhatsApp reports back -----------------------------------------


async def test_attachments_contacts_and_the_senders_number(
    wa: GraphApiStandin, service: ConversationService
) -> None:
    async with whatsapp_bot(wa, service) as bot:
        await wa.client_media(CHAT, "image", caption="вот фото роутера")
        await wa.client_media(CHAT, "sticker")
        await wa.client_media(CHAT, "audio")
        await wa.client_media(CHAT, "video")
        await wa.client_media(CHAT, "document")
        await wa.client_location(CHAT)
        await wa.client_contact(CHAT, "+7 913 000-00-01")  # the sender's own number
        await wa.client_contact(CHAT, "+7 913 555-44-33")  # someone else's
        await wa.wait_for_sent(8, 20, to=CHAT)
    messages = bot.reader.messages
    assert [m.attachment for m in messages] == [
        AttachmentKind.PHOTO,
        AttachmentKind.STICKER,
        AttachmentKind.VOICE,
        AttachmentKind.VIDEO,
        AttachmentKind.DOCUMENT,
        AttachmentKind.LOCATION,
        AttachmentKind.CONTACT,
        AttachmentKind.CONTACT,
    ]
    assert messages[0].text == "вот фото роутера"
    assert (messages[6].contact_phone, messages[6].contact_verified) == ("+7 913 000-00-01", True)
    assert (messages[7].contact_phone, messages[7].contact_verified) == ("+7 913 555-44-33", False)
    assert {(m.channel, m.chat_id, m.user_id, m.sender_phone) for m in messages} == {
        ("whatsapp", CHAT, CHAT, f"+{CHAT}")
    }
    assert len({m.message_id for m in messages}) == 8 and all(
        m.message_id.startswith("wamid.") for m in messages
    )


async def test_statuses_become_delivery_receipts(wa: GraphApiStandin, service: ConversationService) -> None:
    heard: list[tuple[str, str, str]] = []
    async with whatsapp_bot(wa, service, on_sent=lambda *sent: heard.append(sent)) as bot:
        await wa.client_text(CHAT, "не работает интернет")
        sent = (await wa.wait_for_sent(1, 10, to=CHAT))[0]
        assert sent.wamid is not None
        posts = await wa.statuses(sent.wamid)
        failed = await wa.fail_status(sent.wamid, 131047, "Re-engagement message")
    assert [post.status for post in [*posts, failed]] == [200] * 4
    receipts = bot.reader.receipts
    assert [(r.channel, r.chat_id, r.external_id, r.status) for r in receipts] == [
        ("whatsapp", CHAT, sent.wamid, state) for state in ("sent", "delivered", "read", "failed")
    ]
    assert [r.error for r in receipts[:3]] == [None] * 3
    assert receipts[3].error is not None and receipts[3].error.startswith("131047: Re-engagement message")
    assert all(abs((r.at - datetime.now(UTC)).total_seconds()) < 60 for r in receipts)
    # Statuses are no client messages: nothing more was handled or answered.
    assert len(bot.reader.messages) == 1 and len(wa.sent(CHAT)) == 1
    # The adapter told whoever links receipts to stored messages which wamid the reply got.
    assert heard == [(CHAT, f"{bot.reader.messages[0].message_id}:0:0", sent.wamid)]


class SlowService:
    """A service that thinks for a while, to see "typing…" while it works."""

    def __init__(self, inner: ConversationService, seconds: float = 0.8) -> None:
        self.inner, self.seconds = inner, seconds

    def handle(self, message: IncomingMessage) -> Turn:
        time.sleep(self.seconds)
        return self.inner.handle(message)


async def test_typing_marks_the_clients_message_read_with_the_indicator(
    wa: GraphApiStandin, service: ConversationService
) -> None:
    async with whatsapp_bot(wa, SlowService(service)):
        wamid = await wa.client_text(CHAT, "не работает интернет")
        await wa.wait_for_sent(1, 10, to=CHAT)
    typing = wa.typing_calls(wamid)
    assert len(typing) == 1 and typing[0].body["typing_indicator"] == {"type": "text"}
    assert typing[0].at < wa.sent(CHAT)[0].at


# --- failures -----------------------------------------------------------------------------------


async def test_a_429_storm_is_waited_out_and_nothing_is_lost(
    wa: GraphApiStandin, service: ConversationService
) -> None:
    wa.fail_next(3, status=429, code=130429)
    started = time.monotonic()
    async with whatsapp_bot(wa, service):
        await wa.client_text(CHAT, "не работает интернет")
        await wa.wait_for_sent(1, 15, to=CHAT)
    assert time.monotonic() - started >= 3.0, "each 130429 waits at least a second"
    assert len(wa.sent(CHAT)) == 1 and "договор" in wa.sent_texts(CHAT)[0].lower()
    assert [(call.status, call.error_code) for call in wa.refused(CHAT)] == [(429, 130429)] * 3


@pytest.mark.parametrize("as_html", [False, True])
async def test_server_errors_are_retried(
    wa: GraphApiStandin, service: ConversationService, as_html: bool
) -> None:
    wa.fail_next(2, status=502 if as_html else 500, code=131000, as_html=as_html)
    async with whatsapp_bot(wa, service):
        await wa.client_text(CHAT, "не работает интернет")
        await wa.wait_for_sent(1, 15, to=CHAT)
    assert len(wa.sent(CHAT)) == 1 and len(wa.refused(CHAT)) == 2


class LongQuestionService:
    """A service answering with a long explanation that ends in a question with two buttons."""

    def handle(self, message: IncomingMessage) -> Turn:
        text = "Проверьте, что кабель плотно сидит в разъёме. " * 40 + "Помогло?"
        return Turn(replies=[Reply(text, (Button("Да", "yes"), Button("Нет", "no")))])


async def test_a_long_text_goes_before_its_buttons_and_a_retry_repeats_neither(wa: GraphApiStandin) -> None:
    wa.fail_next(1, status=503, code=131000, kinds=("interactive",))
    async with whatsapp_bot(wa, LongQuestionService()):
        await wa.client_text(CHAT, "не работает интернет")
        await wa.wait_for_sent(2, 10, to=CHAT)
        await asyncio.sleep(0.2)
    head, question = wa.sent(CHAT)
    assert (head.kind, question.interactive_type) == ("text", "button")
    assert len(question.text) <= 1024 and question.text.endswith("Помогло?")
    assert head.text.startswith("Проверьте") and len(head.text) + len(question.text) > 1024
    assert [c.kind for c in wa.refused(CHAT)] == ["interactive"], "only the failed part was sent again"


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (429, 130429, RetryLater),
        (400, 130429, RetryLater),
        (400, 80007, RetryLater),
        (400, 4, RetryLater),
        (500, 131000, TemporaryFailure),
        (400, 131000, TemporaryFailure),
        (503, 2, TemporaryFailure),
        (400, 131026, NotAllowed),
        (400, 131047, NotAllowed),
        (400, 131009, Rejected),
        (400, 100, Rejected),
    ],
)
async def test_graph_errors_mean_wait_retry_or_give_up(
    wa: GraphApiStandin, service: ConversationService, status: int, code: int, expected: type[Exception]
) -> None:
    wa.fail_next(1, status=status, code=code)
    gateway = make_gateway(service, WhatsAppSettings.from_env(wa.env()), FAST)
    try:
        with pytest.raises(expected) as raised:
            await gateway.outbound.send_text(CHAT, "Здравствуйте!", ())
        if expected is not RetryLater:
            assert str(code) in str(raised.value)
        await gateway.outbound.send_text(CHAT, "Здравствуйте!", ())  # the fault was one answer only
    finally:
        await gateway.close()
    assert [(c.status, c.error_code) for c in wa.calls] == [(status, code), (200, None)]


async def test_a_wrong_token_and_an_unreachable_api(
    wa: GraphApiStandin, service: ConversationService
) -> None:
    wrong = WhatsAppSettings.from_env({**wa.env(), "WHATSAPP_TOKEN": "EAAnot-the-token"})
    gateway = make_gateway(service, wrong, FAST)
    with pytest.raises(Rejected, match="190"):
        await gateway.outbound.send_text(CHAT, "Здравствуйте!", ())
    await gateway.close()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed_port = unused.getsockname()[1]
    nowhere = WhatsAppSettings.from_env({**wa.env(), "WHATSAPP_API_BASE": f"http://127.0.0.1:{closed_port}"})
    gateway = make_gateway(service, nowhere, FAST)
    with pytest.raises(TemporaryFailure):
        await gateway.outbound.send_text(CHAT, "Здравствуйте!", ())
    await gateway.close()


async def test_duplicate_webhook_deliveries_are_processed_once(
    wa: GraphApiStandin, service: ConversationService, desk: DeskStore
) -> None:
    wa.duplicate_next_posts(2)
    async with whatsapp_bot(wa, service) as bot:
        await wa.client_text(CHAT, "не работает интернет")
        await wa.client_text(CHAT, "договор 1234567")
        await wa.wait_for_sent(2, 10, to=CHAT)
        await asyncio.sleep(0.3)
    assert [post.status for post in wa.webhook_posts] == [200] * 4
    assert len(bot.reader.messages) == 4, "each message came twice"
    assert len(wa.sent(CHAT)) == 2
    assert [row.direction for row in stored(desk)] == ["in", "out", "in", "out"]


async def test_restart_mid_dialog_continues(wa: GraphApiStandin, tmp_path: Path, engine: Engine) -> None:
    db = sqlite_url(str(tmp_path / "restart.db"))
    first = ConversationService(engine, SqlStore(connect(db)))
    async with whatsapp_bot(wa, first):
        await wa.client_text(CHAT, "перезвоните мне")
        await wa.wait_for_sent(1, 10, to=CHAT)
    second = ConversationService(engine, SqlStore(connect(db)))
    async with whatsapp_bot(wa, second):
        await wa.client_text(CHAT, "8 913 123 45 67")
        await wa.wait_for_sent(2, 10, to=CHAT)
    assert "время" in wa.sent_texts(CHAT)[-1].lower() or "когда" in wa.sent_texts(CHAT)[-1].lower()


async def test_one_chat_is_kept_within_a_message_a_second(
    wa: GraphApiStandin, service: ConversationService
) -> None:
    async with whatsapp_bot(wa, service, limits=RateLimits(per_chat_interval=1.0, global_per_second=80)):
        for text in ("привет", "не работает интернет", "1234567"):
            await wa.client_text(CHAT, text)
        await wa.wait_for_sent(3, 15, to=CHAT)
    times = wa.send_times(CHAT)
    assert all(later - earlier >= 0.95 for earlier, later in itertools.pairwise(times))


@pytest.mark.slow
async def test_two_hundred_chats_at_once_keep_each_chats_order(
    wa: GraphApiStandin, service: ConversationService
) -> None:
    chats = [f"7913{n:07d}" for n in range(200)]

    async def client(chat: str) -> None:
        for text in ("не работает интернет", f"договор {chat[-5:]}00", "2"):
            await wa.client_text(chat, text)

    wa.latency = 0.005  # requests overlap, as they do over a network
    async with whatsapp_bot(wa, service):
        await asyncio.gather(*(client(chat) for chat in chats))
        await eventually(lambda: len(wa.sent()) >= 600, 120, "600 replies")
    for chat in chats:
        replies = wa.sent(chat)
        assert len(replies) == 3, (chat, [r.text for r in replies])
        assert "договор" in replies[0].text.lower()
        assert replies[1].interactive_type == "list"
        assert f"{chat[-5:]}00" in replies[2].text and replies[2].interactive_type == "button"
    assert wa.refused() == []


# --- the 24-hour window -------------------------------------------------------------------------


async def test_a_reply_outside_the_24_hour_window_is_refused_not_retried(
    wa: GraphApiStandin, service: ConversationService, desk: DeskStore
) -> None:
    async with whatsapp_bot(wa, service) as bot:
        # WhatsApp delivered a message a day late (it retries webhooks for days): too late to answer.
        await wa.client_text(CHAT, "не работает интернет", at=datetime.now(UTC) - timedelta(hours=25))
        await eventually(lambda: len(stored(desk)) == 2, what="the turn stored")
        await bot.gateway.drain()
        await asyncio.sleep(0.3)
        assert wa.calls == [], "refused before asking WhatsApp"
        assert CHAT in bot.gateway.not_allowed
        # Writing again opens the window again.
        await wa.client_text(CHAT, "договор 1234567")
        await wa.wait_for_sent(1, 10, to=CHAT)
    assert CHAT not in bot.gateway.not_allowed


async def test_whatsapps_131047_marks_the_outbox_message_failed_once(
    wa: GraphApiStandin, runtime: Runtime
) -> None:
    """After a restart the process has no memory of the chat: WhatsApp itself refuses the message."""
    message = IncomingMessage(
        "whatsapp", CHAT, CHAT, "позовите оператора", datetime.now(UTC) - timedelta(hours=30), "wamid.OLD"
    )
    runtime.service.handle(message)
    conversation_id = int(stored(runtime)[-1].conversation_id)
    # The console refuses an operator's reply outside the window; "the operator joined" still waits.
    runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
    wa.close_window(CHAT)
    async with whatsapp_bot(wa, runtime.service, outbox=runtime.desk_store) as bot:
        await eventually(
            lambda: (
                {row.delivery for row in runtime.store.messages(conversation_id) if row.author != "client"}
                >= {"failed"}
            ),
            what="the outbox message failed",
        )
        await asyncio.sleep(1.2)  # two more outbox polls: nothing is tried again
        assert CHAT in bot.gateway.not_allowed
    assert [(call.status, call.error_code) for call in wa.calls] == [(400, 131047)]
    assert wa.sent() == []


async def test_a_window_looked_up_in_storage_refuses_without_asking_whatsapp(
    wa: GraphApiStandin, runtime: Runtime
) -> None:
    last_wrote = {
        CHAT: datetime.now(UTC) - timedelta(hours=26),
        OTHER: datetime.now(UTC) - timedelta(hours=2),
    }
    looked_up: list[str] = []

    async def last_inbound(chat_id: str) -> datetime | None:
        looked_up.append(chat_id)
        return last_wrote.get(chat_id)

    for chat in (CHAT, OTHER):
        message = IncomingMessage(
            "whatsapp", chat, chat, "позовите оператора", last_wrote[chat], f"wamid.{chat}"
        )
        runtime.service.handle(message)
        conversation_id = int(stored(runtime, chat)[-1].conversation_id)
        runtime.desk.take(conversation_id, OPERATOR, OPERATOR_NAME)
    async with whatsapp_bot(wa, runtime.service, last_inbound=last_inbound) as bot:
        assert await bot.gateway.deliver_pending(runtime.desk_store) == 2
    assert [call.to for call in wa.calls] == [OTHER]
    assert bot.gateway.not_allowed == {CHAT}
    assert sorted(set(looked_up)) == sorted([CHAT, OTHER])
