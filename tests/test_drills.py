"""Failure drills that really happen: the database turns read-only mid-dialog, Telegram fails for a
minute. Real PostgreSQL, aiogram's own client against the Bot API stand-in."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, select

from dialogs.engine import Engine
from dialogs.service import ConversationService
from storage import SqlStore, connect
from storage.locks import chat_locks_for
from storage.tables import messages
from tests.support.botapi import BotApiStandin
from tests.support.databases import fresh_postgres, read_only
from tests.test_telegram_standin import FAST, aiogram_polling

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
CHAT = 9001
OUTAGE_S = 60.0


@contextmanager
def postgres_service(engine: Engine) -> Iterator[tuple[ConversationService, str]]:
    with fresh_postgres() as url:
        store = SqlStore(connect(url))
        yield ConversationService(engine, store, chat_locks_for(store.engine)), url


async def test_database_read_only_mid_dialog_apologises_keeps_and_recovers(
    api: BotApiStandin, engine: Engine
) -> None:
    with postgres_service(engine) as (service, url):
        async with aiogram_polling(api, service, FAST) as polling:
            polling.gateway.retry_base_s, polling.gateway.max_retry_s, polling.gateway.handle_attempts = (
                0.05,
                0.5,
                2,
            )
            api.add_message(CHAT, "не работает интернет")
            await api.wait_for_sent(1, 15, chat_id=CHAT, method="sendMessage")
            read_only(url, True)
            api.add_message(CHAT, "договор 7654321")
            api.add_message(CHAT, "все горят")
            await api.wait_for_sent(2, 15, chat_id=CHAT, method="sendMessage")
            assert "сбой" in api.sent_texts(CHAT)[1], "a short apology from the guides"
            await asyncio.sleep(2)
            assert len(api.sent_texts(CHAT)) == 2, "nothing else is said while the database is read-only"
            read_only(url, False)
            await api.wait_for_sent(4, 30, chat_id=CHAT, method="sendMessage")
        replies = api.sent_texts(CHAT)
        assert "Все лампочки горят" in str(api.sent(CHAT, "sendMessage")[2].params)
        assert "7654321" in replies[3], (
            "the held messages were answered, in order, once the database returned"
        )
        engine_db = create_engine(url)
        with engine_db.connect() as connection:
            stored = connection.execute(
                select(messages.c.text, messages.c.handled)
                .where(messages.c.direction == "in")
                .order_by(messages.c.id)
            ).all()
        engine_db.dispose()
        assert [(row.text, row.handled) for row in stored] == [
            ("не работает интернет", True),
            ("договор 7654321", True),
            ("все горят", True),
        ]


async def test_telegram_failing_for_a_minute_then_replies_arrive_in_order(
    api: BotApiStandin, engine: Engine, tmp_path: object
) -> None:
    with postgres_service(engine) as (service, _url):
        async with aiogram_polling(api, service, FAST):
            api.add_message(CHAT, "привет")
            await api.wait_for_sent(1, 15, chat_id=CHAT, method="sendMessage")
            api.fail_for(OUTAGE_S, "sendMessage", 502)
            started = time.monotonic()
            lines = ["не работает интернет", "договор 7654321", "все горят"]
            for line in lines:
                api.add_message(CHAT, line)
            await asyncio.sleep(OUTAGE_S / 2)
            assert len(api.sent_texts(CHAT)) == 1, "nothing gets through during the outage"
            await api.wait_for_sent(4, OUTAGE_S + 30, chat_id=CHAT, method="sendMessage")
            recovered = time.monotonic() - started
        replies = api.sent_texts(CHAT)
        assert "договор" in replies[1].lower() and "7654321" in replies[3]
        failed = [call for call in api.calls if call.method == "sendMessage" and call.status == 502]
        assert failed, "the outage really refused sends"
        assert recovered < OUTAGE_S + 15, f"delivered {recovered - OUTAGE_S:.1f} s after the outage ended"
