"""Flood control: a client writing 50 messages a second is answered once, politely; everything is stored,
and other chats are not slowed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dialogs.engine import FLOOD_BURST, Engine
from dialogs.service import ConversationService
from storage import SqlStore, connect
from storage.database import sqlite_url
from storage.tables import conversations, messages
from tests.conftest import Dialog
from tests.support.botapi import BotApiStandin
from tests.test_telegram_standin import FAST, aiogram_polling

FLOOD = 50


def test_a_flood_is_answered_once_politely_then_the_bot_listens_again(engine: Engine) -> None:
    dialog = Dialog(engine)
    answered = [bool(dialog.send(f"сообщение номер {n}", after=0.02).replies) for n in range(FLOOD)]
    assert answered[:FLOOD_BURST] == [True] * FLOOD_BURST
    polite = [turn for turn in dialog.turns if turn.explain.get("flood") and turn.replies]
    assert len(polite) == 1 and "одним сообщением" in polite[0].replies[0].text
    assert sum(answered) == FLOOD_BURST + 1
    assert dialog.state.turns == FLOOD, "every message went through the engine's door"
    calm = dialog.send("не работает интернет", after=10)
    assert calm.replies and not calm.explain.get("flood")


def test_a_talker_writing_fast_is_not_cut_off(engine: Engine) -> None:
    dialog = Dialog(engine)
    for text in [
        "привет",
        "у меня тут такое",
        "интернет пропал",
        "совсем",
        "вчера ещё работал",
        "договор 7654321",
    ]:
        dialog.send(text, after=2)
    assert not any(turn.explain.get("flood") for turn in dialog.turns)


@pytest.mark.anyio
async def test_a_flooding_chat_does_not_slow_others(
    api: BotApiStandin, tmp_path: Path, engine: Engine
) -> None:
    store = SqlStore(connect(sqlite_url(str(tmp_path / "flood.db"))))
    service = ConversationService(engine, store)
    async with aiogram_polling(api, service, FAST):
        for n in range(FLOOD):
            api.add_message(7001, f"спам {n}")
        started = time.monotonic()
        api.add_message(7002, "не работает интернет")
        await api.wait_for_sent(1, 10, chat_id=7002, method="sendMessage")
        other_waited = time.monotonic() - started
        await api.wait_until_consumed(10)
        await asyncio.sleep(0.5)
        await api.wait_for_sent(FLOOD_BURST, 10, chat_id=7001, method="sendMessage")
    flood_replies = api.sent_texts(7001)
    assert len(flood_replies) <= FLOOD_BURST + 1
    assert any("одним сообщением" in text for text in flood_replies)
    assert "договор" in api.sent_texts(7002)[0].lower()
    assert other_waited < 5, other_waited
    with store.engine.connect() as connection:
        stored = connection.execute(
            select(func.count())
            .select_from(messages.join(conversations, conversations.c.id == messages.c.conversation_id))
            .where(conversations.c.chat_id == "7001", messages.c.direction == "in")
        ).scalar_one()
    assert stored == FLOOD
