"""POST /api/events: the company's systems report what happened to a client (a missed call) and every
campaign whose `trigger` is that kind writes to them within seconds; `consent` and `converted` move a
client's consent and funnel. Signed with a shared secret (web/events_signature.py), idempotent by event id.
The admins' guide is docs/events_api.md.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from inspect import isawaitable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from common.names import FunnelStatus
from dialogs.campaigns import CAMPAIGN_CHANNELS, Campaign
from dialogs.content import LiveContent
from storage.campaigns import CampaignStore, Target
from storage.identity import normal_phone
from storage.triggers import ChatTarget, TriggerStore
from web.events_signature import MIN_SECRET_CHARS, SIGNATURE_HEADER, TIMESTAMP_HEADER, refusal
from web.webchat import client_address
from wiring.runtime import Runtime
from wiring.settings import SettingsError, environment

log = logging.getLogger(__name__)
EVENTS_PATH = "/api/events"
SECRET_VARIABLE = "TONEBOT_EVENTS_SECRET"
RATE_VARIABLE = "TONEBOT_EVENTS_PER_ADDRESS"
# Requests one address may send: a burst of this many, refilled at this many per window.
PER_ADDRESS = 600
WINDOW_S = 60.0
# Addresses remembered; one inventing addresses cannot grow memory without bound.
KEPT_ADDRESSES = 10_000
CONSENT, CONVERTED = "consent", "converted"
CHANNELS = tuple(str(channel) for channel in CAMPAIGN_CHANNELS)


@dataclass(frozen=True, slots=True)
class EventsSettings:
    """The shared secret (empty: the API is off) and the requests each address may send."""

    secret: str = ""
    per_window: int = PER_ADDRESS
    window_s: float = WINDOW_S

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EventsSettings:
        """From TONEBOT_EVENTS_SECRET (at least 32 characters) and TONEBOT_EVENTS_PER_ADDRESS ("600/60":
        requests per seconds)."""
        env = environment() if env is None else env
        secret = env.get(SECRET_VARIABLE, "").strip()
        if secret and len(secret) < MIN_SECRET_CHARS:
            raise SettingsError(
                f"{SECRET_VARIABLE} must be at least {MIN_SECRET_CHARS} characters (openssl rand -hex 32)"
            )
        per_window, window = PER_ADDRESS, WINDOW_S
        spec = env.get(RATE_VARIABLE, "").strip()
        if spec:
            count, _, seconds = spec.partition("/")
            if not count.isdigit() or int(count) < 1 or (seconds and not seconds.isdigit()):
                raise SettingsError(f"{RATE_VARIABLE} must be N or N/SECONDS (e.g. 600/60), got {spec!r}")
            per_window, window = int(count), float(seconds or window)
        return cls(secret=secret, per_window=per_window, window_s=window)


class AddressBudget:
    """A token bucket per client address: `per_window` requests at once, refilled over `window_s`."""

    def __init__(self, per_window: int, window_s: float) -> None:
        self.per_window, self.rate = per_window, per_window / window_s
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when counted
        self._logged: OrderedDict[str, float] = OrderedDict()

    def take(self, address: str, now: float | None = None) -> float:
        """0 when `address` may send this request (it is counted); otherwise seconds until it may."""
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.get(address, (float(self.per_window), now))
        tokens = min(float(self.per_window), tokens + (now - then) * self.rate)
        if tokens < 1:
            return (1 - tokens) / self.rate
        self._buckets[address] = (tokens - 1, now)
        self._buckets.move_to_end(address)
        while len(self._buckets) > KEPT_ADDRESSES:
            self._buckets.popitem(last=False)
        return 0.0

    def first_in_a_while(self, address: str, now: float | None = None) -> bool:
        """True at most once a minute per address: what a log should say of repeated refusals."""
        now = time.monotonic() if now is None else now
        if now - self._logged.get(address, -math.inf) < 60:
            return False
        self._logged[address] = now
        self._logged.move_to_end(address)
        while len(self._logged) > KEPT_ADDRESSES:
            self._logged.popitem(last=False)
        return True


class ClientRef(BaseModel):
    """Who the event is about: a chat (`channel` and `chat_id`) or a verified `phone`."""

    model_config = ConfigDict(extra="forbid")
    channel: str | None = Field(default=None, max_length=16)
    chat_id: str | None = Field(default=None, min_length=1, max_length=64)
    phone: str | None = Field(default=None, min_length=1, max_length=32)

    @model_validator(mode="after")
    def _one_way(self) -> ClientRef:
        by_chat = self.channel is not None or self.chat_id is not None
        if by_chat == (self.phone is not None):
            raise ValueError("give either phone, or channel and chat_id")
        if by_chat and (self.channel is None or self.chat_id is None):
            raise ValueError("a chat needs both channel and chat_id")
        if self.channel is not None and self.channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
        if self.phone is not None and normal_phone(self.phone) is None:
            raise ValueError("phone is not a phone number")
        return self


class EventIn(BaseModel):
    """One event as the company's systems send it."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")
    kind: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    client: ClientRef
    at: AwareDatetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _campaign_named(self) -> EventIn:
        if self.kind == CONVERTED and not isinstance(self.data.get("campaign"), str):
            raise ValueError("a converted event needs data.campaign: the campaign's id")
        return self

    def campaign(self) -> str:
        """The campaign `data.campaign` names ("" when none)."""
        named = self.data.get("campaign")
        return named if isinstance(named, str) else ""

    def payload(self) -> dict[str, Any]:
        """What the event row keeps: when it happened and its data; who it named is in the recipient row
        (a phone stored here would outlive the client's erasure)."""
        return {"at": self.at.isoformat() if self.at else None, "data": self.data}


