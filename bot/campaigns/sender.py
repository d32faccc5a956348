"""Sending campaigns through the messengers: every due step once at most, paced, in the client's tone.

Per channel with a messenger, the sender claims due recipients in small batches (a couple of seconds of
sends), and for each: checks the campaign's hours in the client's time zone (else postpones the step to
the next allowed moment), renders the message with the engine in the persona of the chat's conversation,
waits its turn at the campaign's rate, sends it under the stable key `campaign:<id>:<recipient>:<step>`
and records it. The messenger's answer decides what is recorded: accepted → sent (with the follow-up's
time), not allowed → not_allowed, refused → failed. Flood control is waited out while the claim is kept
alive; a network failure is retried only where the messenger recognises a repeat (VK), because elsewhere
a second message is worse than a missing one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.campaigns.pace import Pace
from bot.channels.outbound import NotAllowed, Outbound, RetryLater, TemporaryFailure
from bot.channels.text_split import TELEGRAM_TEXT_LIMIT, split_text
from common.channels import facts
from common.messages import Button, Reply
from common.metrics import CAMPAIGN_SENDS, counted
from common.names import Direction
from common.state import ConversationState
from dialogs.campaigns import Campaign
from dialogs.engine import Engine
from storage.campaigns import BLOCKED, INTERRUPTED, LEASE_S, CampaignStore, Claim, SenderTurn

log = logging.getLogger(__name__)
# Channels whose sends carry an idempotency key made from the send's key (VK's random_id): a dead
# sender's claim is sent there again with the same key, and the messenger drops the repeat.
RESENDS_SAFELY = frozenset({"vk"})
# Sends started at once where the messenger's client pools the sends of one moment into one call (VK's
# execute, bot/vk/sending.py): the same messages a second in a quarter of the calls, which leaves the
# bot's own replies room within VK's 20 calls a second.
TOGETHER = {"vk": 4}
# Claims taken at once: this many seconds of sends at the campaign's rate (well inside the lease).
BATCH_S = 2.0
MAX_BATCH = 100
# Sends waiting for the messenger's answer at once, per sender.
IN_FLIGHT = 32
TEMPORARY_RETRIES = 5
# How often a serving process looks for due steps when nothing woke it (follow-ups, resumed campaigns, and
# triggers queued by another process, e.g. `tonebot web` beside workers: within the 2 s a missed call allows).
# A look is a few indexed queries.
POLL_S = 1.0
RECORD_ATTEMPTS = 5
SENT, REFUSED, FAILED, POSTPONED, STOPPED = "sent", "refused", "failed", "postponed", "stopped"
Part = tuple[str, tuple[Button, ...], str]


def utc_now() -> datetime:
    """The current moment in UTC."""
    return datetime.now(UTC)


@dataclass(slots=True)
class Tally:
    """Steps handled, by channel and outcome (sent, refused, failed, postponed, stopped)."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, channel: str, outcome: str) -> None:
        """Count one step."""
        self.counts[channel, outcome] = self.counts.get((channel, outcome), 0) + 1

    def of(self, outcome: str, channel: str | None = None) -> int:
        """Steps with this outcome (in one channel, or all)."""
        return sum(n for (ch, out), n in self.counts.items() if out == outcome and channel in (None, ch))


