"""Who answers which category, when, and how fast: the teams file (`content/teams.yaml`).

Pure: every answer is computed from a time passed in, so the engine can tell a client when a person
will answer without reading a clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.yamlfile import ContentError, ContentIssue, issue_at, load_yaml, validate
from dialogs.scenarios import TimeZoneName

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_TARGET = timedelta(minutes=2)
# How far ahead to look for the next opening: a team closed for a whole week is reported as closed.
LOOKAHEAD_DAYS = 8
_DURATION = re.compile(r"^\s*(\d{1,4})\s*(s|m|h)\s*$")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_duration(text: str) -> timedelta:
    """`90s`, `2m`, `4h` as a timedelta; ValueError says what is expected."""
    found = _DURATION.match(str(text))
    if not found:
        raise ValueError(f"expected a duration like 90s, 2m or 4h, got {text!r}")
    amount, unit = int(found.group(1)), found.group(2)
    return timedelta(seconds=amount * {"s": 1, "m": 60, "h": 3600}[unit])


def _days(key: str) -> list[int]:
    chosen: list[int] = []
    for part in key.lower().replace(" ", "").split(","):
        ends = part.split("-")
        if not all(end in DAYS for end in ends) or len(ends) > 2:
            raise ValueError(f"unknown days {key!r}; write mon, tue, ... sun, ranges like mon-fri, or lists")
        first, last = DAYS.index(ends[0]), DAYS.index(ends[-1])
        span = range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)]
        chosen.extend(span)
    return chosen


def _hours(value: str) -> tuple[time, time] | None:
    text = str(value).strip().lower()
    if text == "closed":
        return None
    if text in ("24h", "always"):
        return time(0, 0), time(23, 59, 59)
    found = _RANGE.match(text)
    if not found:
        raise ValueError(f"expected hours like 09:00-18:00, 24h or closed, got {value!r}")
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    if h2 == 24 and m2 == 0:
        h2, m2 = 23, 59
    if not (h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60):
        raise ValueError(f"no such time of day in {value!r}")
    start, end = time(h1, m1), time(h2, m2)
    if end <= start:
        raise ValueError(f"{value!r} closes before it opens; night shifts are written as two days' ranges")
    return start, end


class CategoryStaff(BaseModel):
    """The people who answer one category, and the one who makes sure they do."""

    model_config = ConfigDict(extra="forbid")
    responsible: str
    operators: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _responsible_subscribed(self) -> CategoryStaff:
        if self.responsible not in self.operators:
            self.operators.append(self.responsible)
        return self


class Team(BaseModel):
    """A group of operators with common business hours."""

    model_config = ConfigDict(extra="forbid")
    title: str = ""
    timezone: TimeZoneName = "Europe/Moscow"
    hours: dict[str, str] = Field(default_factory=lambda: {"mon-sun": "24h"})
    categories: dict[str, CategoryStaff] = Field(default_factory=dict)

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, str]) -> dict[str, str]:
        for key, hours in value.items():
            _days(key)
            _hours(hours)
        return value

    def week(self) -> list[tuple[time, time] | None]:
        """Opening hours for Monday..Sunday (None: closed); later keys override earlier ones."""
        week: list[tuple[time, time] | None] = [None] * 7
        for key, hours in self.hours.items():
            for day in _days(key):
                week[day] = _hours(hours)
        return week

    def is_open(self, at: datetime) -> bool:
        """Whether the team works at this moment."""
        local = at.astimezone(ZoneInfo(self.timezone))
        hours = self.week()[local.weekday()]
        return hours is not None and hours[0] <= local.time() <= hours[1]

    def next_opening(self, at: datetime) -> datetime | None:
        """The first moment at or after `at` when the team works (in the team's zone); None if never."""
        zone = ZoneInfo(self.timezone)
        local = at.astimezone(zone)
        if self.is_open(at):
            return local
        week = self.week()
        for offset in range(LOOKAHEAD_DAYS):
            day = (local + timedelta(days=offset)).date()
            hours = week[day.weekday()]
            if hours is None:
                continue
            opening = datetime.combine(day, hours[0], tzinfo=zone)
            if opening >= local:
                return opening
        return None


class Wording(BaseModel):
    """How waits and opening times are said to clients (the guides put them in sentences)."""

    model_config = ConfigDict(extra="forbid")
    plural_rule: str = Field(default="ru", pattern="^(ru|en)$")
    seconds: list[str] = Field(default_factory=lambda: ["секунды", "секунд", "секунд"], min_length=3)
    minutes: list[str] = Field(default_factory=lambda: ["минуты", "минут", "минут"], min_length=3)
    hours: list[str] = Field(default_factory=lambda: ["часа", "часов", "часов"], min_length=3)
    today: str = "сегодня в {time}"
    tomorrow: str = "завтра в {time}"
    on_day: str = "{day} в {time}"
    days: list[str] = Field(
        default_factory=lambda: [
            "в понедельник",
            "во вторник",
            "в среду",
            "в четверг",
            "в пятницу",
            "в субботу",
            "в воскресенье",
        ],
        min_length=7,
        max_length=7,
    )

    def plural(self, forms: list[str], n: int) -> str:
        """The form of a unit word that goes with the number n."""
        if self.plural_rule == "en":
            return forms[0] if n == 1 else forms[2]
        if n % 10 == 1 and n % 100 != 11:
            return forms[0]
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return forms[1]
        return forms[2]

    def duration(self, span: timedelta) -> str:
        """`2 минут`: a wait as the guides' {wait} expects it."""
        seconds = int(span.total_seconds())
        if seconds < 60:
            return f"{seconds} {self.plural(self.seconds, seconds)}"
        if seconds < 3600 or seconds % 3600:
            minutes = round(seconds / 60)
            return f"{minutes} {self.plural(self.minutes, minutes)}"
        hours = seconds // 3600
        return f"{hours} {self.plural(self.hours, hours)}"

    def opening(self, opens: datetime, now: datetime) -> str:
        """`завтра в 9:00`: when people answer, as the guides' {opening} expects it."""
        local_now = now.astimezone(opens.tzinfo)
        clock = f"{opens.hour}:{opens.minute:02d}"
        days_ahead = (opens.date() - local_now.date()).days
        if days_ahead == 0:
            return self.today.format(time=clock)
        if days_ahead == 1:
            return self.tomorrow.format(time=clock)
        return self.on_day.format(day=self.days[opens.weekday()], time=clock)


class TeamsFile(BaseModel):
    """The teams file as written."""

    model_config = ConfigDict(extra="forbid")
    first_response: dict[str, str] = Field(default_factory=lambda: {"default": "2m"})
    wording: Wording = Field(default_factory=Wording)
    teams: dict[str, Team] = Field(default_factory=dict)

    @field_validator("first_response")
    @classmethod
    def _valid_targets(cls, value: dict[str, str]) -> dict[str, str]:
        for target in value.values():
            parse_duration(target)
        return value


@dataclass(frozen=True, slots=True)
class HandoffPlan:
    """When people will answer a handoff: open now or when they open, and the first-response deadline."""

    open_now: bool
    due_at: datetime
    wait: str
    opening: str


@dataclass(frozen=True, slots=True)
class TeamBook:
    """The loaded teams file with lookups by category."""

    spec: TeamsFile

    def team_for(self, category: str) -> Team | None:
        """The team that answers a category."""
        return next((team for team in self.spec.teams.values() if category in team.categories), None)

    def staff(self, category: str) -> CategoryStaff | None:
        """Subscribed operators and the responsible person of a category."""
        team = self.team_for(category)
        return team.categories[category] if team else None

    def categories_of(self, operator: str) -> list[str]:
        """Categories an operator is subscribed to."""
        return [
            name
            for team in self.spec.teams.values()
            for name, staff in team.categories.items()
            if operator in staff.operators
        ]

    def target(self, channel: str) -> timedelta:
        """The first-human-response target for a channel."""
        targets = self.spec.first_response
        text = targets.get(channel) or targets.get("default")
        return parse_duration(text) if text else DEFAULT_TARGET

    def plan(self, category: str, channel: str, at: datetime) -> HandoffPlan:
        """When a handoff made at `at` should first be answered, and how to say it."""
        target = self.target(channel)
        wording = self.spec.wording
        team = self.team_for(category)
        if team is None or team.is_open(at):
            return HandoffPlan(True, at + target, wording.duration(target), "")
        opens = team.next_opening(at)
        if opens is None:
            return HandoffPlan(False, at + timedelta(days=LOOKAHEAD_DAYS), wording.duration(target), "")
        return HandoffPlan(False, opens + target, wording.duration(target), wording.opening(opens, at))


def load_teams(path: Path) -> TeamBook:
    """Load the teams file; a missing file means one always-open desk with the default target."""
    if not path.exists():
        return TeamBook(TeamsFile())
    data = load_yaml(path)
    spec = validate(TeamsFile, data if data is not None else {}, path)
    issues: list[ContentIssue] = []
    seen: dict[str, str] = {}
    for team_name, team in spec.teams.items():
        for category in team.categories:
            if category in seen:
                where = ("teams", team_name, "categories", category)
                message = f"category {category!r} is already answered by team {seen[category]!r}"
                issues.append(issue_at(path, data, where, message))
            seen[category] = team_name
    if issues:
        raise ContentError(issues)
    return TeamBook(spec)


def check_categories(book: TeamBook, categories: set[str], path: Path) -> list[ContentIssue]:
    """Categories in the teams file that no scenario file defines, and scenario categories without a team."""
    unknown = [
        (team_name, category)
        for team_name, team in book.spec.teams.items()
        for category in team.categories
        if category not in categories
    ]
    issues = []
    if unknown:
        data = load_yaml(path)
        for team_name, category in unknown:
            where = ("teams", team_name, "categories", category)
            message = f"unknown category {category!r}; the scenarios define {sorted(categories)}"
            issues.append(issue_at(path, data, where, message))
    if book.spec.teams:
        for category in sorted(categories - {c for t in book.spec.teams.values() for c in t.categories}):
            message = f"category {category!r} has no team; add it under one team's categories"
            issues.append(ContentIssue(str(path), 1, 1, message))
    return issues
