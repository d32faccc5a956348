"""Throughput and latency of tonebot's Telegram polling loop against the local Bot API stand-in.

    python -m bench.telegram_polling [--chats 200] [--rounds 3] [--limits telegram|off] [--json]

Each chat sends a three-step "no internet" dialog; a message's latency runs from the moment the update is
queued in the stand-in to the moment the stand-in receives the matching reply. With `--limits telegram`
the bot keeps to Telegram's limits (one message a second per chat, thirty a second overall), which then
bound the throughput; `off` measures tonebot's own capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from bot.telegram.limits import RateLimits
from bot.telegram.runner import TelegramSettings, make_bot, make_dispatcher
from dialogs.content import LiveContent
from dialogs.engine import Engine
from dialogs.service import ConversationService
from storage import SqlStore, connect
from storage.database import sqlite_url
from tests.support.botapi import BotApiStandin

SCRIPT = ("не работает интернет", "договор {chat}00", "2")


async def measure(chats: int, rounds: int, limits: RateLimits, db: Path) -> dict[str, float]:
    """Run the dialogs and return throughput and latency figures."""
    service = ConversationService(Engine(LiveContent()), SqlStore(connect(sqlite_url(str(db)))))
    async with BotApiStandin() as api:
        bot = make_bot(TelegramSettings(api.token, api.base_url))
        dispatcher = make_dispatcher(service, bot, limits)
        polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False, polling_timeout=1))
        queued: dict[tuple[int, int], float] = {}
        started = time.monotonic()
        for step in range(rounds):
            for chat in range(1, chats + 1):
                api.add_message(100_000 + chat, SCRIPT[step % len(SCRIPT)].format(chat=chat))
                queued[(100_000 + chat, step)] = time.monotonic()
        total = chats * rounds
        await api.wait_for_sent(total, timeout=600, method="sendMessage")
        elapsed = time.monotonic() - started
        latencies = []
        for chat in range(1, chats + 1):
            for step, at in enumerate(api.send_times(100_000 + chat)[:rounds]):
                latencies.append(at - queued[(100_000 + chat, step)])
        await dispatcher.stop_polling()
        await polling
        await bot.session.close()
    latencies.sort()
    return {
        "chats": chats,
        "messages": total,
        "msgs_per_s": round(total / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        "seconds": round(elapsed, 2),
    }


def main() -> None:
    """Parse arguments, run, print a table or JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limits", choices=["telegram", "off"], default="off")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    limits = RateLimits() if args.limits == "telegram" else RateLimits(0.0, 1_000_000)
    with tempfile.TemporaryDirectory() as directory:
        result = asyncio.run(measure(args.chats, args.rounds, limits, Path(directory) / "bench.db"))
    result["limits"] = args.limits  # type: ignore[assignment]
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<12}{value}")


if __name__ == "__main__":
    main()
