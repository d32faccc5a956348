"""What a turn changed, beyond the replies: the service stores these."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.names import Priority


@dataclass(frozen=True, slots=True)
class DetailCollected:
    """A detail was taken, or corrected when `previous` is set."""

    name: str
    value: str
    raw: str
    previous: str | None = None


@dataclass(frozen=True, slots=True)
class HandoffRequested:
    """The conversation goes to a person."""

    reason: str
    category: str
    priority: str = Priority.NORMAL
    note: str = ""
    # When the first human reply is due (ISO 8601); later than the target when people are off work.
    due_at: str = ""


@dataclass(frozen=True, slots=True)
class TaskCreated:
    """A request that people complete later: a call-back, a tariff change, a connection."""

    kind: str
    category: str
    scenario_id: str
    details: dict[str, str] = field(default_factory=dict)
    # When people should do it (ISO 8601): the chosen call-back time; empty for "as soon as possible".
    due_at: str = ""


@dataclass(frozen=True, slots=True)
class RatingGiven:
    """The client rated how people helped, 1 to 5, after an operator closed the conversation."""

    score: int


@dataclass(frozen=True, slots=True)
class CampaignAnswered:
    """The client answered a campaign's message: `action` is the button they chose (CampaignAction) or ""
    for words of their own. Any answer stops the campaign's follow-ups."""

    campaign: str
    action: str = ""


@dataclass(frozen=True, slots=True)
class NotUnderstood:
    """The bot did not understand the client's message (`reason` "not_understood"), or handed the
    conversation over for failing to (a handoff reason: stuck, missed_point). Editors read these."""

    reason: str
    text: str


Event = DetailCollected | HandoffRequested | TaskCreated | RatingGiven | CampaignAnswered | NotUnderstood
