"""Several worker processes on one PostgreSQL database behind a round-robin proxy, fed by the Bot API
stand-in: each chat handled in order and once, every reply delivered, and a `kill -9` drill.

Starts real `tonebot worker` processes, a proxy and the stand-in on 127.0.0.1; needs PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bench.cluster import Cluster, cluster
from common.text import clean
from tests.support.databases import fresh_postgres

pytestmark = [pytest.mark.anyio, pytest.mark.subprocess]


def lines_for(chat: int) -> list[str]:
    """What one client writes, each line of a distinct length so the order can be checked."""
    return [
        "здравствуйте",
        "не работает интернет",
        f"договор {1_000_000 + chat}",
        "все горят",
        "нет, не помогло.",
        f"жду ответа, чат №{chat}",
        "спасибо",
        f"до свидания, {chat}",
    ]


async def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def settled(group: Cluster, expected_in: int) -> Callable[[], bool]:
    def check() -> bool:
        counts = group.counts()
        done = counts.get("in_handled", 0) == expected_in and not counts.get("in_waiting")
        return done and not counts.get("out_pending") and not counts.get("out_sending")

    return check


def conversations(url: str) -> dict[int, tuple[dict[str, object], list[str]]]:
    """Per chat: the engine's state and the bot's stored replies in order."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            states = connection.execute(text("SELECT id, chat_id, state_json FROM conversations")).all()
            found = {}
            for conversation_id, chat_id, state_json in states:
                replies = connection.execute(
                    text(
                        "SELECT text FROM messages WHERE conversation_id = :c AND direction = 'out' "
                        "ORDER BY id"
                    ),
                    {"c": conversation_id},
                ).scalars()
                found[int(chat_id)] = (json.loads(state_json), list(replies))
    finally:
        engine.dispose()
    return found


def is_subsequence(wanted: list[str], seen: list[str]) -> bool:
    remaining = iter(seen)
    return all(any(item == other for other in remaining) for item in wanted)


def check_each_chat(group: Cluster, url: str, chats: range) -> int:
    """Every message handled once and in order; every stored reply delivered, in order. Returns how many
    replies reached a chat more than once (a worker killed between sending and recording it)."""
    found = conversations(url)
    assert sorted(found) == list(chats), "one conversation per chat"
    duplicates = 0
    for chat in chats:
        state, replies = found[chat]
        assert state["turns"] == len(lines_for(chat)), f"chat {chat} handled {state['turns']} times"
        # The persona memory notes each message's length in the order the turns ran.
        heard = [length for _, length in state["persona_memory"]["asking"]]  # type: ignore[index]
        assert heard == [len(clean(line)) for line in lines_for(chat)], f"chat {chat} out of order"
        sent = group.api.sent_texts(chat)
        assert replies, chat
        assert not Counter(replies) - Counter(sent), f"chat {chat}: replies never delivered"
        assert is_subsequence(replies, sent), f"chat {chat}: replies delivered out of order"
        duplicates += len(sent) - len(replies)
    return duplicates


async def test_bursts_through_four_workers_are_handled_in_order_and_once(tmp_path: Path) -> None:
    chats = range(5001, 5021)
    with fresh_postgres() as url:
        async with cluster(4, url, tmp_path) as group:
            for round_ in range(len(lines_for(0))):
                for chat in chats:
                    group.api.add_message(chat, lines_for(chat)[round_])
            expected = len(chats) * len(lines_for(0))
            await eventually(settled(group, expected), 120, "every message handled and every reply sent")
            assert check_each_chat(group, url, chats) == 0
            assert group.counts()["out_sent"] >= expected


async def test_kill_9_of_a_worker_mid_burst_loses_nothing(tmp_path: Path) -> None:
    chats = range(6001, 6031)
    with fresh_postgres() as url:
        async with cluster(4, url, tmp_path, stale_claim_s=3.0) as group:
            for round_ in range(len(lines_for(0))):
                for chat in chats:
                    group.api.add_message(chat, lines_for(chat)[round_])
            expected = len(chats) * len(lines_for(0))
            await eventually(
                lambda: len(group.api.webhook_deliveries) >= expected // 3, 60, "a third delivered"
            )
            group.kill(1)
            await eventually(settled(group, expected), 180, "the others finishing the work")
            duplicates = check_each_chat(group, url, chats)
            print(f"kill -9 drill: {expected} messages, {duplicates} replies delivered twice, "
                  f"{group.balancer.failovers} POSTs moved to another worker")  # fmt: skip
            # A reply sent by the killed worker just before it could record the send goes out again.
            assert duplicates <= 1, duplicates
            assert not group.api.webhook_failed, "every update was taken by some worker"
