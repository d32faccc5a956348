"""From a missed-call event to the campaign's message at the Telegram stand-in (the issue's "under 2 s").

`tonebot demo` runs as its own process against the Bot API stand-in, with the events API on and the bank's
missed-call campaign allowed to write at any hour. Chats start the bot; then one signed event per chat is
posted, first one at a time (each waits for its message), then all at once as a burst. Each figure runs
from just before the POST to the message's arrival at the stand-in.

    python -m bench.missed_call [--events 20] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.support.botapi import BotApiStandin
from tests.support.events import (
    campaign_message,
    content_open_around_the_clock,
    missed_call_in_chat,
    running_demo,
    signed_headers,
)

FIRST_CHAT = 700_001


async def _one(http: httpx.AsyncClient, api: BotApiStandin, chat: int, event_id: str) -> float:
    """Seconds from posting one chat's event to its campaign message at the stand-in."""
    body = missed_call_in_chat(event_id, chat)
    headers = signed_headers(body)
    started = time.monotonic()
    response = await http.post("/api/events", content=body, headers=headers)
    if response.status_code != 202:
        raise RuntimeError(f"event {event_id}: {response.status_code} {response.text}")
    message = await campaign_message(api, chat)
    # The stand-in stamps each call with time.monotonic() of this same process on arrival.
    return message.at - started


async def _measure(events: int, directory: Path) -> dict[str, float]:
    content = content_open_around_the_clock(directory)
    chats = list(range(FIRST_CHAT, FIRST_CHAT + 2 * events))
    async with (
        BotApiStandin() as api,
        running_demo(directory, content, api) as demo,
        httpx.AsyncClient(base_url=demo.url, timeout=60) as http,
    ):
        for chat in chats:
            api.add_start(chat)
        for chat in chats:
            await api.wait_for_sent(1, timeout=60, chat_id=chat, method="sendMessage")
        one_by_one = [await _one(http, api, chat, f"seq-{chat}") for chat in chats[:events]]
        burst_started = time.monotonic()
        burst = list(
            await asyncio.gather(*(_one(http, api, chat, f"burst-{chat}") for chat in chats[events:]))
        )
        burst_s = time.monotonic() - burst_started
    return {
        "missed_call_events": float(events),
        "missed_call_p50_s": _round(statistics.median(one_by_one)),
        "missed_call_p95_s": _round(_percentile(one_by_one, 0.95)),
        "missed_call_max_s": _round(max(one_by_one)),
        "missed_call_burst_p50_s": _round(statistics.median(burst)),
        "missed_call_burst_p95_s": _round(_percentile(burst, 0.95)),
        "missed_call_burst_max_s": _round(max(burst)),
        "missed_call_burst_total_s": _round(burst_s),
    }


def measure(events: int = 20) -> dict[str, float]:
    """Event-to-message seconds for `events` events one at a time and `events` more in a burst."""
    with tempfile.TemporaryDirectory(prefix="tonebot-missed-call-") as name:
        return asyncio.run(_measure(events, Path(name)))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered)) - 1))]


def _round(seconds: float) -> float:
    return round(seconds, 3)


def main(argv: list[str] | None = None) -> int:
    """Print the figures (and one JSON object last with --json)."""
    parser = argparse.ArgumentParser(prog="python -m bench.missed_call", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20, help="events one at a time, and as many in a burst")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = parser.parse_args(argv)
    figures = measure(args.events)
    for key, value in figures.items():
        print(f"{key:28} {value:g}")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