class BadEvent(ValueError):
    """The body is no event: the message says what is wrong, for the 400 answer."""


def parse(body: bytes) -> EventIn:
    """The event in a request body; BadEvent naming each problem."""
    try:
        return EventIn.model_validate_json(body)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(str(part) for part in error["loc"]) or "body"
            problems.append(f"{where}: {error['msg']}")
        raise BadEvent("; ".join(problems)) from None


@dataclass(frozen=True, slots=True)
class Answer:
    """The status and JSON body to answer with, and whether a campaign's sender should look now."""

    status: int
    body: dict[str, Any]
    queued: bool = False


@dataclass(slots=True)
class EventsApi:
    """What the route shares; one per app, in `app.state.events`."""

    settings: EventsSettings
    content: LiveContent
    triggers: TriggerStore
    queue: CampaignStore
    budget: AddressBudget = field(init=False)
    # Campaigns this process has made sure were started (a first event starts a triggered campaign).
    started: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.budget = AddressBudget(self.settings.per_window, self.settings.window_s)

    def handle(self, event: EventIn, now: datetime) -> Answer:
        """Do what the event asks (in a worker thread: it reads and writes the database)."""
        if self.triggers.seen(event.id):
            return _duplicate()
        if event.kind in (CONSENT, CONVERTED):
            return self._preference(event, now)
        campaigns = self.content.get().campaigns.for_trigger(event.kind)
        if not campaigns:
            return _not_found(f"no campaign starts on events of kind {event.kind!r}")
        people, named = self._person(event)
        if not people:
            return _not_found(named)
        targets = self._targets(event, people)
        if not targets:
            return _not_found("the client has no chat in a messenger campaigns write in")
        return self._enqueue(event, campaigns, targets, now)

    def _person(self, event: EventIn) -> tuple[list[int], str]:
        """The clients of the person the event names, and what to say when there are none."""
        client = event.client
        if client.phone is not None:
            phone = normal_phone(client.phone) or ""
            return self.triggers.person_of_phone(phone), "no client has this phone verified"
        assert client.channel is not None and client.chat_id is not None
        people = self.triggers.person_of_chat(client.channel, client.chat_id)
        return people, f"no client in {client.channel} chat {client.chat_id}"

    def _targets(self, event: EventIn, people: list[int]) -> list[ChatTarget]:
        """The chats to try, best first: the named chat, or the person's most recently used one."""
        client = event.client
        if client.channel is None:
            return self.triggers.chats_of(people, CHANNELS)
        chats = self.triggers.chats_of(people, [client.channel])
        return [target for target in chats if target.chat_id == client.chat_id]

    def _enqueue(
        self, event: EventIn, campaigns: list[Campaign], chats: list[ChatTarget], now: datetime
    ) -> Answer:
        """Queue the client in each campaign: its first chat that may be written to, else its first chat,
        counted as not allowed with the reason."""
        payload = json.dumps(event.payload(), ensure_ascii=False, sort_keys=True)
        targets = [Target(chat.channel, chat.chat_id) for chat in chats]
        results: list[dict[str, Any]] = []
        for index, campaign in enumerate(campaigns):
            if campaign.id not in self.started:
                # Never started: the first event starts it. One an admin paused stays paused.
                self.queue.start(campaign.id, now)
                self.started.add(campaign.id)
            # trigger_events holds one row per id: the second campaign of one kind keys its row apart.
            row_id = event.id if index == 0 else f"{event.id}@{campaign.id}"
            outcome = self.queue.enqueue_for_event(
                campaign.id, campaign.advertising, event.kind, row_id, payload, targets, now
            )
            if outcome.duplicate and index == 0:
                return _duplicate()
            results.append(
                {"campaign": campaign.id, "recipient": outcome.recipient_id, "status": outcome.status}
            )
        reasons = self.triggers.reasons(
            [r["recipient"] for r in results if r["status"] != FunnelStatus.QUEUED]
        )
        for result in results:
            if reasons.get(result["recipient"]):
                result["reason"] = reasons[result["recipient"]]
        queued = any(result["status"] == FunnelStatus.QUEUED for result in results)
        return Answer(202 if queued else 200, {"queued": queued, "recipients": results}, queued=queued)

    def _preference(self, event: EventIn, now: datetime) -> Answer:
        people, named = self._person(event)
        if not people:
            return _not_found(named)
        # A consent or a purchase reported ahead of our clock happened now, not in the future.
        at = min(event.at, now) if event.at else now
        campaign = event.campaign()
        if event.kind == CONSENT:
            recorded = self.triggers.record_consent(
                event.id, event.kind, people, campaign, event.payload(), at, now
            )
        else:
            found = self.triggers.record_conversion(
                event.id, event.kind, people, campaign, event.payload(), at, now
            )
            if found is None:
                return _not_found(f"the client is no recipient of campaign {campaign!r}")
            recorded = found
        if recorded.duplicate:
            return _duplicate()
        body: dict[str, Any] = {"queued": False, "recorded": True}
        if event.kind == CONSENT:
            body["consent"] = "recorded" if recorded.consented else "already recorded"
        if recorded.recipient_id is not None:
            body.update(recipient=recorded.recipient_id, status=recorded.status, moved=recorded.moved)
        return Answer(200, body)


