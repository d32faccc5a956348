"""Campaigns sent through the Telegram Bot API and VK API stand-ins by the adapters' own clients (aiogram,
vkbottle): one message per open chat in its persona's tone with buttons, the closed ones counted, follow-ups
after the hours without an answer, opt-outs honoured, the rate kept, quiet hours waited out.

Time is the test's own clock handed to the sender; pacing is measured at the stand-ins."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from bot.campaigns.audience import targets
from bot.campaigns.sender import SENT, CampaignSender
from bot.campaigns.serving import campaign_store, listen
from bot.channels.outbound import Outbound
from bot.cli import main
from bot.telegram.aiogram_io import AiogramOutbound
from bot.telegram.runner import TelegramSettings, make_bot
from bot.vk.runner import make_gateway
from bot.vk.settings import VkSettings
from common.messages import IncomingMessage
from common.names import Author, Direction
from storage.campaigns import BLOCKED, NO_DOOR, CampaignStore, Target
from storage.tables import messages, recipients
from tests.support.botapi import BotApiStandin
from tests.support.campaigns import campaign, campaign_content, client_wrote, persona_of
from tests.support.vk_api import VkApiStandin
from tests.support.webserver import web_runtime
from wiring.runtime import Runtime

pytestmark = pytest.mark.anyio
# A Monday, 09:00 UTC: afternoon in Novosibirsk (the company's zone).
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
FOLLOW_UP = {"moment": "test.offer.reminder", "after_hours": 4, "max": 1}


class Clock:
    """The test's time, moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(autouse=True)
def no_content_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """`main()` sets this process's content cache from the environment: off, as the other tests expect."""
    monkeypatch.setenv("TONEBOT_CACHE_DIR", "off")


@pytest.fixture
async def vk() -> AsyncIterator[VkApiStandin]:
    async with VkApiStandin() as standin:
        yield standin


def runtime_with(tmp_path: Path, *campaigns: dict[str, Any], files: dict[str, str] | None = None) -> Runtime:
    return web_runtime(tmp_path, campaign_content(tmp_path, *campaigns, files=files))


@contextlib.contextmanager
def closing(runtime: Runtime) -> Iterator[Runtime]:
    try:
        yield runtime
    finally:
        runtime.close()


def outbounds(runtime: Runtime, api: BotApiStandin, vk: VkApiStandin) -> dict[str, Outbound]:
    """The adapters' own Outbounds pointed at the stand-ins."""
    telegram = AiogramOutbound(make_bot(TelegramSettings(api.token, api.base_url)))
    gateway = make_gateway(runtime.service, VkSettings(vk.token, vk.group_id, vk.base_url))
    return {"telegram": telegram, "vk": gateway.outbound}


async def send(
    runtime: Runtime,
    api: BotApiStandin,
    vk: VkApiStandin,
    clock: Clock,
    campaign_id: str,
    *,
    enqueue: bool = True,
) -> CampaignSender:
    """Queue the campaign's audience (at the clock's time) and send what is due."""
    store = campaign_store(runtime)
    if enqueue:
        found = runtime.content.get().campaigns.get(campaign_id)
        assert found is not None
        store.resume(campaign_id, clock())
        store.enqueue(campaign_id, found.advertising, targets(found, store, clock()), clock())
    used = outbounds(runtime, api, vk)
    sender = CampaignSender(store, runtime.engine, used, clock=clock)
    try:
        await sender.run([campaign_id])
    finally:
        for outbound in used.values():
            await outbound.close()
    return sender


def tg_texts(api: BotApiStandin, chat: int) -> list[str]:
    return [call.text or "" for call in api.sent(chat_id=chat, method="sendMessage")]


def recipient(store: CampaignStore, campaign_id: str, chat: str) -> Any:
    with store.engine.connect() as connection:
        return connection.execute(
            select(recipients).where(recipients.c.campaign == campaign_id, recipients.c.chat_id == chat)
        ).one()


def answer(
    runtime: Runtime, channel: str, chat: str, at: datetime, text: str = "", payload: str | None = None
) -> None:
    """The client answers in the chat; the bot hears it as any message."""
    runtime.service.handle(
        IncomingMessage(
            channel, chat, chat, text, at, message_id=f"answer:{at.timestamp()}", button_payload=payload
        )
    )


