"""Throughput and latency of tonebot's Telegram polling loop against the local Bot API stand-in.

    python -m bench.telegram_polling [--chats 200] [--rounds 3] [--limits telegram|off] [--json]

Each chat sends a three-step "no internet" dialog, writing its next message once the reply to the
previous one arrived (`--burst` queues everything at once instead); a message's latency runs from the
moment the update is queued in the stand-in to the moment the stand-in receives the matching reply.
With `--limits telegram` the bot keeps to Telegram's limits (one message a second per chat, thirty a
second overall), which then bound the throughput; `off` measures tonebot's own capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from aiogram import Dispatcher, Router
from aiogram.types import Message

from bot.telegram.limits import RateLimits
from bot.telegram.runner import TelegramSettings, make_bot, make_dispatcher
from dialogs.content import LiveContent
from dialogs.engine import Engine
from dialogs.service import ConversationService
from storage import SqlStore, connect
from storage.database import sqlite_url
from tests.support.botapi import BotApiStandin

SCRIPT = ("не работает интернет", "договор {chat}00", "2")


class ReplyWatch:
    """Reads the stand-in's call log once per tick and wakes the chats that got a reply (cheap for 1000s)."""

    def __init__(self, api: BotApiStandin) -> None:
        self.api = api
        self.read = 0
        self.arrivals: dict[int, list[float]] = {}
        self.events: dict[int, asyncio.Event] = {}

    async def run(self) -> None:
        while True:
            calls = self.api.calls
            for call in calls[self.read :]:
                if call.method == "sendMessage" and call.ok and call.chat_id is not None:
                    self.arrivals.setdefault(call.chat_id, []).append(call.at)
                    self.events.setdefault(call.chat_id, asyncio.Event()).set()
            self.read = len(calls)
            await asyncio.sleep(0.002)

    async def reply(self, chat: int, count: int) -> float:
        while len(self.arrivals.get(chat, ())) < count:
            event = self.events.setdefault(chat, asyncio.Event())
            event.clear()
            await event.wait()
        return self.arrivals[chat][count - 1]


async def _paced_chat(
    api: BotApiStandin, watch: ReplyWatch, chat: int, rounds: int, latencies: list[float]
) -> None:
    for step in range(rounds):
        queued = time.monotonic()
        api.add_message(chat, SCRIPT[step % len(SCRIPT)].format(chat=chat))
        latencies.append(await watch.reply(chat, step + 1) - queued)


def echo_dispatcher() -> Dispatcher:
    """A bare aiogram echo bot: the same harness without tonebot, to compare against."""
    router = Router(name="echo")

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    return dispatcher


async def measure(
    chats: int, rounds: int, limits: RateLimits, db: Path, *, paced: bool, echo: bool = False
) -> dict[str, float]:
    """Run the dialogs and return throughput and latency figures (`echo`: the bare echo bot instead)."""
    async with BotApiStandin() as api:
        bot = make_bot(TelegramSettings(api.token, api.base_url))
        if echo:
            dispatcher = echo_dispatcher()
        else:
            service = ConversationService(Engine(LiveContent()), SqlStore(connect(sqlite_url(str(db)))))
            dispatcher = make_dispatcher(service, bot, limits)
        polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False, polling_timeout=1))
        queued: dict[tuple[int, int], float] = {}
        latencies: list[float] = []
        total = chats * rounds
        started = time.monotonic()
        if paced:
            # Each chat writes its next message when the reply to the previous one has arrived.
            watch = ReplyWatch(api)
            watcher = asyncio.create_task(watch.run())
            await asyncio.gather(
                *(_paced_chat(api, watch, 100_000 + c, rounds, latencies) for c in range(1, chats + 1))
            )
            watcher.cancel()
        else:
            for step in range(rounds):
                for chat in range(1, chats + 1):
                    api.add_message(100_000 + chat, SCRIPT[step % len(SCRIPT)].format(chat=chat))
                    queued[(100_000 + chat, step)] = time.monotonic()
            await api.wait_for_sent(total, timeout=600, method="sendMessage")
            for chat in range(1, chats + 1):
                for step, at in enumerate(api.send_times(100_000 + chat)[:rounds]):
                    latencies.append(at - queued[(100_000 + chat, step)])
        elapsed = time.monotonic() - started
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
    parser.add_argument("--burst", action="store_true", help="queue every message at once instead of pacing")
    parser.add_argument("--echo", action="store_true", help="measure a bare aiogram echo bot instead")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    limits = RateLimits() if args.limits == "telegram" else RateLimits(0.0, 1_000_000)
    with tempfile.TemporaryDirectory() as directory:
        db = Path(directory) / "bench.db"
        result = asyncio.run(
            measure(args.chats, args.rounds, limits, db, paced=not args.burst, echo=args.echo)
        )
    result["limits"] = args.limits  # type: ignore[assignment]
    result["mode"] = "burst" if args.burst else "paced"  # type: ignore[assignment]
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<12}{value}")


if __name__ == "__main__":
    main()
