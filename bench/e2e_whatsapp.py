"""End to end through pywa: many WhatsApp chats at once, each client answering the bot as a person would.

The WhatsApp side (the Cloud API stand-in and the simulated clients, who post signed webhooks with the
same steps as `bench.e2e`) runs in a process of its own, as Meta's servers are on other machines; this
process runs only the bot under test. The baseline is a bare pywa echo bot on the same harness: pywa's
own webhook handling (signature check, parsing, handlers) in a minimal aiohttp app, answering every
message with pywa's `send_message` through the same httpx session settings and cap on requests in flight
as tonebot's adapter. The ratio of the two throughputs says what tonebot's own work costs
next to receiving and sending the messages. Neither bot is rate limited.

    python -m bench.e2e_whatsapp [--chats 1000] [--repeats 1] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing
import socket
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.e2e import STEPS, client_text

# A bot under test: its webhook app, and what awaits the sends still under way when the clients are done
# (a reply's second part, "typing…"), so that stopping cuts no request off mid-way.
Bot = tuple[Any, Callable[[], Awaitable[Any]]]


@dataclass(frozen=True, slots=True)
class WhatsAppSide:
    """What the clients saw: messages answered, how long it took, and the first-reply latencies."""

    messages: int
    seconds: float
    latencies_ms: list[float]


async def _clients(chats: int, rounds: int, pipe: Connection) -> None:
    from tests.support.whatsapp_api import GraphApiStandin, GraphCall

    replies: dict[str, int] = {}
    waiting: dict[str, asyncio.Event] = {}

    def heard(call: GraphCall) -> None:
        # Wakes the waiting client as soon as the bot writes to it.
        if call.to is not None:
            replies[call.to] = replies.get(call.to, 0) + 1
            event = waiting.get(call.to)
            if event is not None:
                event.set()

    async def client(api: GraphApiStandin, chat: int, latencies: list[float]) -> None:
        wa_id = f"7913{chat:07d}"
        for step in range(rounds):
            seen = replies.get(wa_id, 0)
            event = waiting[wa_id] = asyncio.Event()
            sent = time.perf_counter()
            await api.client_text(wa_id, client_text(chat, step))
            while replies.get(wa_id, 0) == seen:
                await event.wait()
                event.clear()
            latencies.append((time.perf_counter() - sent) * 1000)

    async with GraphApiStandin() as api:
        api.send_listeners.append(heard)
        pipe.send(api.env())
        loop = asyncio.get_running_loop()
        api.connect(await loop.run_in_executor(None, pipe.recv))  # the bot serves its webhook: go
        latencies: list[float] = []
        started = time.perf_counter()
        await asyncio.gather(*(client(api, 100_000 + c, latencies) for c in range(chats)))
        seconds = time.perf_counter() - started
        pipe.send(WhatsAppSide(chats * rounds, seconds, latencies))
        await loop.run_in_executor(None, pipe.recv)  # the bot has stopped


def _whatsapp_process(chats: int, rounds: int, pipe: Connection) -> None:
    asyncio.run(_clients(chats, rounds, pipe))


def _tonebot_app(settings: Any, db: Path) -> Bot:
    from bot.channels.limits import RateLimits
    from bot.channels.webhook import webhook_app
    from bot.whatsapp.runner import make_gateway, webhook_reader
    from dialogs.content import LiveContent
    from dialogs.engine import Engine
    from dialogs.service import ConversationService
    from storage import SqlStore, connect
    from storage.database import sqlite_url

    service = ConversationService(Engine(LiveContent()), SqlStore(connect(sqlite_url(str(db)))))
    # The Cloud API's 80 messages a second would measure WhatsApp, not tonebot.
    gateway = make_gateway(service, settings, RateLimits(0.0, 1_000_000))
    return webhook_app(webhook_reader(settings), gateway), gateway.drain


def _echo_app(settings: Any) -> Bot:
    from aiohttp import web
    from pywa.types.message import Message
    from pywa_async.handlers import MessageHandler

    from bot.whatsapp.client import MAX_IN_FLIGHT, make_client

    client, session = make_client(settings)
    handling: set[asyncio.Task[Any]] = set()
    # The adapter's cap on requests in flight: without it a thousand sends queue inside httpx's pool, whose
    # cost grows with the queue, and the baseline would measure that rather than pywa.
    in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def echo(wa: Any, message: Message) -> None:
        async with in_flight:
            await wa.send_message(to=message.from_user.wa_id, text=message.text or "…")

    client.add_handlers(MessageHandler(echo))

    async def receive(request: web.Request) -> web.Response:
        if request.method == "GET":
            answer, status = await client.webhook_challenge_handler(
                request.query.get("hub.verify_token"), request.query.get("hub.challenge")
            )
            return web.Response(status=status, text=answer or "")
        body = await request.read()
        refused = await client.webhook_update_validator(body, request.headers.get("X-Hub-Signature-256"))
        if refused is not None:
            return web.Response(status=refused[1], text=refused[0])
        # As pywa's own server does: answer Meta at once, handle the update in the background.
        task = asyncio.create_task(client.webhook_update_handler(body))
        handling.add(task)
        task.add_done_callback(handling.discard)
        return web.Response(text="ok")

    async def close(_app: web.Application) -> AsyncIterator[None]:
        yield
        await session.aclose()

    app = web.Application()
    app.router.add_route("*", "/whatsapp/webhook", receive)
    app.cleanup_ctx.append(close)
    return app, lambda: asyncio.gather(*handling, return_exceptions=True)


async def _serve(chats: int, rounds: int, build: Callable[[Any], Bot]) -> dict[str, float]:
    from aiohttp import web

    from bot.whatsapp.settings import WhatsAppSettings

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    whatsapp = context.Process(target=_whatsapp_process, args=(chats, rounds, theirs), daemon=True)
    whatsapp.start()
    loop = asyncio.get_running_loop()
    settings = WhatsAppSettings.from_env(await loop.run_in_executor(None, ours.recv))
    app, settle = build(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    cpu_before = time.process_time()
    ours.send(f"http://127.0.0.1:{sock.getsockname()[1]}/whatsapp/webhook")
    side: WhatsAppSide = await loop.run_in_executor(None, ours.recv)
    cpu = time.process_time() - cpu_before
    await settle()
    await runner.cleanup()
    ours.send("stop")
    whatsapp.join(10)
    ordered = sorted(side.latencies_ms)
    return {
        "msgs_per_s": round(side.messages / side.seconds, 1),
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "cpu_us_per_msg": round(cpu / side.messages * 1e6, 1),
    }


def measure(chats: int, rounds: int = len(STEPS), repeats: int = 1) -> dict[str, float]:
    """tonebot's WhatsApp adapter and a bare pywa echo bot on the same harness: throughput, latency, CPU.
    With `repeats`, the two take turns that many times and each keeps its best run: on a shared machine
    a burst of someone else's work then costs neither of them a figure."""
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "echo": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as directory:
            tonebot = functools.partial(_tonebot_app, db=Path(directory) / "e2e_whatsapp.db")
            runs["ours"].append(asyncio.run(_serve(chats, rounds, tonebot)))
        runs["echo"].append(asyncio.run(_serve(chats, rounds, _echo_app)))
    ours, echo = (max(runs[side], key=lambda run: run["msgs_per_s"]) for side in ("ours", "echo"))
    return {
        "e2e_whatsapp_msgs_per_s": ours["msgs_per_s"],
        "e2e_whatsapp_p50_ms": ours["p50_ms"],
        "e2e_whatsapp_p99_ms": ours["p99_ms"],
        "e2e_whatsapp_cpu_us_per_msg": ours["cpu_us_per_msg"],
        "e2e_whatsapp_echo_msgs_per_s": echo["msgs_per_s"],
        "e2e_whatsapp_echo_p99_ms": echo["p99_ms"],
        "e2e_whatsapp_echo_cpu_us_per_msg": echo["cpu_us_per_msg"],
        "e2e_whatsapp_vs_echo": round(ours["msgs_per_s"] / echo["msgs_per_s"], 3),
    }


def main() -> None:
    """Parse arguments, run, print a table or JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=1, help="turns each bot takes; its best run counts")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.chats, repeats=args.repeats)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<34}{value}")


if __name__ == "__main__":
    main()
