"""`tonebot bench`: every benchmark in one run, a table with the targets, and one JSON object last.

    tonebot bench [--quick] [--json]

The targets are the ones the project holds itself to; they are printed beside the figures, never
asserted in tests. `--quick` runs small sizes (a smoke run: its figures are noisier).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass

from bench import (
    analytics,
    campaign_send,
    cold_start,
    e2e,
    e2e_max,
    e2e_vk,
    e2e_whatsapp,
    engine,
    memory,
    missed_call,
    reload,
)


@dataclass(frozen=True, slots=True)
class Target:
    """A figure's goal: at most or at least `value`."""

    value: float
    at_most: bool

    def met(self, figure: float) -> bool:
        """Whether the figure reaches the goal."""
        return figure <= self.value if self.at_most else figure >= self.value

    def __str__(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.value:g}"


TARGETS = {
    "engine_msgs_per_s": Target(4000, at_most=False),
    "engine_p50_us": Target(250, at_most=True),
    "engine_p99_us": Target(1000, at_most=True),
    "e2e_vs_echo": Target(0.8, at_most=False),
    "e2e_vk_vs_echo": Target(0.8, at_most=False),
    "e2e_max_vs_echo": Target(0.8, at_most=False),
    "e2e_whatsapp_vs_echo": Target(0.8, at_most=False),
    "rss_mb_10k": Target(200, at_most=True),
    "reload_ms": Target(1000, at_most=True),
    "missed_call_p95_s": Target(2, at_most=True),
    # A campaign keeps within the platforms' limits: Telegram's messages, VK's API calls, in any second.
    "campaign_telegram_max_per_s": Target(30, at_most=True),
    "campaign_vk_max_calls_per_s": Target(20, at_most=True),
    # The analytics dashboard over a year of 1,000,000 messages, on SQLite and PostgreSQL (the slower).
    "analytics_dashboard_s": Target(1, at_most=True),
}


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work each benchmark does."""

    messages: int
    conversations: tuple[int, int]
    chats: int
    repeats: int
    # Recipients of the campaign benchmark, half Telegram, half VK.
    recipients: int
    # Missed-call events one at a time, and as many again in a burst.
    events: int
    # Conversations and messages of the analytics benchmark's generated history.
    analytics: tuple[int, int] = (50_000, 1_000_000)


FULL = Sizes(messages=6000, conversations=(1000, 10_000), chats=1000, repeats=5, recipients=10_000, events=20)
QUICK = Sizes(
    messages=600,
    conversations=(100, 1000),
    chats=50,
    repeats=1,
    recipients=40,
    events=5,
    analytics=(200, 4000),
)


def run(sizes: Sizes, progress: Callable[[str], None]) -> dict[str, float]:
    """Run every benchmark; figures keyed as in the issue that asked for them."""
    result: dict[str, float] = {}
    progress("engine with SQLite and without")
    persisted = engine.run_engine(sizes.messages, persist=True)
    in_memory = engine.run_engine(sizes.messages, persist=False)
    result.update(
        engine_msgs_per_s=persisted.msgs_per_s,
        engine_p50_us=persisted.p50_us,
        engine_p95_us=persisted.p95_us,
        engine_p99_us=persisted.p99_us,
        engine_nopersist_msgs_per_s=in_memory.msgs_per_s,
        engine_nopersist_p50_us=in_memory.p50_us,
        engine_nopersist_p99_us=in_memory.p99_us,
    )
    small, large = sizes.conversations
    progress(f"memory with {small} and {large} conversations")
    first = memory.measure(small)
    result["rss_mb_idle"] = first["rss_mb_idle"]
    result["rss_mb_1k"] = first["rss_mb"]
    result["rss_mb_10k"] = memory.measure(large)["rss_mb"]
    progress(f"{sizes.chats} chats through aiogram, then an echo bot")
    result.update(e2e.measure(sizes.chats))
    # Each messenger against its own library's bare echo bot on the same stand-in.
    for name, adapter in (("VK", e2e_vk), ("MAX", e2e_max), ("WhatsApp", e2e_whatsapp)):
        progress(f"{sizes.chats} chats through the {name} adapter, then its library's echo bot")
        result.update(adapter.measure(sizes.chats))
    progress(
        f"a campaign to {sizes.recipients} recipients over the Telegram and VK stand-ins, at their limits"
    )
    result.update(campaign_send.measure(sizes.recipients))
    progress("reloading an edited guide")
    result["reload_ms"] = reload.measure(sizes.repeats)
    progress("cold start: tonebot chat, then tonebot run telegram")
    result.update(cold_start.measure(max(1, sizes.repeats // 2)))
    result["cold_start_telegram_ms"] = cold_start.measure_telegram(max(1, sizes.repeats // 2))
    progress(f"{sizes.events} missed-call events, then {sizes.events} at once, through tonebot demo")
    result.update(missed_call.measure(sizes.events))
    talks, stored = sizes.analytics
    progress(f"the analytics dashboard over {stored} generated messages, on SQLite and PostgreSQL")
    history = analytics.Shape(conversations=talks, messages=stored)
    result.update(analytics.measure(history, max(1, sizes.repeats), progress))
    return result


def table(result: dict[str, float]) -> str:
    """The figures with their targets, one a line."""
    lines = [f"{'figure':<30}{'value':>12}  target", "-" * 56]
    for key, value in result.items():
        target = TARGETS.get(key)
        verdict = "" if target is None else f"{target}  {'met' if target.met(value) else 'MISSED'}"
        lines.append(f"{key:<30}{value:>12g}  {verdict}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print the table (and the JSON object on the last line with --json)."""
    parser = argparse.ArgumentParser(prog="tonebot bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run, noisier figures")
    parser.add_argument("--json", action="store_true", help="end with the figures as one JSON object")
    args = parser.parse_args(argv)
    print(f"tonebot bench on {platform.python_implementation()} {platform.python_version()}", flush=True)
    result = run(
        QUICK if args.quick else FULL, lambda step: print(f"... {step}", file=sys.stderr, flush=True)
    )
    print(table(result))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