def busiest_second(times: Sequence[float]) -> int:
    """The most events in any one-second window."""
    ordered = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_each_open_chat_gets_one_message_in_its_tone_and_the_closed_are_counted(
    tmp_path: Path, api: BotApiStandin, vk: VkApiStandin
) -> None:
    csv = "channel,chat_id,name,time_zone,consent\n" + "".join(
        f"{channel},{chat},,,\n"
        for channel, chat in [
            ("telegram", "101"),
            ("telegram", "102"),
            ("telegram", "103"),
            ("telegram", "104"),
            ("vk", "201"),
            ("vk", "202"),
            ("vk", "203"),
        ]
    )
    spec = campaign("offer", audience={"csv": "offer.csv"})
    with closing(runtime_with(tmp_path, spec, files={"offer.csv": csv})) as runtime:
        for channel, chat, persona in [
            ("telegram", "101", "aggressor"),
            ("telegram", "102", "positive"),
            ("telegram", "103", None),
            ("vk", "201", "aggressor"),
            ("vk", "202", None),
        ]:
            client_wrote(runtime.store, channel, chat, T0 - timedelta(days=1), persona=persona)
        sender = await send(runtime, api, vk, Clock(T0), "offer")
        tones = {
            chat: [persona_of(text) for text in tg_texts(api, int(chat))] for chat in ("101", "102", "103")
        }
        assert tones == {"101": ["aggressor"], "102": ["positive"], "103": ["neutral"]}
        assert [persona_of(m.text) for m in vk.sent(201)] == ["aggressor"]
        assert [persona_of(m.text) for m in vk.sent(202)] == ["neutral"]
        # Chats that never opened the door get nothing, and are counted with the reason.
        assert api.sent(chat_id=104) == [] and vk.sent(203) == []
        store = campaign_store(runtime)
        assert (recipient(store, "offer", "104").status, recipient(store, "offer", "104").reason) == (
            "not_allowed",
            NO_DOOR,
        )
        assert sender.tally.of(SENT) == 5
        # Buttons under the message, in each messenger's own form.
        keyboard = api.sent(chat_id=101)[0].params["reply_markup"]["inline_keyboard"]
        labels = [(b["text"], b["callback_data"]) for row in keyboard for b in row]
        assert labels == [
            ("Перезвоните мне", "campaign:offer:callback"),
            ("Не сейчас", "campaign:offer:later"),
        ]
        vk_labels = [action["label"] for action in vk.sent(201)[0].buttons()]
        assert vk_labels == ["Перезвоните мне", "Не сейчас"]
        # Each message is in the chat's conversation, written by the campaign.
        with store.engine.connect() as connection:
            stored = connection.execute(
                select(messages.c.text).where(
                    messages.c.direction == Direction.OUT, messages.c.author == Author.CAMPAIGN
                )
            ).all()
        assert sorted(row.text for row in stored) == sorted(
            [
                *(t for chat in (101, 102, 103) for t in tg_texts(api, chat)),
                *vk.sent_texts(201),
                *vk.sent_texts(202),
            ]
        )
        # Running it again sends nobody a second message.
        await send(runtime, api, vk, Clock(T0 + timedelta(minutes=5)), "offer")
        assert len(api.sent(method="sendMessage")) == 3 and len(vk.sent()) == 2


async def test_a_follow_up_goes_after_the_hours_without_an_answer_and_never_after_one(
    tmp_path: Path, api: BotApiStandin, vk: VkApiStandin
) -> None:
    spec = campaign("offer", audience={"query": {"channels": ["telegram"]}}, follow_up=FOLLOW_UP)
    with closing(runtime_with(tmp_path, spec)) as runtime:
        for chat in ("101", "102"):
            client_wrote(runtime.store, "telegram", chat, T0 - timedelta(days=1))
        await send(runtime, api, vk, Clock(T0), "offer")
        assert len(tg_texts(api, 101)) == len(tg_texts(api, 102)) == 1
        # 102 presses «Не сейчас» an hour later.
        answer(runtime, "telegram", "102", T0 + timedelta(hours=1), payload="campaign:offer:later")
        store = campaign_store(runtime)
        assert recipient(store, "offer", "102").status == "replied"
        await send(runtime, api, vk, Clock(T0 + timedelta(hours=3)), "offer", enqueue=False)
        assert len(tg_texts(api, 101)) == 1  # not yet
        await send(runtime, api, vk, Clock(T0 + timedelta(hours=4, minutes=1)), "offer", enqueue=False)
        assert [text.startswith("Напоминаем") for text in tg_texts(api, 101)] == [False, True]
        assert len(tg_texts(api, 102)) == 1
        # At most one follow-up.
        await send(runtime, api, vk, Clock(T0 + timedelta(hours=30)), "offer", enqueue=False)
        assert len(tg_texts(api, 101)) == 2
        assert (
            recipient(store, "offer", "101").steps_sent == 2
            and recipient(store, "offer", "101").next_at is None
        )


