"""`tonebot campaigns run|resume|pause|status`: a campaign sent from the command line, with a progress line
on stderr while it sends and its funnel table at the end."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

from bot.campaigns.audience import AudienceError, targets
from bot.campaigns.outbounds import close_all, messenger_outbounds, token_variable
from bot.campaigns.sender import SENT, CampaignSender
from bot.campaigns.serving import campaign_store
from common.names import FUNNEL_ENDS, FUNNEL_STEPS
from dialogs.campaigns import CAMPAIGN_CHANNELS, Campaign
from storage.campaigns import CampaignStore, Enqueued, FunnelLine
from wiring.runtime import Runtime, build_runtime, until_stopped
from wiring.settings import Settings, environment

# The progress line is redrawn at most this often (a pipe gets a line this often at most).
REDRAW_S = 0.2
PIPE_LINE_S = 5.0


def run_verb(verb: str, args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """run, resume, pause or status over the runtime's database."""
    runtime = build_runtime(settings)
    code = 0
    with until_stopped(runtime):
        store = campaign_store(runtime)
        if verb == "status":
            code = status(runtime, store, args.name, out)
        elif verb == "pause":
            code = _pause(runtime, store, args.name, out)
        else:
            code = send(runtime, store, args.name, args.channel, out, enqueue=verb == "run")
    return code


def _campaign(runtime: Runtime, name: str, out: TextIO) -> Campaign | None:
    campaign = runtime.content.get().campaigns.get(name)
    if campaign is None:
        known = ", ".join(sorted(runtime.content.get().campaigns.campaigns)) or "none"
        print(f"tonebot: there is no campaign {name!r}; known: {known}", file=out)
    return campaign


def _pause(runtime: Runtime, store: CampaignStore, name: str, out: TextIO) -> int:
    if _campaign(runtime, name, out) is None:
        return 2
    if not store.pause(name, datetime.now(UTC)):
        print(f"tonebot: campaign {name} was never started", file=out)
        return 1
    print(
        f"{name}: paused; messages already on their way are finished. `tonebot campaigns resume {name}`",
        file=out,
    )
    return 0


def send(
    runtime: Runtime,
    store: CampaignStore,
    name: str,
    channels: Sequence[str] | None,
    out: TextIO,
    *,
    enqueue: bool,
) -> int:
    """Start or resume a campaign, queue its audience (run), send what is due and print its funnel."""
    campaign = _campaign(runtime, name, out)
    if campaign is None:
        return 2
    now = datetime.now(UTC)
    store.resume(name, now)
    if enqueue:
        try:
            found = targets(campaign, store, now, channels)
        except AudienceError as exc:
            for issue in exc.issues:
                print(issue, file=out)
            return 1
        print(_queued(name, store.enqueue(name, campaign.advertising, found, now)), file=out)
    wanted = list(channels or CAMPAIGN_CHANNELS)
    for channel in wanted:
        waiting = store.due([name], now, [channel])
        if waiting and not environment().get(token_variable(channel), "").strip():
            print(
                f"{channel}: {waiting} message(s) wait; set {token_variable(channel)} to send them", file=out
            )
    asyncio.run(_send(runtime, store, name, wanted))
    print(funnel_table(store, campaign, store.funnel(name)), file=out)
    return 0


async def _send(runtime: Runtime, store: CampaignStore, name: str, channels: Sequence[str]) -> None:
    outbounds = messenger_outbounds(runtime, environment(), channels)
    if not outbounds:
        return
    progress = Progress(store.due([name], datetime.now(UTC), list(outbounds)), sys.stderr)
    sender = CampaignSender(store, runtime.engine, outbounds, on_step=progress.step)
    try:
        await sender.run([name])
    finally:
        progress.finish()
        await close_all(outbounds)


def _queued(name: str, done: Enqueued) -> str:
    added = ", ".join(f"{status} {count}" for status, count in sorted(done.added.items())) or "nobody new"
    extra = f"; {done.existing} already in it" if done.existing else ""
    consents = f"; consent recorded for {done.consents}" if done.consents else ""
    return f"{name}: audience of {done.total}: {added}{extra}{consents}"


