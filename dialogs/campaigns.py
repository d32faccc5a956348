"""Campaign files (`campaigns/*.yaml` of a company's content): who a campaign writes to, what it says in
each persona's tone, its buttons, follow-ups, the hours it may write in and how fast it sends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from common.channels import facts
from common.names import CAMPAIGN_PAYLOAD_PREFIX, CampaignAction, Channel
from common.yamlfile import ContentError, ContentIssue, issue_at, load_yaml, validate
from dialogs.scenarios import known_zone

# Messengers a campaign can write in: the web chat has no way to reach a client who is not on the page.
CAMPAIGN_CHANNELS = (Channel.TELEGRAM, Channel.VK, Channel.MAX, Channel.WHATSAPP)
# Labels when a campaign's file gives none.
DEFAULT_LABELS = {
    CampaignAction.CALLBACK: "Перезвоните мне",
    CampaignAction.INTERESTED: "Интересно",
    CampaignAction.LATER: "Не сейчас",
    CampaignAction.STOP: "Не присылать больше",
}
# Guide moments every campaign uses besides its own message (phrased in content/common/guides).
STOP_HINT = "campaign.stop_hint"
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock(value: str) -> time:
    hours, _, minutes = value.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit() and int(hours) <= 24 and int(minutes) < 60):
        raise ValueError(f"expected a time like 09:00, got {value!r}")
    return time(0, 0) if int(hours) == 24 else time(int(hours), int(minutes))


def _window(value: str) -> str:
    start, dash, end = value.partition("-")
    if not dash:
        raise ValueError(f"expected hours like 09:00-20:00, got {value!r}")
    _clock(start), _clock(end)
    return value


def _days(value: str) -> str:
    for part in value.split(","):
        first, _, last = part.strip().partition("-")
        for day in (first, last or first):
            if day not in _WEEKDAYS:
                raise ValueError(f"unknown day {day!r}; expected mon, tue, wed, thu, fri, sat, sun")
    return value


Window = Annotated[str, AfterValidator(_window)]


class AudienceQuery(BaseModel):
    """Known clients a campaign writes to: those who wrote in these channels, with this history."""

    model_config = ConfigDict(extra="forbid")
    channels: list[Channel] = Field(default_factory=lambda: list(CAMPAIGN_CHANNELS))
    scenarios: list[str] = Field(
        default_factory=list, description="Clients whose conversations served any of these requests."
    )
    details: list[str] = Field(default_factory=list, description="Clients who gave all of these details.")
    personas: list[str] = Field(default_factory=list, description="Clients whose persona is one of these.")
    active_within_days: int | None = Field(
        default=None, ge=1, description="Clients who wrote within this many days."
    )


class Audience(BaseModel):
    """Either a CSV file (channel, chat_id and optional name, time_zone, consent columns) or a query."""

    model_config = ConfigDict(extra="forbid")
    csv: str | None = Field(default=None, description="Path relative to the campaign's file.")
    query: AudienceQuery | None = None
    triggered: bool = Field(
        default=False, description="Recipients come one by one from POST /api/events (see `trigger`)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> Audience:
        sources = sum(bool(source) for source in (self.csv, self.query, self.triggered))
        if sources != 1:
            raise ValueError("give exactly one audience: csv, query or triggered: true")
        return self


class ButtonSpec(BaseModel):
    """A button under the campaign's message: what it does, and its label (defaults per action)."""

    model_config = ConfigDict(extra="forbid")
    action: CampaignAction
    label: str = Field(default="", max_length=40)

    def text(self) -> str:
        """The label the client sees."""
        return self.label or DEFAULT_LABELS[self.action]


class FollowUps(BaseModel):
    """Messages to those who did not answer: `after_hours` after the previous one, at most `max`."""

    model_config = ConfigDict(extra="forbid")
    moment: str
    after_hours: float = Field(gt=0)
    max: int = Field(default=1, ge=0, le=5)


class Hours(BaseModel):
    """When a campaign may write, in the client's time zone: within business hours, never in quiet ones."""

    model_config = ConfigDict(extra="forbid")
    business: Window = "09:00-20:00"
    quiet: Window | None = "21:00-09:00"
    days: Annotated[str, AfterValidator(_days)] = "mon-sun"