async def test_a_client_who_said_stop_gets_nothing_from_a_later_campaign(
    tmp_path: Path, api: BotApiStandin, vk: VkApiStandin
) -> None:
    first = campaign("first", purpose="advertising", audience={"csv": "first.csv"})
    second = campaign("second", audience={"query": {"channels": ["telegram", "vk"]}}, message="test.notice")
    csv = "channel,chat_id,consent\ntelegram,101,yes\ntelegram,102,yes\n"
    with closing(runtime_with(tmp_path, first, second, files={"first.csv": csv})) as runtime:
        for chat in ("101", "102"):
            client_wrote(runtime.store, "telegram", chat, T0 - timedelta(days=1))
        await send(runtime, api, vk, Clock(T0), "first")
        first_keyboard = api.sent(chat_id=101)[0].params["reply_markup"]["inline_keyboard"]
        assert [b["callback_data"] for row in first_keyboard for b in row][-1:] == ["campaign:first:stop"]
        answer(runtime, "telegram", "101", T0 + timedelta(minutes=10), payload="campaign:first:stop")
        await send(runtime, api, vk, Clock(T0 + timedelta(days=2)), "second")
        # Only the first campaign's message ever reached 101 (the bot's answer to СТОП went in the dialog).
        assert len(tg_texts(api, 101)) == 1 and "работах" not in tg_texts(api, 101)[0]
        assert recipient(campaign_store(runtime), "second", "101").status == "opted_out"
        assert any("работах" in text for text in tg_texts(api, 102))


async def test_sends_keep_to_the_campaigns_rate_at_the_messengers(
    tmp_path: Path, api: BotApiStandin, vk: VkApiStandin
) -> None:
    spec = campaign("offer", rate={"telegram": 5, "vk": 4})
    with closing(runtime_with(tmp_path, spec)) as runtime:
        for n in range(14):
            client_wrote(runtime.store, "telegram", str(300 + n), T0 - timedelta(days=1))
        for n in range(11):
            client_wrote(runtime.store, "vk", str(400 + n), T0 - timedelta(days=1))
        await send(runtime, api, vk, Clock(T0), "offer")
        telegram = [call.at for call in api.sent(method="sendMessage")]
        vk_calls = [call.at for call in vk.calls if call.via == "http"]
        assert len(telegram) == 14 and len(vk.sent()) == 11
        assert busiest_second(telegram) <= 5
        assert busiest_second(vk_calls) <= 4
        assert busiest_second([message.at for message in vk.sent()]) <= 4


async def test_quiet_hours_in_the_clients_zone_postpone_the_message(
    tmp_path: Path, api: BotApiStandin, vk: VkApiStandin
) -> None:
    hours = {"business": "09:00-20:00", "quiet": "21:00-09:00", "days": "mon-sun"}
    csv = "channel,chat_id,time_zone\ntelegram,101,Asia/Vladivostok\ntelegram,102,Europe/Moscow\n"
    spec = campaign("offer", audience={"csv": "offer.csv"}, hours=hours)
    with closing(runtime_with(tmp_path, spec, files={"offer.csv": csv})) as runtime:
        for chat in ("101", "102"):
            client_wrote(runtime.store, "telegram", chat, T0 - timedelta(days=1))
        noon_utc = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 22:00 in Vladivostok, 15:00 in Moscow
        sender = await send(runtime, api, vk, Clock(noon_utc), "offer")
        assert tg_texts(api, 101) == [] and len(tg_texts(api, 102)) == 1
        assert sender.tally.of("postponed") == 1
        store = campaign_store(runtime)
        morning = datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # 09:00 in Vladivostok
        assert recipient(store, "offer", "101").next_at.replace(tzinfo=UTC) == morning
        await send(runtime, api, vk, Clock(morning - timedelta(minutes=30)), "offer", enqueue=False)
        assert tg_texts(api, 101) == []
        await send(runtime, api, vk, Clock(morning), "offer", enqueue=False)
        assert len(tg_texts(api, 101)) == 1


async def test_a_blocked_bot_or_closed_messages_mark_the_recipient_not_allowed(
    tmp_path: Path, api: BotApiStandin, vk: VkApiStandin
) -> None:
    with closing(runtime_with(tmp_path, campaign("offer"))) as runtime:
        client_wrote(runtime.store, "telegram", "101", T0 - timedelta(days=1))
        client_wrote(runtime.store, "vk", "201", T0 - timedelta(days=1))
        api.block_chat(101)
        vk.deny_messages(201, event=False)
        sender = await send(runtime, api, vk, Clock(T0), "offer")
        store = campaign_store(runtime)
        for chat in ("101", "201"):
            assert (recipient(store, "offer", chat).status, recipient(store, "offer", chat).reason) == (
                "not_allowed",
                BLOCKED,
            )
        assert sender.tally.of("refused") == 2 and sender.tally.of(SENT) == 0
        # A later campaign sees the door closed until the client writes again.
        store.start("later", T0)
        store.enqueue(
            "later", False, targets(runtime.content.get().campaigns.campaigns["offer"], store, T0), T0
        )
        assert recipient(store, "later", "101").reason == BLOCKED


