"""End to end through maxapi: many MAX chats at once, each client answering the bot as a person would.

The MAX side (the MAX Bot API stand-in and the simulated clients writing bench.e2e's STEPS) runs in a
process of its own, as MAX is on other machines; this process runs only the bot under test: tonebot's MAX
adapter (long polling), then maxapi's bare echo bot on the same harness: as the library comes (its
Dispatcher handles each update in turn, after a GET /chats/{id}; what bench.e2e's aiogram echo is to
Telegram), and tuned (no GET /chats, handlers as tasks). The ratio of the throughputs says how much
tonebot's own work costs next to receiving and sending the messages. MAX's sending limits and its two polls
a second are lifted for every bot: they would measure MAX, not the bots.

    python -m bench.e2e_max [--chats 1000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.e2e import STEPS, client_text

# A bot answers within this long or the run is a failure (not a slow figure).
RUN_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class MaxSide:
    """What the clients saw: messages answered and how long it took."""

    messages: int
    seconds: float


async def _clients(chats: int, rounds: int, pipe: Connection) -> None:
    from tests.support.max_api import MaxApiStandin, MaxCall

    class Standin(MaxApiStandin):
        """Wakes the waiting client as soon as the bot writes to its chat."""

        def __init__(self) -> None:
            super().__init__()
            self.replies: dict[int, int] = {}
            self.waiting: dict[int, asyncio.Event] = {}

        def _record(self, call: MaxCall) -> None:
            super()._record(call)
            if call.name == "send_message" and call.ok and call.chat_id is not None:
                self.replies[call.chat_id] = self.replies.get(call.chat_id, 0) + 1
                event = self.waiting.get(call.chat_id)
                if event is not None:
                    event.set()

    async def client(api: Standin, chat: int) -> None:
        for step in range(rounds):
            seen = api.replies.get(chat, 0)
            event = api.waiting[chat] = asyncio.Event()
            api.add_message(chat, client_text(chat, step))
            while api.replies.get(chat, 0) == seen:
                await event.wait()
                event.clear()

    async with Standin() as api:
        pipe.send((api.base_url, api.token))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, pipe.recv)  # the bot is polling: go
        started = time.perf_counter()
        await asyncio.gather(*(client(api, 100_000 + c) for c in range(chats)))
        pipe.send(MaxSide(chats * rounds, time.perf_counter() - started))
        await loop.run_in_executor(None, pipe.recv)  # the bot has stopped polling


def _max_process(chats: int, rounds: int, pipe: Connection) -> None:
    asyncio.run(_clients(chats, rounds, pipe))


async def _tonebot(base_url: str, token: str, db: Path, stop: asyncio.Event) -> None:
    from bot.channels.limits import RateLimits
    from bot.max.runner import run_polling
    from bot.max.settings import MaxSettings
    from dialogs.content import LiveContent
    from dialogs.engine import Engine
    from dialogs.service import ConversationService
    from storage import SqlStore, connect
    from storage.database import sqlite_url

    service = ConversationService(Engine(LiveContent()), SqlStore(connect(sqlite_url(str(db)))))
    settings = MaxSettings(token, base_url)
    await run_polling(service, settings, stop=stop, limits=RateLimits(0.0, 1_000_000), poll_interval_s=0)


async def _echo(base_url: str, token: str, stop: asyncio.Event, *, tuned: bool = False) -> None:
    """maxapi's echo bot: its defaults (each update handled in turn, after a GET /chats/{id} that fills
    in event.chat), or `tuned` (no GET /chats, handlers as tasks: the fastest maxapi echo there is)."""
    from maxapi import Bot, Dispatcher
    from maxapi.types import MessageCreated

    bot = Bot(token, auto_requests=not tuned)
    bot.set_api_url(base_url)
    dispatcher = Dispatcher(use_create_task=tuned)

    @dispatcher.message_created()
    async def echo(event: MessageCreated) -> None:
        body = event.message.body
        await event.message.answer((body.text if body else None) or "…")

    polling = asyncio.create_task(dispatcher.start_polling(bot))
    await stop.wait()
    await dispatcher.stop_polling()
    await polling
    await bot.close_session()


async def _tuned_echo(base_url: str, token: str, stop: asyncio.Event) -> None:
    await _echo(base_url, token, stop, tuned=True)


async def _serve(
    chats: int, rounds: int, bot: Callable[[str, str, asyncio.Event], Coroutine[Any, Any, None]]
) -> tuple[float, float]:
    """Messages a second the clients got answered with `bot` serving them, and the bot's CPU time per
    message (µs)."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    max_side = context.Process(target=_max_process, args=(chats, rounds, theirs), daemon=True)
    max_side.start()
    loop = asyncio.get_running_loop()
    base_url, token = await loop.run_in_executor(None, ours.recv)
    stop = asyncio.Event()
    serving = asyncio.create_task(bot(base_url, token, stop))
    try:
        await asyncio.sleep(1.0)  # started, and the first long poll is in
        cpu_before = time.process_time()
        ours.send("go")
        side: MaxSide = await asyncio.wait_for(loop.run_in_executor(None, ours.recv), RUN_TIMEOUT_S)
        cpu = time.process_time() - cpu_before
    finally:
        stop.set()
        await serving
        ours.send("stop")
        max_side.join(10)
    return side.messages / side.seconds, cpu / side.messages * 1e6


def measure(chats: int, rounds: int = len(STEPS)) -> dict[str, float]:
    """tonebot's MAX adapter and maxapi's echo bot (as it comes, and tuned) on the same harness: messages a
    second, their ratios, and each bot's CPU time per message (µs)."""
    with tempfile.TemporaryDirectory() as directory:
        db = Path(directory) / "e2e_max.db"
        ours, ours_cpu = asyncio.run(
            _serve(chats, rounds, lambda url, token, stop: _tonebot(url, token, db, stop))
        )
    echo, echo_cpu = asyncio.run(_serve(chats, rounds, _echo))
    tuned, tuned_cpu = asyncio.run(_serve(chats, rounds, _tuned_echo))
    return {
        "e2e_max_msgs_per_s": round(ours, 1),
        "e2e_max_echo_msgs_per_s": round(echo, 1),
        "e2e_max_vs_echo": round(ours / echo, 3),
        "e2e_max_tuned_echo_msgs_per_s": round(tuned, 1),
        "e2e_max_vs_tuned_echo": round(ours / tuned, 3),
        "e2e_max_cpu_us_per_msg": round(ours_cpu, 1),
        "e2e_max_echo_cpu_us_per_msg": round(echo_cpu, 1),
        "e2e_max_tuned_echo_cpu_us_per_msg": round(tuned_cpu, 1),
    }


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run, print a table or JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result: dict[str, Any] = measure(args.chats)
    if args.json:
        print(json.dumps(result))
    else:
        width = max(map(len, result)) + 2
        for key, value in result.items():
            print(f"{key:<{width}}{value}")


if __name__ == "__main__":
    main()
