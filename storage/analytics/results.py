"""What the dashboard's queries answer: counts by day, handoffs and first responses, ratings, personas and
requests. Plain values; shares and quantiles are computed here so the page and the tests agree."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from storage.analytics.scope import Scope

RATINGS = (1, 2, 3, 4, 5)


def share(part: int, whole: int) -> float | None:
    """`part` of `whole` in percent; None when there is nothing to divide."""
    return None if whole <= 0 else 100.0 * part / whole


def nearest_rank(ordered: tuple[float, ...], percent: float) -> float | None:
    """The nearest-rank percentile of sorted values: the smallest value with at least `percent` % of
    the values at or below it (a value that really occurred, never an interpolation)."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(percent / 100.0 * len(ordered)) - 1)]


@dataclass(frozen=True, slots=True)
class DayCounts:
    """One local day: conversations started, messages each way, messages the bot did not understand."""

    day: date
    conversations: int
    incoming: int
    outgoing: int
    misunderstood: int

    @property
    def messages(self) -> int:
        """Messages both ways."""
        return self.incoming + self.outgoing

    @property
    def misunderstood_rate(self) -> float | None:
        """Not-understood messages per incoming message, in percent."""
        return share(self.misunderstood, self.incoming)


@dataclass(frozen=True, slots=True)
class ResponseTimes:
    """First replies of people to the handoffs of a category (or of a team: its categories combined)."""

    handoffs: int = 0
    answered: int = 0
    breached: int = 0
    # Seconds from each handoff to its first human reply, sorted.
    durations: tuple[float, ...] = ()

    @property
    def median_s(self) -> float | None:
        """The median wait for a first reply (the mean of the middle two for an even count)."""
        return statistics.median(self.durations) if self.durations else None

    @property
    def p90_s(self) -> float | None:
        """The wait that 90 % of first replies came within (nearest rank)."""
        return nearest_rank(self.durations, 90)

    @property
    def breached_share(self) -> float | None:
        """Handoffs whose first reply came after its target (or has not come, past it), in percent."""
        return share(self.breached, self.handoffs)

    @classmethod
    def combine(cls, parts: Iterable[ResponseTimes]) -> ResponseTimes:
        """Several categories as one (a team's)."""
        chosen = list(parts)
        return cls(
            handoffs=sum(p.handoffs for p in chosen),
            answered=sum(p.answered for p in chosen),
            breached=sum(p.breached for p in chosen),
            durations=tuple(sorted(d for p in chosen for d in p.durations)),
        )


@dataclass(frozen=True, slots=True)
class PersonaLine:
    """Conversations started in the period whose client reads as one persona (the conversation's latest
    label), how many of them went to people, and the ratings of the period's handoffs of that persona."""

    persona: str
    conversations: int = 0
    handed_off: int = 0
    rated: int = 0
    rating_sum: int = 0

    @property
    def handoff_share(self) -> float | None:
        """Conversations handed to people, in percent."""
        return share(self.handed_off, self.conversations)

    @property
    def average_rating(self) -> float | None:
        """The mean rating of the persona's rated handoffs."""
        return None if not self.rated else self.rating_sum / self.rated


@dataclass(frozen=True, slots=True)
class ScenarioLine:
    """One request the bot served last in conversations (`""`: none recognised), with how many of those
    went to people, and tasks set up for it in the period."""

    scenario: str
    conversations: int = 0
    handed_off: int = 0
    tasks: int = 0


@dataclass(frozen=True, slots=True)
class Dashboard:
    """Everything the analytics page shows for one scope."""

    scope: Scope
    days: list[DayCounts]
    # Conversations started in the period, and those of them ever handed to people.
    conversations: int
    handed_off: int
    # Handoffs made in the period, by reason; first replies and breaches by category.
    handoffs: int
    reasons: dict[str, int]
    response: dict[str, ResponseTimes]
    # Ratings (1-5) of the period's handoffs; those under 4 flag a follow-up.
    ratings: dict[int, int]
    follow_ups_due: int
    # Follow-up tasks set up in the period, and how many of them are done.
    follow_up_tasks: int
    follow_ups_done: int
    personas: list[PersonaLine]
    scenarios: list[ScenarioLine]
    # Messages the bot did not understand in the period, by reason (not_understood, stuck, missed_point).
    misunderstood: dict[str, int] = field(default_factory=dict)

    @property
    def bot_alone(self) -> int:
        """Conversations the bot handled without people."""
        return self.conversations - self.handed_off

    @property
    def incoming(self) -> int:
        """Clients' messages in the period."""
        return sum(day.incoming for day in self.days)

    @property
    def outgoing(self) -> int:
        """Messages to clients in the period."""
        return sum(day.outgoing for day in self.days)

    @property
    def rated(self) -> int:
        """Handoffs the client rated."""
        return sum(self.ratings.values())

    @property
    def average_rating(self) -> float | None:
        """The mean rating."""
        rated = self.rated
        return None if not rated else sum(r * n for r, n in self.ratings.items()) / rated

    @property
    def overall(self) -> ResponseTimes:
        """First replies over every category."""
        return ResponseTimes.combine(self.response.values())