class CampaignSpec(BaseModel):
    """One campaign as its editors write it."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    purpose: Literal["service", "advertising"] = Field(
        description="Advertising needs the client's recorded consent and always offers a way out."
    )
    audience: Audience
    trigger: str | None = Field(
        default=None, pattern=r"^[a-z0-9_]+$", description="An event kind of POST /api/events."
    )
    message: str = Field(description="The guide moment phrasing the message, per persona.")
    buttons: list[ButtonSpec] = Field(default_factory=list, max_length=3)
    follow_up: FollowUps | None = None
    sales_category: str | None = Field(
        default=None, description="Whose people take a client who answers «Интересно»."
    )
    hours: Hours = Field(default_factory=Hours)
    time_zone: Annotated[str, AfterValidator(known_zone)] | None = Field(
        default=None, description="For recipients whose own zone is unknown; the company's by default."
    )
    rate: dict[Channel, float] = Field(
        default_factory=dict, description="Messages a second per channel; half the platform's limit if unset."
    )

    @field_validator("rate")
    @classmethod
    def _within_limits(cls, rate: dict[Channel, float]) -> dict[Channel, float]:
        for channel, per_second in rate.items():
            limit = facts(channel).broadcast_per_s
            if not limit:
                raise ValueError(f"campaigns do not write in {channel}")
            if not 0 < per_second <= limit:
                title = facts(channel).title
                raise ValueError(f"{channel}: {per_second:g} a second; {title} allows up to {limit:g}")
        return rate

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSpec:
        actions = [button.action for button in self.buttons]
        if len(set(actions)) != len(actions):
            raise ValueError("buttons: each action once")
        if CampaignAction.INTERESTED in actions and not self.sales_category:
            raise ValueError("an «interested» button needs sales_category: whose people take those clients")
        if self.audience.triggered and not self.trigger:
            raise ValueError("a triggered audience needs `trigger`: the event kind that starts it")
        return self


class CampaignFile(BaseModel):
    """A campaigns file: a list of campaigns."""

    model_config = ConfigDict(extra="forbid")
    campaigns: list[CampaignSpec]


@dataclass(frozen=True, slots=True)
class Campaign:
    """A campaign ready to run: its spec, the file it came from, and its CSV audience's full path."""

    spec: CampaignSpec
    path: Path
    csv_path: Path | None

    @property
    def id(self) -> str:
        """The campaign's id."""
        return self.spec.id

    @property
    def advertising(self) -> bool:
        """Advertising: only to clients who consented, and always with a way out."""
        return self.spec.purpose == "advertising"

    def buttons(self) -> list[ButtonSpec]:
        """The buttons under the message; advertising gets a "stop" button when its file has none."""
        buttons = list(self.spec.buttons)
        if self.advertising and not any(b.action == CampaignAction.STOP for b in buttons):
            buttons.append(ButtonSpec(action=CampaignAction.STOP))
        return buttons

    def rate(self, channel: str) -> float:
        """Messages a second in a channel: the file's, or half the platform's limit (the rest: replies)."""
        given = self.spec.rate.get(Channel(channel)) if channel in Channel.__members__.values() else None
        return given or facts(channel).broadcast_per_s / 2

    def moment(self, step: int) -> str:
        """The guide moment of the message at `step` (0: the first, then follow-ups)."""
        if step == 0 or self.spec.follow_up is None:
            return self.spec.message
        return self.spec.follow_up.moment

    def steps(self) -> int:
        """How many messages a recipient may get at most: the first and the follow-ups."""
        return 1 + (self.spec.follow_up.max if self.spec.follow_up else 0)

    def follow_up_after(self) -> timedelta | None:
        """How long after a message without an answer the next one goes."""
        if self.spec.follow_up is None or not self.spec.follow_up.max:
            return None
        return timedelta(hours=self.spec.follow_up.after_hours)

    def may_send_at(self, moment: datetime, zone: str) -> bool:
        """Whether the campaign may write now to a client in this time zone."""
        local = moment.astimezone(ZoneInfo(zone))
        hours = self.spec.hours
        if _WEEKDAYS[local.weekday()] not in _day_set(hours.days):
            return False
        if not _inside(local.time(), hours.business):
            return False
        return not (hours.quiet and _inside(local.time(), hours.quiet))

    def next_send_at(self, moment: datetime, zone: str) -> datetime:
        """The first moment from `moment` on when the campaign may write to this client (minute steps)."""
        probe = moment
        for _ in range(8 * 24 * 4):  # a week of quarter hours: hours that never open are refused at load
            if self.may_send_at(probe, zone):
                return probe
            probe = (probe + timedelta(minutes=15)).replace(second=0, microsecond=0)
        return moment