def test_lint_lists_campaigns_and_says_where_a_file_is_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = campaign_content(tmp_path, campaign("offer", follow_up=FOLLOW_UP))
    assert main(["--content", str(content), "campaigns", "lint"]) == 0
    shown = capsys.readouterr().out
    assert "offer — Тест offer" in shown and "[Перезвоните мне] [Не сейчас]" in shown
    assert "test.offer.reminder" in shown and "telegram 15/s" in shown
    broken = content / "campaigns" / "tests.yaml"
    broken.write_text(
        broken.read_text(encoding="utf-8").replace("purpose: service", "purpose: spam"), encoding="utf-8"
    )
    assert main(["--content", str(content), "campaigns", "lint"]) == 1
    assert f"{broken}:" in capsys.readouterr().out


def test_preview_shows_each_personas_message_and_follow_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = campaign_content(tmp_path, campaign("offer", follow_up=FOLLOW_UP))
    assert main(["--content", str(content), "campaigns", "preview", "offer", "--persona", "aggressor"]) == 0
    shown = capsys.readouterr().out
    assert "По делу: «Сибирские сети» предлагает" in shown and "По делу: предложение" in shown
    assert "[Перезвоните мне] [Не сейчас]" in shown and "follow-up 1, 4 h later" in shown
    assert main(["--content", str(content), "campaigns", "preview", "nothing"]) == 2


async def test_a_serving_sender_writes_at_once_when_a_trigger_event_wakes_it(
    tmp_path: Path, api: BotApiStandin, vk: VkApiStandin
) -> None:
    spec = campaign("missed", audience={"triggered": True}, message="test.notice") | {
        "trigger": "missed_call"
    }
    with closing(runtime_with(tmp_path, spec)) as runtime:
        client_wrote(runtime.store, "telegram", "101", datetime.now(UTC) - timedelta(days=1))
        store = campaign_store(runtime)
        store.start("missed", datetime.now(UTC))
        used = outbounds(runtime, api, vk)
        # Polling rarely: only the wake-up can make it write within the test.
        sender = CampaignSender(store, runtime.engine, used, poll_s=120)
        app = SimpleNamespace(state=SimpleNamespace(campaign_listeners=[]))
        listen(app, sender)
        stop = asyncio.Event()
        serving = asyncio.create_task(sender.run_forever(stop))
        try:
            await asyncio.sleep(0.2)  # idle, waiting
            queued = store.enqueue_for_event(
                "missed", False, "missed_call", "call-1", "{}", [Target("telegram", "101")], datetime.now(UTC)
            )
            assert queued.status == "queued"
            for wake in app.state.campaign_listeners:
                wake()
            calls = await api.wait_for_sent(1, chat_id=101, timeout=5)
            assert "работ" in (calls[0].text or "")
        finally:
            stop.set()
            await asyncio.wait_for(serving, 10)
            for outbound in used.values():
                await outbound.close()
        assert recipient(store, "missed", "101").status == "sent"


def test_run_pause_resume_and_status_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in (
        "TELEGRAM_BOT_TOKEN",
        "VK_GROUP_TOKEN",
        "MAX_BOT_TOKEN",
        "WHATSAPP_TOKEN",
        "DATABASE_URL",
    ):
        monkeypatch.delenv(variable, raising=False)
    with closing(
        runtime_with(tmp_path, campaign("offer", audience={"query": {"channels": ["telegram"]}}))
    ) as runtime:
        for chat in ("101", "102"):
            client_wrote(runtime.store, "telegram", chat, T0)
        db = str(runtime.store.engine.url.database)
        content = str(runtime.content.directory)

    def tonebot(*args: str) -> tuple[int, str]:
        code = main(["--content", content, "campaigns", *args, "--db", db])
        return code, capsys.readouterr().out

    code, shown = tonebot("run", "offer")
    assert code == 0
    assert "offer: audience of 2: queued 2" in shown
    assert "telegram: 2 message(s) wait; set TELEGRAM_BOT_TOKEN" in shown
    assert "offer — Тест offer (running)" in shown
    assert [line.split() for line in shown.splitlines() if line.startswith(("status", "queued"))] == [
        ["status", "telegram", "total"],
        ["queued", "2", "2"],
    ]
    assert tonebot("pause", "offer")[0] == 0
    assert "(paused)" in tonebot("status", "offer")[1]
    code, shown = tonebot("resume", "offer")
    assert code == 0 and "audience of" not in shown and "(running)" in shown
    code, shown = tonebot("status")
    assert code == 0 and "offer — Тест offer (running)" in shown
    assert tonebot("pause", "nothing")[0] == 2