def status(runtime: Runtime, store: CampaignStore, name: str | None, out: TextIO) -> int:
    """The funnel of one campaign, or of every campaign in the content or ever started."""
    campaigns = runtime.content.get().campaigns
    if name is not None:
        campaign = _campaign(runtime, name, out)
        if campaign is None:
            return 2
        print(funnel_table(store, campaign, store.funnel(name)), file=out)
        return 0
    names = sorted(set(campaigns.campaigns) | set(store.started()))
    for index, each in enumerate(names):
        found = campaigns.get(each)
        if index:
            print(file=out)
        if found is None:
            print(f"{each}: started, but no longer in the content", file=out)
            continue
        print(funnel_table(store, found, store.funnel(each)), file=out)
    if not names:
        print("no campaigns", file=out)
    return 0


def funnel_table(store: CampaignStore, campaign: Campaign, lines: Sequence[FunnelLine]) -> str:
    """The funnel by status and channel, the reasons of the ends, and the follow-ups waiting."""
    state = store.state_of(campaign.id) or "not started"
    channels = sorted({line.channel for line in lines}) or ["telegram"]
    counts: dict[tuple[str, str], int] = {}
    reasons: dict[tuple[str, str], int] = {}
    for line in lines:
        counts[line.status, line.channel] = counts.get((line.status, line.channel), 0) + line.count
        if line.reason:
            reasons[line.status, line.reason] = reasons.get((line.status, line.reason), 0) + line.count
    rows = [f"{campaign.id} — {campaign.spec.title} ({state})", _row("status", [*channels, "total"])]
    for status_name in (*FUNNEL_STEPS, *FUNNEL_ENDS):
        values = [counts.get((status_name, channel), 0) for channel in channels]
        rows.append(_row(status_name, [*map(str, values), str(sum(values))]))
    totals = [sum(counts.get((s, channel), 0) for s in (*FUNNEL_STEPS, *FUNNEL_ENDS)) for channel in channels]
    rows.append(_row("total", [*map(str, totals), str(sum(totals))]))
    for (ended, reason), count in sorted(reasons.items()):
        rows.append(f"  {ended}: {reason} — {count}")
    waiting, first = store.follow_ups(campaign.id)
    if waiting and first is not None:
        rows.append(f"follow-ups waiting: {waiting}, the first due {first:%Y-%m-%d %H:%M} UTC")
    return "\n".join(rows)


def _row(label: str, cells: Sequence[str]) -> str:
    return f"{label:<14}" + "".join(f"{cell:>10}" for cell in cells)


class Progress:
    """A progress line on stderr while a campaign sends: steps done of those due, per channel, the pace."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream = total, stream
        self.done = 0
        self.sent: dict[str, int] = {}
        self.started = time.monotonic()
        self._drawn = 0.0
        self._tty = stream.isatty()

    def step(self, channel: str, outcome: str) -> None:
        """One step handled."""
        self.done += 1
        if outcome == SENT:
            self.sent[channel] = self.sent.get(channel, 0) + 1
        now = time.monotonic()
        if now - self._drawn >= (REDRAW_S if self._tty else PIPE_LINE_S):
            self._draw(now)

    def finish(self) -> None:
        """Draw the last state and end the line."""
        self._draw(time.monotonic())
        if self._tty:
            self.stream.write("\n")
        self.stream.flush()

    def _draw(self, now: float) -> None:
        self._drawn = now
        width = 30
        share = min(1.0, self.done / self.total) if self.total else 1.0
        bar = "#" * int(share * width) + "." * (width - int(share * width))
        elapsed = max(now - self.started, 1e-9)
        per_channel = " · ".join(f"{ch} {n}" for ch, n in sorted(self.sent.items())) or "nothing sent yet"
        line = f"[{bar}] {self.done}/{self.total}  {per_channel}  {sum(self.sent.values()) / elapsed:.1f}/s"
        self.stream.write(("\r" + line) if self._tty else line + "\n")
        self.stream.flush()
