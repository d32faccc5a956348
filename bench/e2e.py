"""End to end through aiogram: many chats at once, each client answering the bot as a person would.

The Telegram side (the Bot API stand-in and the simulated clients) runs in a process of its own, as the
real Telegram is on other machines; this process runs only the bot under test, so its throughput and CPU
per message are the bot's. The same harness with a bare aiogram echo bot gives the baseline: the ratio of
the two throughputs says how much tonebot's own work costs next to receiving and sending the messages.

    python -m bench.e2e [--chats 1000] [--turns loop|thread|single] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Each chat writes these steps in order, the next once the bot answered the previous; the wording varies
# between chats so every persona and both ways of answering (words and button numbers) are exercised.
STEPS: tuple[tuple[str, ...], ...] = (
    (
        "не работает интернет",
        "Здравствуйте! С утра не работает интернет, роутер мигает, подскажите, что делать? 🙏",
        "опять не работает интернет!!! сколько можно, вы издеваетесь?",
        "Нет линка на WAN, ONT горит LOS, ping до шлюза не проходит",
        "а у меня интернет пропал... я не знаю что нажимать",
        "Добрый вечер! Такая история: вчера всё работало, а сегодня прихожу с работы, интернета нет, роутер "
        "вроде горит, но мигает как-то странно, я его два раза перезагрузил, соседи говорят, у них всё в "
        "порядке, и вот не знаю, что думать",
    ),
    (
        "договор {n}",
        "мой договор {n}, если что",
        "Договор {n}",
        "л/с {n}",
        "вроде договор {n}?",
        "договор {n}",
    ),
    ("2", "не горит значок интернета", "2", "не горит значок интернета", "2", "2"),
    ("да, помогло, спасибо!", "заработало, спасибо большое! 😊", "да", "да, линк поднялся", "да", "да, всё"),
)


def client_text(chat: int, step: int) -> str:
    """What client `chat` writes at `step`."""
    variants = STEPS[step % len(STEPS)]
    return variants[chat % len(variants)].format(n=1_000_000 + chat)


@dataclass(frozen=True, slots=True)
class TelegramSide:
    """What the clients saw: messages answered, how long it took, and the first-reply latencies."""

    messages: int
    seconds: float
    latencies_ms: list[float]


async def _clients(chats: int, rounds: int, pipe: Connection) -> None:
    from tests.support.botapi import ApiCall, BotApiStandin

    class Standin(BotApiStandin):
        """Wakes the waiting client as soon as the bot writes to its chat."""

        def __init__(self) -> None:
            super().__init__()
            self.replies: dict[int, int] = {}
            self.waiting: dict[int, asyncio.Event] = {}

        def _record(self, call: ApiCall) -> None:
            super()._record(call)
            if call.method == "sendMessage" and call.ok and isinstance(call.chat_id, int):
                self.replies[call.chat_id] = self.replies.get(call.chat_id, 0) + 1
                event = self.waiting.get(call.chat_id)
                if event is not None:
                    event.set()

    async def client(api: Standin, chat: int, latencies: list[float]) -> None:
        for step in range(rounds):
            seen = api.replies.get(chat, 0)
            event = api.waiting[chat] = asyncio.Event()
            sent = time.perf_counter()
            api.add_message(chat, client_text(chat, step))
            while api.replies.get(chat, 0) == seen:
                await event.wait()
                event.clear()
            latencies.append((time.perf_counter() - sent) * 1000)

    async with Standin() as api:
        pipe.send((api.base_url, api.token))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, pipe.recv)  # the bot is polling: go
        latencies: list[float] = []
        started = time.perf_counter()
        await asyncio.gather(*(client(api, 100_000 + c, latencies) for c in range(chats)))
        seconds = time.perf_counter() - started
        pipe.send(TelegramSide(chats * rounds, seconds, latencies))
        await loop.run_in_executor(None, pipe.recv)  # the bot has stopped polling


def _telegram_process(chats: int, rounds: int, pipe: Connection) -> None:
    asyncio.run(_clients(chats, rounds, pipe))


def _echo_dispatcher() -> Any:
    from aiogram import Dispatcher, Router
    from aiogram.types import Message

    router = Router(name="echo")

    @router.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    return dispatcher


def _tonebot_dispatcher(bot: Any, db: Path, turns: str = "loop") -> Any:
    from bot.channels.limits import RateLimits
    from bot.telegram.runner import make_dispatcher
    from dialogs.content import LiveContent
    from dialogs.engine import Engine
    from dialogs.service import ConversationService
    from storage import SqlStore, connect
    from storage.database import sqlite_url

    service = ConversationService(Engine(LiveContent()), SqlStore(connect(sqlite_url(str(db)))))
    # Telegram's sending limits (30 a second for a whole bot) would measure Telegram, not tonebot.
    dispatcher = make_dispatcher(service, bot, RateLimits(0.0, 1_000_000))
    dispatcher["tonebot_gateway"].turns_on = turns
    return dispatcher


async def _serve(chats: int, rounds: int, build: Callable[[Any], Any]) -> dict[str, float]:
    from bot.telegram.runner import TelegramSettings, make_bot

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    telegram = context.Process(target=_telegram_process, args=(chats, rounds, theirs), daemon=True)
    telegram.start()
    loop = asyncio.get_running_loop()
    base_url, token = await loop.run_in_executor(None, ours.recv)
    bot = make_bot(TelegramSettings(token, base_url))
    dispatcher = build(bot)
    polling = asyncio.create_task(dispatcher.start_polling(bot, handle_signals=False, polling_timeout=1))
    await asyncio.sleep(0.5)  # the first long poll is in
    cpu_before = time.process_time()
    ours.send("go")
    side: TelegramSide = await loop.run_in_executor(None, ours.recv)
    cpu = time.process_time() - cpu_before
    await dispatcher.stop_polling()
    await polling
    await bot.session.close()
    ours.send("stop")
    telegram.join(10)
    ordered = sorted(side.latencies_ms)
    return {
        "msgs_per_s": round(side.messages / side.seconds, 1),
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "cpu_us_per_msg": round(cpu / side.messages * 1e6, 1),
    }


def measure(chats: int, rounds: int = len(STEPS), turns: str = "loop") -> dict[str, float]:
    """tonebot and a bare echo bot on the same harness: throughput, first-reply latency, bot CPU.
    `turns`: where tonebot runs turns (the gateway's `turns_on`: loop, thread or single)."""
    with tempfile.TemporaryDirectory() as directory:
        db = Path(directory) / "e2e.db"
        ours = asyncio.run(_serve(chats, rounds, lambda bot: _tonebot_dispatcher(bot, db, turns)))
    echo = asyncio.run(_serve(chats, rounds, lambda bot: _echo_dispatcher()))
    return {
        "e2e_msgs_per_s": ours["msgs_per_s"],
        "e2e_p50_ms": ours["p50_ms"],
        "e2e_p99_ms": ours["p99_ms"],
        "e2e_cpu_us_per_msg": ours["cpu_us_per_msg"],
        "echo_msgs_per_s": echo["msgs_per_s"],
        "echo_p99_ms": echo["p99_ms"],
        "echo_cpu_us_per_msg": echo["cpu_us_per_msg"],
        "e2e_vs_echo": round(ours["msgs_per_s"] / echo["msgs_per_s"], 3),
    }


def main() -> None:
    """Parse arguments, run, print a table or JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument(
        "--turns",
        choices=["loop", "thread", "single"],
        default="loop",
        help="where tonebot runs turns: batched on the event loop (the default), batched on a thread, "
        "or one by one on a thread (as before batching)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.chats, turns=args.turns)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<22}{value}")


if __name__ == "__main__":
    main()