def payload(campaign: str, action: str) -> str:
    """A campaign button's payload: `campaign:<id>:<action>`."""
    return f"{CAMPAIGN_PAYLOAD_PREFIX}{campaign}:{action}"


def parse_payload(value: str | None) -> tuple[str, str] | None:
    """(campaign, action) of a campaign button's payload; None for any other text."""
    if not value or not value.startswith(CAMPAIGN_PAYLOAD_PREFIX):
        return None
    campaign, _, action = value.removeprefix(CAMPAIGN_PAYLOAD_PREFIX).rpartition(":")
    if not campaign or action not in CampaignAction.__members__.values():
        return None
    return campaign, action


def _day_set(days: str) -> set[str]:
    chosen: set[str] = set()
    for part in days.split(","):
        first, _, last = part.strip().partition("-")
        start, end = _WEEKDAYS.index(first), _WEEKDAYS.index(last or first)
        span = range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)]
        chosen.update(_WEEKDAYS[i] for i in span)
    return chosen


def _inside(moment: time, window: str) -> bool:
    start_text, _, end_text = window.partition("-")
    start, end = _clock(start_text), _clock(end_text)
    if start == end:
        return True
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end  # across midnight: "21:00-09:00"


class CampaignBook:
    """Every campaign of a company by id."""

    def __init__(self, campaigns: Sequence[Campaign] = ()) -> None:
        self.campaigns = {campaign.id: campaign for campaign in campaigns}

    def get(self, campaign_id: str) -> Campaign | None:
        """A campaign by id."""
        return self.campaigns.get(campaign_id)

    def for_trigger(self, kind: str) -> list[Campaign]:
        """Campaigns an event of this kind starts."""
        return [c for c in self.campaigns.values() if c.spec.trigger == kind]


def load_campaigns(directories: Sequence[Path]) -> CampaignBook:
    """Load every `*.yaml` in the content layers' `campaigns` directories; ContentError on any problem."""
    issues: list[ContentIssue] = []
    found: dict[str, Campaign] = {}
    for directory in directories:
        for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
            data = load_yaml(path)
            try:
                spec = validate(CampaignFile, data if data is not None else {"campaigns": []}, path)
            except ContentError as exc:
                issues.extend(exc.issues)
                continue
            for index, campaign in enumerate(spec.campaigns):
                where = ("campaigns", index)
                if campaign.id in found and found[campaign.id].path.parent == path.parent:
                    issues.append(issue_at(path, data, (*where, "id"), f"campaign {campaign.id!r} twice"))
                    continue
                csv_path = (path.parent / campaign.audience.csv).resolve() if campaign.audience.csv else None
                if csv_path is not None and not csv_path.is_file():
                    message = f"audience file {campaign.audience.csv!r} not found next to {path.name}"
                    issues.append(issue_at(path, data, (*where, "audience", "csv"), message))
                if not _opens(campaign):
                    message = "these hours never allow a message: business hours lie inside quiet hours"
                    issues.append(issue_at(path, data, (*where, "hours"), message))
                found[campaign.id] = Campaign(campaign, path, csv_path)
    if issues:
        raise ContentError(issues)
    return CampaignBook(list(found.values()))


def _opens(spec: CampaignSpec) -> bool:
    probe = Campaign(spec, Path("."), None)
    start = datetime(2026, 1, 5, tzinfo=ZoneInfo("UTC"))  # a Monday
    return any(probe.may_send_at(start + timedelta(minutes=15 * i), "UTC") for i in range(7 * 24 * 4))


def campaign_issues(book: CampaignBook, moments: set[str], categories: set[str]) -> list[ContentIssue]:
    """Campaigns naming a moment the neutral guide lacks or a category no scenario file defines."""
    issues = []
    for campaign in book.campaigns.values():
        data: Any = load_yaml(campaign.path)
        index = next((i for i, c in enumerate(data.get("campaigns", [])) if c.get("id") == campaign.id), 0)
        wanted = [("message", campaign.spec.message)]
        if campaign.spec.follow_up:
            wanted.append(("follow_up", campaign.spec.follow_up.moment))
        for field_name, moment in wanted:
            if moment not in moments:
                where = ("campaigns", index, field_name)
                message = f"campaign {campaign.id!r} says moment {moment!r}; the neutral guide lacks it"
                issues.append(issue_at(campaign.path, data, where, message))
        category = campaign.spec.sales_category
        if category and category not in categories:
            where = ("campaigns", index, "sales_category")
            message = f"unknown category {category!r}; known: {', '.join(sorted(categories))}"
            issues.append(issue_at(campaign.path, data, where, message))
    return issues
