"""Messages a second with 1, 2 and 4 `tonebot worker` processes on PostgreSQL.

Each run starts fresh workers on a fresh database behind a round-robin proxy, fed by the Bot API
stand-in (which, like Telegram, delivers a bot's webhook updates one at a time). A burst of N chats x M
messages is queued at once; we time until every message is handled and every reply delivered. Sending
limits are lifted (`--send-rate`, `--chat-interval`): they measure Telegram's rules, not tonebot.
Run: `python -m bench.workers [--chats 100] [--messages 8] [--workers 1 2 4] [--json]` (needs PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from bench.cluster import cluster
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


async def one_run(workers: int, chats: int, messages: int) -> dict[str, float]:
    """Throughput of one cluster size."""
    with fresh_postgres() as url, tempfile.TemporaryDirectory() as work:
        async with cluster(workers, url, Path(work), extra_args=UNLIMITED, threads=6) as group:
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


def main() -> None:
    parser = argparse.ArgumentParser(description="tonebot workers on PostgreSQL: messages a second")
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--messages", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = parser.parse_args()
    results = [asyncio.run(one_run(n, args.chats, args.messages)) for n in args.workers]
    print(f"{'workers':>8} {'messages':>9} {'handled/s':>10} {'e2e/s':>8} {'replies':>8}")
    for r in results:
        print(
            f"{r['workers']:>8} {r['messages']:>9} {r['handled_msgs_per_s']:>10} "
            f"{r['e2e_msgs_per_s']:>8} {r['replies']:>8}"
        )
    if args.json:
        print(json.dumps({f"workers_{r['workers']}": r for r in results}))


if __name__ == "__main__":
    main()
