"""Messages a second with 1, 2 and 4 `tonebot worker` processes on PostgreSQL, and database round trips
per handled message.

Each run starts fresh workers on a fresh database behind a round-robin proxy, fed by the Bot API
stand-in (which, like Telegram, delivers a bot's webhook updates one at a time). A burst of N chats x M
messages is queued at once; we time until every message is handled and every reply delivered. Sending
limits are lifted (`--send-rate`, `--chat-interval`): they measure Telegram's rules, not tonebot.

Round trips are counted by a TCP proxy in front of PostgreSQL (bench/roundtrips.py), in runs of their
own (the proxy's CPU would slow the timed runs): the handling path alone (the service's `accept` of
every message, then `process_pending` of each chat, as a worker calls them), and one worker's whole
traffic in the same burst (storing, handling, the outbox's claims and sends, the sweeper, connecting).
Run: `python -m bench.workers [--chats 100] [--messages 8] [--workers 1 2 4] [--json]` (needs PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.cluster import cluster
from bench.roundtrips import counting
from tests.support.databases import fresh_postgres

LINES = [
    "здравствуйте",
    "не работает интернет",
    "договор {n}",
    "все горят",
    "нет, не помогло",
    "жду",
    "спасибо",
    "пока",
]
UNLIMITED = ("--send-rate", "100000", "--chat-interval", "0")


async def _burst(
    workers: int, chats: int, messages: int, url: str, workers_url: str | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as work:
        async with cluster(
            workers, url, Path(work), extra_args=UNLIMITED, threads=6, workers_database_url=workers_url
        ) as group:
            total = chats * messages
            started = time.perf_counter()
            for index in range(messages):
                line = LINES[index % len(LINES)]
                for chat in range(chats):
                    group.api.add_message(10_000 + chat, line.format(n=2_000_000 + chat))
            handled_at = None
            while True:
                counts = group.counts()
                if handled_at is None and counts.get("in_handled", 0) >= total:
                    handled_at = time.perf_counter()
                if handled_at and not counts.get("out_pending") and not counts.get("out_sending"):
                    break
                await asyncio.sleep(0.05)
            finished = time.perf_counter()
            return {
                "workers": workers,
                "messages": total,
                "handled_msgs_per_s": round(total / (handled_at - started), 1),
                "e2e_msgs_per_s": round(total / (finished - started), 1),
                "replies": counts.get("out_sent", 0),
            }


async def one_run(workers: int, chats: int, messages: int) -> dict[str, Any]:
    """Throughput of one cluster size."""
    with fresh_postgres() as url:
        return await _burst(workers, chats, messages, url, None)


async def worker_round_trips(chats: int, messages: int) -> float:
    """One worker's database round trips (all of its traffic) per handled message, in the same burst."""
    with fresh_postgres() as url:
        async with counting(url) as proxy:
            result = await _burst(1, chats, messages, url, proxy.url)
            return round(proxy.round_trips / result["messages"], 2)


async def handling_round_trips(chats: int, messages: int) -> dict[str, float]:
    """Round trips per message of `accept` then `process_pending` of each chat's batch (every message
    stored first), and one message at a time: `receive` (stored and handled in one transaction, as a
    worker does when the chat has nothing else waiting), and `accept` then `process_pending`."""
    from dialogs.content import LiveContent
    from dialogs.engine import Engine
    from dialogs.service import ConversationService
    from storage import SqlStore, connect
    from storage.locks import chat_locks_for

    loop = asyncio.get_running_loop()
    found: dict[str, float] = {}
    with fresh_postgres() as url:
        engine = Engine(LiveContent())
        async with counting(url) as proxy:
            # Everything that talks to the database runs off the loop: the proxy serves on it.
            store = SqlStore(await loop.run_in_executor(None, connect, proxy.url))
            service = ConversationService(engine, store, chat_locks_for(store.engine))
            start = datetime(2026, 12, 7, 9, tzinfo=UTC)

            def message(chat: int, index: int) -> Any:
                from common.messages import IncomingMessage

                text = LINES[index % len(LINES)].format(n=2_000_000 + chat)
                at = start + timedelta(seconds=30 * index)
                return IncomingMessage("telegram", str(chat), str(chat), text, at, f"msg:{index}")

            def batches() -> None:
                for index in range(messages):
                    for chat in range(chats):
                        service.accept(message(chat, index))

            def handle_batches() -> None:
                for chat in range(chats):
                    service.process_pending("telegram", str(chat))

            def one_by_one() -> None:
                # As a worker receives a message whose chat has nothing else waiting.
                for index in range(messages):
                    for chat in range(chats, 2 * chats):
                        service.receive(message(chat, index))

            def accept_then_process() -> None:
                # Stored, then handled in a transaction of its own (how a worker did it before `receive`).
                for index in range(messages):
                    for chat in range(2 * chats, 3 * chats):
                        service.accept(message(chat, index))
                        service.process_pending("telegram", str(chat))

            # Connections opened first: a worker keeps its pool.
            await loop.run_in_executor(None, lambda: service.process_pending("telegram", "warm-up"))
            total = chats * messages
            for name, step in (
                ("accept", batches),
                ("process_batch", handle_batches),
                ("one_by_one", one_by_one),
                ("accept_then_process", accept_then_process),
            ):
                before = proxy.round_trips
                await loop.run_in_executor(None, step)
                found[name] = round((proxy.round_trips - before) / total, 2)
            await loop.run_in_executor(None, store.engine.dispose)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description="tonebot workers on PostgreSQL: messages a second")
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--messages", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--no-round-trips", action="store_true", help="skip counting round trips")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = parser.parse_args()
    results = [asyncio.run(one_run(n, args.chats, args.messages)) for n in args.workers]
    print(f"{'workers':>8} {'messages':>9} {'handled/s':>10} {'e2e/s':>8} {'replies':>8}")
    for r in results:
        print(
            f"{r['workers']:>8} {r['messages']:>9} {r['handled_msgs_per_s']:>10} "
            f"{r['e2e_msgs_per_s']:>8} {r['replies']:>8}"
        )
    report: dict[str, Any] = {f"workers_{r['workers']}": r for r in results}
    if not args.no_round_trips:
        path = asyncio.run(handling_round_trips(args.chats, args.messages))
        whole = asyncio.run(worker_round_trips(args.chats, args.messages))
        print(
            "database round trips per handled message (counted by a TCP proxy): "
            f"accept {path['accept']}, process_pending of a chat's batch {path['process_batch']} "
            f"(accept + process = {round(path['accept'] + path['process_batch'], 2)}); one message at "
            f"a time, stored and handled together {path['one_by_one']} (accept, then process: "
            f"{path['accept_then_process']}); one worker's whole traffic in the burst "
            f"(incl. outbox and sweeper) {whole}"
        )
        report["round_trips"] = {**path, "worker_total": whole}
    if args.json:
        print(json.dumps(report))


if __name__ == "__main__":
    main()