class CampaignSender:
    """Sends the due steps of campaigns through each channel's Outbound; see the module's docstring."""

    def __init__(
        self,
        store: CampaignStore,
        engine: Engine,
        outbounds: Mapping[str, Outbound],
        *,
        clock: Callable[[], datetime] = utc_now,
        lease_s: float = LEASE_S,
        poll_s: float = POLL_S,
        on_step: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store, self.engine = store, engine
        self.outbounds = dict(outbounds)
        self.clock = clock
        self.lease_s, self.poll_s = lease_s, poll_s
        self.on_step = on_step
        self.tally = Tally()
        self._paces: dict[tuple[str, str], Pace] = {}
        self._held: dict[int, Claim] = {}
        self._room = asyncio.Semaphore(IN_FLIGHT)
        self._woken = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    # --- what serving processes and commands call ------------------------------------------------
    def wake(self) -> None:
        """Look for due steps now (a trigger event was just queued); safe from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._woken.set)

    def stop(self) -> None:
        """Claim nothing more; sends in flight finish and are recorded."""
        self._stopping = True
        self.wake()

    async def run(self, campaign_ids: Sequence[str]) -> Tally:
        """Send every step of these campaigns due now, until none is due or held: a dead sender's claims
        are waited for until their lease ends, then handled (sent again on VK, given up elsewhere)."""
        self._loop = asyncio.get_running_loop()
        renewer = asyncio.create_task(self._renew_held())
        try:
            while not self._stopping:
                await self.drain(campaign_ids)
                held = await asyncio.to_thread(self.store.claimed, campaign_ids, list(self.outbounds))
                if not held or self._stopping:
                    break
                stale_in = (min(held) + timedelta(seconds=self.lease_s) - self.clock()).total_seconds()
                log.info("%d steps are held by another sender; looking again in %.1f s", len(held), stale_in)
                await self._sleep(min(self.lease_s, max(0.2, stale_in + 0.2)))
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        return self.tally

    async def run_forever(self, stop: asyncio.Event | None = None) -> None:
        """Send the due steps of every running campaign (triggered messages, follow-ups) until `stop` is
        set: whenever woken, else every `poll_s` seconds."""
        self._loop = asyncio.get_running_loop()
        renewer = asyncio.create_task(self._renew_held())
        watcher = asyncio.create_task(self._stop_when(stop)) if stop is not None else None
        # Workers sharing PostgreSQL send one at a time: together they would multiply the rates.
        turn = SenderTurn(self.store)
        try:
            while not self._stopping:
                try:
                    if await asyncio.to_thread(turn.acquire):
                        running = await asyncio.to_thread(self.store.running)
                        if running:
                            await self.drain(running)
                except Exception:
                    log.exception("sending campaigns failed; will try again")
                await self._sleep(self.poll_s)
        finally:
            await asyncio.to_thread(turn.release)
            for task in (renewer, watcher):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def drain(self, campaign_ids: Sequence[str]) -> int:
        """One pass: every channel with a messenger sends its due steps of these campaigns; how many steps
        were handled."""
        done = await asyncio.gather(*(self._drain(channel, campaign_ids) for channel in self.outbounds))
        return sum(done)

    # --- one channel ------------------------------------------------------------------------------
    async def _drain(self, channel: str, campaign_ids: Sequence[str]) -> int:
        handled = 0
        sending: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping:
                campaigns = self.engine.live.get().campaigns
                live = [c for c in campaign_ids if campaigns.get(c) is not None]
                if not live:
                    break
                fastest = max(campaigns.campaigns[c].rate(channel) for c in live)
                claims = await asyncio.to_thread(
                    self.store.claim_due,
                    live,
                    channel,
                    self.clock(),
                    max(1, min(MAX_BATCH, int(fastest * BATCH_S))),
                    self.lease_s,
                    resend_stale=channel in RESENDS_SAFELY,
                )
                if not claims:
                    break
                self._held.update((claim.recipient_id, claim) for claim in claims)
                for claim in claims:
                    try:
                        await self._start(claim, sending)
                    except Exception as exc:
                        # A step that cannot be prepared (a content mistake) is given up, not held forever.
                        log.exception("campaign step %s could not be prepared", claim.key)
                        reason = f"не удалось составить сообщение: {exc}"[:200]
                        await self._settle(
                            claim, FAILED, self.store.record_failed, claim, reason, self.clock()
                        )
                handled += len(claims)
        finally:
            if sending:
                await asyncio.gather(*sending, return_exceptions=True)
        return handled

    async def _start(self, claim: Claim, sending: set[asyncio.Task[None]]) -> None:
        """Check, render and pace one claim, then send it beside the others."""
        content = self.engine.live.get()
        campaign = content.campaigns.get(claim.campaign)
        if campaign is None or claim.attempt > campaign.steps():
            # The campaign left the content, or has fewer follow-ups now: nothing more goes out.
            await self._settle(claim, STOPPED, self.store.postpone, claim, None)
            return
        zone = self._zone(claim, campaign, content.scenarios.company.timezone)
        now = self.clock()
        if not campaign.may_send_at(now, zone):
            await self._settle(claim, POSTPONED, self.store.postpone, claim, campaign.next_send_at(now, zone))
            return
        stored = ConversationState.from_json(claim.state_json) if claim.state_json else None
        turn = self.engine.reach_out(
            stored or ConversationState(persona=claim.persona), claim.campaign, claim.step
        )
        if turn is None or not turn.replies:
            await self._settle(claim, STOPPED, self.store.postpone, claim, None)
            return
        parts = _parts(claim, turn.replies)
        await self._pace_for(claim, campaign)
        await self._room.acquire()
        task = asyncio.create_task(self._send(claim, campaign, turn.replies, parts))
        sending.add(task)
        task.add_done_callback(sending.discard)
        task.add_done_callback(lambda _task: self._room.release())

    async def _send(self, claim: Claim, campaign: Campaign, replies: list[Reply], parts: list[Part]) -> None:
        outbound = self.outbounds[claim.channel]
        external_id, accepted = "", 0
        try:
            for index, (text, buttons, key) in enumerate(parts):
                if index:
                    await self._pace_for(claim, campaign)
                external_id = await self._until_accepted(outbound, claim, text, buttons, key) or external_id
                accepted += 1
        except NotAllowed as exc:
            if not accepted:
                log.info("%s chat %s does not allow messages: %s", claim.channel, claim.chat_id, exc)
                await self._settle(claim, REFUSED, self.store.record_refused, claim, BLOCKED, self.clock())
                return
            log.warning("part of campaign message %s was refused: %s", claim.key, exc)
        except Exception as exc:
            if not accepted:
                # A network failure on a messenger that cannot recognise a repeat may have been sent.
                reason = INTERRUPTED if isinstance(exc, TemporaryFailure) else f"отклонено: {exc}"[:200]
                log.warning("campaign message %s not sent: %s", claim.key, exc)
                await self._settle(claim, FAILED, self.store.record_failed, claim, reason, self.clock())
                return
            log.warning("part of campaign message %s failed: %s", claim.key, exc)
        await self._record_sent(claim, campaign, replies, external_id)

    async def _until_accepted(
        self, outbound: Outbound, claim: Claim, text: str, buttons: tuple[Button, ...], key: str
    ) -> str | None:
        """Send one part; flood control is waited out (the claim is renewed meanwhile), a network failure
        retried only where the messenger recognises the repeat."""
        failures = 0
        while True:
            try:
                return await outbound.send_text(claim.chat_id, text, buttons, key=key)
            except RetryLater as exc:
                log.info("%s asks to wait %.1f s", claim.channel, exc.seconds)
                await asyncio.sleep(exc.seconds)
            except TemporaryFailure:
                failures += 1
                if claim.channel not in RESENDS_SAFELY or failures > TEMPORARY_RETRIES:
                    raise
                await asyncio.sleep(min(5.0, 0.2 * 2**failures))

    async def _record_sent(
        self, claim: Claim, campaign: Campaign, replies: list[Reply], external_id: str
    ) -> None:
        now = self.clock()
        after = campaign.follow_up_after()
        next_at = now + after if after is not None and claim.attempt < campaign.steps() else None
        engine = self.engine

        def brought_up(state: ConversationState) -> None:
            # The stored state hears the answer to this message as the rendered copy did.
            engine.reach_out(state, claim.campaign, claim.step)

        record = self.store.record_sent
        await self._settle(claim, SENT, record, claim, replies, external_id, next_at, now, run=brought_up)

    async def _settle(
        self, claim: Claim, outcome: str, write: Callable[..., bool], *args: object, **kw: object
    ) -> None:
        """Store a step's outcome (retried while the database is away), count it, let the claim go."""
        try:
            for attempt in range(1, RECORD_ATTEMPTS + 1):
                try:
                    if not await asyncio.to_thread(write, *args, **kw):
                        log.warning("campaign step %s was taken over before it was recorded", claim.key)
                    break
                except Exception:
                    log.exception("recording campaign step %s failed (attempt %d)", claim.key, attempt)
                    if attempt == RECORD_ATTEMPTS:
                        return
                    await asyncio.sleep(0.5 * attempt)
            self.tally.add(claim.channel, outcome)
            if outcome in (SENT, REFUSED, FAILED):
                CAMPAIGN_SENDS.labels(claim.campaign, claim.channel, outcome).inc()
                if outcome == SENT:
                    counted(claim.channel, Direction.OUT)
            if self.on_step is not None:
                self.on_step(claim.channel, outcome)
        finally:
            self._held.pop(claim.recipient_id, None)

    # --- helpers ------------------------------------------------------------------------------------
    async def _pace_for(self, claim: Claim, campaign: Campaign) -> None:
        """Wait for the campaign's turn in the channel, then the channel's (campaigns together stay
        within the platform's limit)."""
        channel = claim.channel
        together = TOGETHER.get(channel, 1)
        own = self._paces.get((campaign.id, channel))
        if own is None:
            own = self._paces[campaign.id, channel] = Pace(campaign.rate(channel), together=together)
        await own.wait()
        limit = facts(channel).broadcast_per_s
        if limit:
            shared = self._paces.get(("", channel))
            if shared is None:
                shared = self._paces["", channel] = Pace(limit, together=together)
            await shared.wait()

    @staticmethod
    def _zone(claim: Claim, campaign: Campaign, company_zone: str) -> str:
        """The recipient's time zone, else the campaign's, else the company's."""
        for zone in (claim.time_zone, campaign.spec.time_zone):
            if zone:
                try:
                    ZoneInfo(zone)
                except (KeyError, ValueError):
                    log.warning("unknown time zone %r of campaign recipient %s", zone, claim.recipient_id)
                    continue
                return zone
        return company_zone

    async def _renew_held(self) -> None:
        """Keep this sender's claims fresh, so others never take a live sender's step for a dead one's."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            held = list(self._held.values())
            if held:
                try:
                    await asyncio.to_thread(self.store.renew, held, self.clock())
                except Exception:
                    log.exception("renewing campaign claims failed")

    async def _sleep(self, seconds: float) -> None:
        """Wait `seconds`, or less when woken."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), seconds)
        self._woken.clear()

    async def _stop_when(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stop()


def _parts(claim: Claim, replies: Sequence[Reply]) -> list[Part]:
    """The messages to send for a step: each reply in pieces the messenger takes, buttons on the last
    piece, every piece under a key of its own (the first under the step's key)."""
    parts: list[Part] = []
    for index, reply in enumerate(replies):
        pieces = split_text(reply.text, TELEGRAM_TEXT_LIMIT)
        for number, piece in enumerate(pieces):
            key = claim.key if not parts else f"{claim.key}:{index}:{number}"
            parts.append((piece, reply.buttons if number == len(pieces) - 1 else (), key))
    return parts
