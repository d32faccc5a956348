"""What a turn changed, beyond the replies: the service stores these."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    priority: str = "normal"
    note: str = ""


@dataclass(frozen=True, slots=True)
class TaskCreated:
    """A request that people complete later: a call-back, a tariff change, a connection."""

    kind: str
    category: str
    scenario_id: str
    details: dict[str, str] = field(default_factory=dict)


Event = DetailCollected | HandoffRequested | TaskCreated
