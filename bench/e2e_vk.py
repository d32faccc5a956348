"""End to end through vkbottle: many VK chats at once, each client answering the bot as a person would.

The VK side (the VK API stand-in with its Bots Long Poll server, and the simulated clients writing the
steps of bench.e2e) runs in a process of its own, as VK runs on other machines; this process runs only
the bot under test. The same harness with a bare vkbottle echo bot (its Bot, BotPolling and
Message.answer, all defaults) gives the baseline. VK's 20 calls a second are lifted for both bots: the
figures measure the bots, not VK's limit.

    python -m bench.e2e_vk [--chats 1000] [--runs 2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
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

# Past any number of calls a second the bench reaches: no pacing at all, as for the echo bot.
LIFTED_PER_SECOND = 1_000_000.0
FIRST_PEER = 100_000


@dataclass(frozen=True, slots=True)
class VkSide:
    """What the clients saw: messages answered and how long that took."""

    messages: int
    seconds: float


async def _clients(chats: int, rounds: int, pipe: Connection) -> None:
    from tests.support.vk_api import SentMessage, VkApiStandin

    replies: dict[int, int] = {}
    waiting: dict[int, asyncio.Event] = {}

    def wake(message: SentMessage) -> None:
        replies[message.peer_id] = replies.get(message.peer_id, 0) + 1
        event = waiting.get(message.peer_id)
        if event is not None:
            event.set()

    async def client(vk: VkApiStandin, peer: int) -> None:
        for step in range(rounds):
            seen = replies.get(peer, 0)
            event = waiting[peer] = asyncio.Event()
            vk.add_message(peer, client_text(peer, step))
            while replies.get(peer, 0) == seen:
                await event.wait()
                event.clear()

    async with VkApiStandin() as vk:
        vk.on_sent = wake
        pipe.send((vk.base_url, vk.token, vk.group_id))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, pipe.recv)  # the bot is starting: go once it polls
        await vk.wait_until_polling(timeout=30)
        started = time.perf_counter()
        await asyncio.gather(*(client(vk, FIRST_PEER + c) for c in range(chats)))
        pipe.send(VkSide(chats * rounds, time.perf_counter() - started))
        await loop.run_in_executor(None, pipe.recv)  # the bot has stopped


def _vk_process(chats: int, rounds: int, pipe: Connection) -> None:
    asyncio.run(_clients(chats, rounds, pipe))


# A bot under test: given the stand-in's base URL, token and community, it answers until told to stop.
Runner = Callable[[str, str, int, asyncio.Event], Coroutine[Any, Any, None]]


async def _tonebot(db: Path, base_url: str, token: str, group_id: int, stop: asyncio.Event) -> None:
    from bot.channels.limits import RateLimits
    from bot.vk.runner import make_gateway, poll
    from bot.vk.settings import VkSettings
    from dialogs.content import LiveContent
    from dialogs.engine import Engine
    from dialogs.service import ConversationService
    from storage import SqlStore, connect
    from storage.database import sqlite_url

    service = ConversationService(Engine(LiveContent()), SqlStore(connect(sqlite_url(str(db)))))
    settings = VkSettings(token, group_id, base_url)
    gateway = make_gateway(service, settings, RateLimits(0.0, LIFTED_PER_SECOND))
    await poll(gateway, settings, stop=stop)


async def _echo(base_url: str, token: str, group_id: int, stop: asyncio.Event) -> None:
    from vkbottle import API, Bot
    from vkbottle.bot import Message

    api = API(token)
    api.API_URL = f"{base_url}/method/"
    bot = Bot(api=api)

    @bot.on.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text)

    polling = asyncio.create_task(bot.run_polling())
    try:
        await stop.wait()
    finally:
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
        await api.http_client.close()


async def _serve(chats: int, rounds: int, run: Runner) -> float:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    vk = context.Process(target=_vk_process, args=(chats, rounds, theirs), daemon=True)
    vk.start()
    loop = asyncio.get_running_loop()
    base_url, token, group_id = await loop.run_in_executor(None, ours.recv)
    stop = asyncio.Event()
    bot = asyncio.create_task(run(base_url, token, group_id, stop))
    ours.send("go")
    side: VkSide = await loop.run_in_executor(None, ours.recv)
    stop.set()
    await asyncio.wait_for(bot, 30)
    ours.send("stop")
    vk.join(10)
    return side.messages / side.seconds


def measure(chats: int, runs: int = 2) -> dict[str, float]:
    """tonebot's VK adapter and a bare vkbottle echo bot on the same harness: messages a second, the best
    of `runs` each (in the order ours, echo, echo, ours, ...: a shared machine's load drifts)."""
    rounds = len(STEPS)
    ours: list[float] = []
    echo: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        for run in range(runs):
            for which in ("ours", "echo") if run % 2 == 0 else ("echo", "ours"):
                if which == "ours":
                    db = Path(directory) / f"e2e_vk_{run}.db"
                    ours.append(asyncio.run(_serve(chats, rounds, functools.partial(_tonebot, db))))
                    continue
                # vkbottle's polling keeps its ts in ./.vkbottle: in the temporary directory, not ours.
                with contextlib.chdir(directory):
                    echo.append(asyncio.run(_serve(chats, rounds, _echo)))
    return {
        "e2e_vk_msgs_per_s": round(max(ours), 1),
        "e2e_vk_echo_msgs_per_s": round(max(echo), 1),
        "e2e_vk_vs_echo": round(max(ours) / max(echo), 3),
    }


def main() -> None:
    """Parse arguments, run, print a table or JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=2, help="runs of each bot; the best of each counts")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.chats, args.runs)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<24}{value}")


if __name__ == "__main__":
    main()
