"""The scenario files: how requests are recognised, which details they need, what happens when complete."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from common.names import Priority
from common.yamlfile import ContentError, ContentIssue, issue_at, load_yaml, validate
from dialogs.details.base import DetailSpec


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
    priority: Priority = Field(
        default=Priority.NORMAL, description="A handoff's place in the queue: high goes first (stolen cards)."
    )
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
    out_of_scope: list[str] = Field(
        default_factory=list,
        description="Examples of what clients ask that no scenario serves: recognised as out of scope.",
    )
    background: list[str] = Field(
        default_factory=list,
        description="Everyday messages about nothing the company serves: what ordinary words look like.",
    )


class ScenarioBook(BaseModel):
    """All scenario files merged and cross-checked."""

    company: Company
    categories: dict[str, Category]
    details: dict[str, DetailSpec]
    scenarios: list[Scenario]
    out_of_scope: list[str] = Field(default_factory=list)
    background: list[str] = Field(default_factory=list)
    # Where each scenario's `done.answer` is written, for errors found later against the guides.
    answer_places: dict[str, ContentIssue] = Field(default_factory=dict)

    def scenario(self, scenario_id: str) -> Scenario | None:
        """The scenario with this id, if any."""
        return next((s for s in self.scenarios if s.id == scenario_id), None)


def _files(path: Path) -> list[Path]:
    """A directory's YAML files, or the file itself; a layer without the directory has none."""
    if path.is_dir():
        return sorted(path.glob("*.yaml"))
    return [path] if path.suffix else []


def load_scenarios(paths: Path | Sequence[Path]) -> ScenarioBook:
    """Load and cross-check scenario files (a file, a directory, or one per content layer, shared first);
    a later layer's scenario replaces an earlier one with the same id. ContentError lists every problem."""
    layers = [paths] if isinstance(paths, Path) else list(paths)
    issues: list[ContentIssue] = []
    company, categories, details = Company(), {}, {}
    out_of_scope: list[str] = []
    background: list[str] = []
    placed: dict[str, tuple[Path, Any, int, Scenario]] = {}
    for layer in layers:
        seen: set[str] = set()
        for file in _files(layer):
            try:
                data = load_yaml(file)
                parsed = validate(ScenarioFile, data if data is not None else {}, file)
            except ContentError as exc:
                issues.extend(exc.issues)
                continue
            company = parsed.company or company
            categories.update(parsed.categories)
            details.update(parsed.details)
            out_of_scope.extend(parsed.out_of_scope)
            background.extend(parsed.background)
            for index, scenario in enumerate(parsed.scenarios):
                if scenario.id in seen:
                    message = f"scenario id {scenario.id!r} is used twice"
                    issues.append(issue_at(file, data, ("scenarios", index, "id"), message))
                    continue
                seen.add(scenario.id)
                # Replacing keeps the first place in the order, so ties in matching stay where they were.
                placed[scenario.id] = (file, data, index, scenario)
    origins = [(file, data, index) for file, data, index, _ in placed.values()]
    scenarios = [scenario for *_, scenario in placed.values()]
    answer_places: dict[str, ContentIssue] = {}
    for (file, data, index), scenario in zip(origins, scenarios, strict=True):
        where = ("scenarios", index)
        answer_places[scenario.id] = issue_at(file, data, (*where, "done", "answer"), "")
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
        place = str(layers[-1]) if layers else "scenarios"
        issues.append(ContentIssue(place, 1, 1, "no scenarios found; expected a `scenarios:` list"))
    if issues:
        raise ContentError(issues)
    return ScenarioBook(
        company=company,
        categories=categories,
        details=details,
        scenarios=scenarios,
        out_of_scope=list(dict.fromkeys(out_of_scope)),
        background=list(dict.fromkeys(background)),
        answer_places=answer_places,
    )
