"""The scenario files: how requests are recognised, which details they need, what happens when complete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from dialogs.details.base import DetailSpec
from dialogs.yamlfile import ContentError, ContentIssue, issue_at, load_yaml, validate


class MatchSpec(BaseModel):
    """How a request is recognised: example phrasings and key phrases."""

    model_config = ConfigDict(extra="forbid")
    examples: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list, description="Phrases whose words all present decide.")


class DoneSpec(BaseModel):
    """What happens when every detail is collected."""

    model_config = ConfigDict(extra="forbid")
    answer: str | None = Field(default=None, description="Guide moment; may name a detail: x.{choice}.")
    task: str | None = Field(default=None, description="Kind of task to create (callback, tariff_change).")
    handoff: bool = False
    ask_if_solved: bool = False


class Scenario(BaseModel):
    """One kind of request."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    category: str | None = None
    smalltalk: bool = False
    complaint: bool = Field(
        default=False, description="Something is broken: praise while it is open is sarcasm."
    )
    match: MatchSpec
    details: list[str] = Field(default_factory=list)
    done: DoneSpec = Field(default_factory=DoneSpec)


def known_zone(value: str) -> str:
    """A time zone name the zone database knows; ValueError says what is expected."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}; expected a name like Europe/Moscow") from exc
    return value


TimeZoneName = Annotated[str, AfterValidator(known_zone)]


class Company(BaseModel):
    """The company the bot speaks for."""

    model_config = ConfigDict(extra="forbid")
    name: str = ""
    timezone: TimeZoneName = Field(default="Europe/Moscow", description="Where 'завтра в 10' is meant.")
    hotlines: list[str] = Field(default_factory=list, description="Our own numbers: never a client's phone.")


class Category(BaseModel):
    """A queue of requests that people answer."""

    model_config = ConfigDict(extra="forbid")
    title: str


class ScenarioFile(BaseModel):
    """One scenario file; several files are merged."""

    model_config = ConfigDict(extra="forbid")
    company: Company | None = None
    categories: dict[str, Category] = Field(default_factory=dict)
    details: dict[str, DetailSpec] = Field(default_factory=dict)
    scenarios: list[Scenario] = Field(default_factory=list)


class ScenarioBook(BaseModel):
    """All scenario files merged and cross-checked."""

    company: Company
    categories: dict[str, Category]
    details: dict[str, DetailSpec]
    scenarios: list[Scenario]
    # Where each scenario's `done.answer` is written, for errors found later against the guides.
    answer_places: dict[str, ContentIssue] = Field(default_factory=dict)

    def scenario(self, scenario_id: str) -> Scenario | None:
        """The scenario with this id, if any."""
        return next((s for s in self.scenarios if s.id == scenario_id), None)


def _files(path: Path) -> list[Path]:
    return sorted(path.glob("*.yaml")) if path.is_dir() else [path]


def load_scenarios(path: Path) -> ScenarioBook:
    """Load and cross-check a scenario file or a directory of them; ContentError lists every problem."""
    issues: list[ContentIssue] = []
    company, categories, details, scenarios = Company(), {}, {}, []
    origins: list[tuple[Path, Any, int]] = []
    for file in _files(path):
        try:
            data = load_yaml(file)
            parsed = validate(ScenarioFile, data if data is not None else {}, file)
        except ContentError as exc:
            issues.extend(exc.issues)
            continue
        company = parsed.company or company
        categories.update(parsed.categories)
        details.update(parsed.details)
        for index, scenario in enumerate(parsed.scenarios):
            origins.append((file, data, index))
            scenarios.append(scenario)
    seen: set[str] = set()
    answer_places: dict[str, ContentIssue] = {}
    for (file, data, index), scenario in zip(origins, scenarios, strict=True):
        where = ("scenarios", index)
        answer_places[scenario.id] = issue_at(file, data, (*where, "done", "answer"), "")
        if scenario.id in seen:
            issues.append(issue_at(file, data, (*where, "id"), f"scenario id {scenario.id!r} is used twice"))
        seen.add(scenario.id)
        for position, name in enumerate(scenario.details):
            if name not in details:
                known = ", ".join(sorted(details)) or "none defined"
                issues.append(
                    issue_at(
                        file, data, (*where, "details", position), f"unknown detail {name!r}; known: {known}"
                    )
                )
        if scenario.category and scenario.category not in categories:
            known = ", ".join(sorted(categories)) or "none defined"
            issues.append(
                issue_at(
                    file,
                    data,
                    (*where, "category"),
                    f"unknown category {scenario.category!r}; known: {known}",
                )
            )
        if not (scenario.done.answer or scenario.done.task or scenario.done.handoff):
            issues.append(
                issue_at(
                    file,
                    data,
                    where,
                    "scenario does nothing when done; expected done.answer, done.task or done.handoff",
                )
            )
        if not scenario.match.examples and not scenario.match.keywords:
            issues.append(issue_at(file, data, (*where, "match"), "expected at least one example or keyword"))
    if not scenarios and not issues:
        issues.append(ContentIssue(str(path), 1, 1, "no scenarios found; expected a `scenarios:` list"))
    if issues:
        raise ContentError(issues)
    return ScenarioBook(
        company=company,
        categories=categories,
        details=details,
        scenarios=scenarios,
        answer_places=answer_places,
    )