def events_api(runtime: Runtime, settings: EventsSettings | None = None) -> EventsApi:
    """The API's objects over a runtime's content and database; settings from the environment if not given."""
    store = runtime.store
    triggers = TriggerStore(store.engine, store.write_lock)
    queue = CampaignStore(store.engine, store.write_lock)
    return EventsApi(settings or EventsSettings.from_env(), runtime.content, triggers, queue)


def _duplicate() -> Answer:
    return Answer(200, {"duplicate": True, "queued": False})


def _not_found(reason: str) -> Answer:
    return Answer(404, {"queued": False, "reason": reason})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def wake(listeners: Sequence[Callable[[], Any]]) -> None:
    """Tell the campaign senders in this process that recipients are waiting (theirs to send now)."""
    for listener in listeners:
        try:
            woken = listener()
            if isawaitable(woken):
                await woken
        except Exception:
            log.exception("a campaign sender could not be woken; it finds the event on its next look")


router = APIRouter()


@router.post(EVENTS_PATH)
async def receive(request: Request) -> Response:
    """One signed event: 202 queued, 200 recorded or a repeat, 4xx what was wrong (docs/events_api.md)."""
    api: EventsApi = request.app.state.events
    if not api.settings.secret:
        return _error(503, "events API is off")
    address = client_address(request)
    wait = api.budget.take(address)
    if wait:
        return _error(429, "too many requests", {"Retry-After": str(max(1, math.ceil(wait)))})
    # The body's size is limited while it arrives (web/limits.py): at most 64 KiB.
    body = await request.body()
    headers = request.headers
    why = refusal(
        api.settings.secret, headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER), body, time.time()
    )
    if why is not None:
        if api.budget.first_in_a_while(address):
            log.warning("events API: refused a request from %s: %s", address, why)
        return _error(401, "unauthorized")
    try:
        event = parse(body)
    except BadEvent as exc:
        return _error(400, str(exc))
    try:
        answer = await run_in_threadpool(api.handle, event, datetime.now(UTC))
    except Exception:
        log.exception("events API: event %s could not be handled", event.id)
        return _error(503, "the event could not be stored; send it again")
    if answer.queued:
        await wake(request.app.state.campaign_listeners)
    return JSONResponse(answer.body, status_code=answer.status)
