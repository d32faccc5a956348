"""What the campaign store hands out and takes in: targets, claims, counts, and the reasons it records."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

# Why a recipient was not messaged, or a step was not (operators and editors read these).
NO_DOOR = "не открывал чат с ботом"
NO_CONSENT = "нет согласия на рекламу"
OPTED_OUT = "отписался"
BLOCKED = "заблокировал бота"
WINDOW_CLOSED = "окно WhatsApp 24 ч закрыто"
INTERRUPTED = "прервано: неизвестно, дошло ли"


@dataclass(frozen=True, slots=True)
class Target:
    """A chat a campaign should write to: from a CSV row, an audience query or a trigger event.

    `consent` True records advertising consent for the chat's client (source `consent_source`)."""

    channel: str
    chat_id: str
    time_zone: str = ""
    consent: bool | None = None
    consent_source: str = ""


@dataclass(slots=True)
class Enqueued:
    """What `enqueue` did: new recipients by status, rows that were there already, consents recorded."""

    added: dict[str, int] = field(default_factory=dict)
    existing: int = 0
    consents: int = 0

    def count(self, status: str) -> int:
        """New recipients with this status."""
        return self.added.get(status, 0)

    @property
    def total(self) -> int:
        """Every target: new rows and existing ones."""
        return sum(self.added.values()) + self.existing


@dataclass(frozen=True, slots=True)
class Claim:
    """A recipient claimed for sending its next step (`attempt`, 1 for the first message).

    `state_json` is the chat's open conversation's state ("" when none is open); `repeat` says a crashed
    sender's claim is being sent again (only on channels that deduplicate a repeated send)."""

    recipient_id: int
    campaign: str
    channel: str
    chat_id: str
    client_id: int | None
    persona: str
    time_zone: str
    status: str
    steps_sent: int
    attempt: int
    claimed_at: datetime
    state_json: str = ""
    repeat: bool = False

    @property
    def step(self) -> int:
        """The step being sent, from 0: the first message, then follow-ups."""
        return self.attempt - 1

    @property
    def key(self) -> str:
        """The send's stable key, `campaign:<id>:<recipient id>:<step>` (VK's random_id comes from it)."""
        return f"campaign:{self.campaign}:{self.recipient_id}:{self.step}"


@dataclass(frozen=True, slots=True)
class FunnelLine:
    """Recipients of a campaign with one status (and reason) in one channel and persona."""

    channel: str
    persona: str
    status: str
    reason: str
    count: int


class TriggerOutcome(NamedTuple):
    """What `enqueue_for_event` did: the recipient it queued (or found), whether the event was seen
    before, and the recipient's status ("" when neither)."""

    recipient_id: int | None
    duplicate: bool
    status: str
