"""A campaign to 10,000 recipients through the Telegram and VK stand-ins at the platforms' limits.

Half the recipients are Telegram chats, half VK dialogs, each made open to a message by a stored message of
its client (in one of the six personas). The campaign runs at Telegram's 30 messages a second and VK's 20
(VK counts API calls: the adapter's client keeps them within 20 a second too), with a follow-up a day later.
The stand-ins run in a process of their own, as the messengers run on other machines, and report what
they saw: the busiest second of each, and any chat that got the message twice.

    python -m bench.campaign_send [--recipients 10000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

CAMPAIGN = "bench"
RATES = {"telegram": 30.0, "vk": 20.0}
FIRST_CHAT = {"telegram": 500_000, "vk": 800_000}
PERSONAS = ("neutral", "aggressor", "positive", "talker", "unsure", "sysadmin")
# Chats made open in one transaction while setting up.
SETUP_BATCH = 500


def busiest_second(times: Sequence[float]) -> int:
    """The most events in any one-second window."""
    ordered = sorted(times)
    most = start = 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def _span_rate(times: Sequence[float]) -> float:
    """Events a second from the first to the last."""
    if len(times) < 2:
        return float(len(times))
    return (len(times) - 1) / (max(times) - min(times))


async def _messengers(pipe: Connection) -> None:
    from tests.support.botapi import BotApiStandin
    from tests.support.vk_api import VkApiStandin

    async with BotApiStandin() as api, VkApiStandin() as vk:
        pipe.send((api.base_url, api.token, vk.base_url, vk.token, vk.group_id))
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # the campaign has run
        telegram = api.sent(method="sendMessage")
        calls = [call for call in vk.calls if call.via == "http"]
        sends = [call for call in vk.calls if call.method == "messages.send" and call.ok]
        shown = vk.sent()
        keys = Counter(
            (call.params.get("peer_id"), call.params.get("random_id"))
            for call in sends
            if call.params.get("peer_id")
        )
        pipe.send(
            {
                "telegram_messages": len(telegram),
                "telegram_max_per_s": busiest_second([call.at for call in telegram]),
                "telegram_msgs_per_s": _span_rate([call.at for call in telegram]),
                "telegram_duplicates": sum(
                    n - 1 for n in Counter(call.chat_id for call in telegram).values()
                ),
                "vk_messages": len(shown),
                "vk_calls": len(calls),
                "vk_max_calls_per_s": busiest_second([call.at for call in calls]),
                "vk_max_msgs_per_s": busiest_second([message.at for message in shown]),
                "vk_msgs_per_s": _span_rate([message.at for message in shown]),
                "vk_duplicates": sum(n - 1 for n in Counter(message.peer_id for message in shown).values()),
                "vk_repeats_dropped": sum(n - 1 for n in keys.values()),
            }
        )


def _messengers_process(pipe: Connection) -> None:
    asyncio.run(_messengers(pipe))


def _prepare(runtime: Any, recipients: int, at: datetime) -> None:
    """Open the chats: each client wrote once (in one of the personas)."""
    from common.messages import IncomingMessage

    class Outcome:
        replies: list[Any] = []  # noqa: RUF012 - read only
        events: list[Any] = []  # noqa: RUF012 - read only

    def run(_conversation_id: int, state: Any, message: IncomingMessage) -> Outcome:
        state.persona = PERSONAS[int(message.chat_id) % len(PERSONAS)]
        return Outcome()

    chats = [
        (channel, str(FIRST_CHAT[channel] + n))
        for channel, count in (("telegram", recipients - recipients // 2), ("vk", recipients // 2))
        for n in range(count)
    ]
    arrived = [
        IncomingMessage(ch, chat, chat, "Здравствуйте", at, message_id=f"hello:{chat}") for ch, chat in chats
    ]
    for start in range(0, len(arrived), SETUP_BATCH):
        runtime.store.run_turns(arrived[start : start + SETUP_BATCH], run)


async def _send(runtime: Any, endpoints: tuple[str, str, str, str, int]) -> Any:
    from bot.campaigns.sender import CampaignSender
    from bot.campaigns.serving import campaign_store
    from bot.telegram.aiogram_io import AiogramOutbound
    from bot.telegram.runner import TelegramSettings, make_bot
    from bot.vk.runner import make_gateway
    from bot.vk.settings import VkSettings

    tg_base, tg_token, vk_base, vk_token, group_id = endpoints
    outbounds = {
        "telegram": AiogramOutbound(make_bot(TelegramSettings(tg_token, tg_base))),
        "vk": make_gateway(runtime.service, VkSettings(vk_token, group_id, vk_base)).outbound,
    }
    sender = CampaignSender(campaign_store(runtime), runtime.engine, outbounds)
    try:
        return await sender.run([CAMPAIGN])
    finally:
        for outbound in outbounds.values():
            await outbound.close()


def measure(recipients: int = 10_000) -> dict[str, float]:
    """Send the campaign to `recipients` chats (half Telegram, half VK); the figures, keyed campaign_*."""
    # The messengers' libraries are imported before the clock starts: the figure is the sending's.
    import bot.telegram.runner
    import bot.vk.runner  # noqa: F401
    from bot.campaigns.audience import targets
    from bot.campaigns.serving import campaign_store
    from storage.database import sqlite_url
    from tests.support.campaigns import campaign, campaign_content
    from wiring.runtime import build_runtime
    from wiring.settings import Settings

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    messengers = context.Process(target=_messengers_process, args=(theirs,), daemon=True)
    messengers.start()
    endpoints = ours.recv()
    follow_up = {"moment": "test.offer.reminder", "after_hours": 24, "max": 1}
    spec = campaign(
        CAMPAIGN, audience={"query": {"channels": ["telegram", "vk"]}}, rate=RATES, follow_up=follow_up
    )
    with tempfile.TemporaryDirectory() as directory:
        content = campaign_content(Path(directory), spec)
        runtime = build_runtime(Settings(sqlite_url(str(Path(directory) / "campaign.db")), content))
        try:
            now = datetime.now(UTC)
            _prepare(runtime, recipients, now - timedelta(hours=1))
            store = campaign_store(runtime)
            found = runtime.content.get().campaigns.get(CAMPAIGN)
            assert found is not None
            started = time.perf_counter()
            store.start(CAMPAIGN, now)
            queued = store.enqueue(CAMPAIGN, found.advertising, targets(found, store, now), now)
            enqueue_s = time.perf_counter() - started
            started = time.perf_counter()
            tally = asyncio.run(_send(runtime, endpoints))
            seconds = time.perf_counter() - started
            follow_ups, _first = store.follow_ups(CAMPAIGN)
        finally:
            runtime.close()
    ours.send("done")
    seen: dict[str, float] = ours.recv()
    messengers.join(10)
    return {
        "campaign_recipients": float(queued.total),
        "campaign_enqueue_s": round(enqueue_s, 2),
        "campaign_seconds": round(seconds, 1),
        "campaign_sent": float(tally.of("sent")),
        "campaign_telegram_msgs_per_s": round(seen["telegram_msgs_per_s"], 1),
        "campaign_telegram_max_per_s": seen["telegram_max_per_s"],
        "campaign_vk_msgs_per_s": round(seen["vk_msgs_per_s"], 1),
        "campaign_vk_max_calls_per_s": seen["vk_max_calls_per_s"],
        "campaign_vk_max_msgs_per_s": seen["vk_max_msgs_per_s"],
        "campaign_duplicates": seen["telegram_duplicates"] + seen["vk_duplicates"],
        "campaign_follow_ups": float(follow_ups),
    }


def main() -> None:
    """Parse arguments, run, print a table or JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000, help="chats, half Telegram and half VK")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.recipients)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<32}{value:g}")


if __name__ == "__main__":
    main()
