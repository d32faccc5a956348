"""Tone guides: for each persona and moment of a dialog, several phrasings with named placeholders.

A guide is a YAML file per persona; `moments.yaml` beside them lists every moment with its placeholders
and sample values. Neutral is the fallback for a moment a persona lacks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dialogs.yamlfile import ContentError, ContentIssue, issue_at, load_yaml, validate
from personas.labels import NEUTRAL, PERSONAS

PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")
_STRAY_BRACE = re.compile(r"[{}]")
_EMOJI_RE = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\U0001f000-\U0001f2ff]")
CATALOGUE_FILE = "moments.yaml"


class MomentInfo(BaseModel):
    """A moment of a dialog as the catalogue describes it."""

    model_config = ConfigDict(extra="forbid")
    about: str = ""
    placeholders: list[str] = Field(default_factory=list)


class Catalogue(BaseModel):
    """Every moment guides may phrase, and sample values for previews."""

    model_config = ConfigDict(extra="forbid")
    moments: dict[str, MomentInfo]
    samples: dict[str, str] = Field(default_factory=dict)


class Style(BaseModel):
    """How a persona's replies look."""

    model_config = ConfigDict(extra="forbid")
    emoji: bool = False
    address: str = Field(default="вы", pattern="^(вы|ты)$")
    max_length: int = 600
    about: str = ""


class GuideFile(BaseModel):
    """One persona's guide."""

    model_config = ConfigDict(extra="forbid")
    persona: str
    style: Style = Field(default_factory=Style)
    moments: dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A phrasing chosen and filled in; `key` identifies the variant so it is not repeated."""

    text: str
    key: str
    persona: str


def _variant_key(persona: str, moment: str, template: str) -> str:
    digest = hashlib.blake2b(template.encode(), digest_size=4).hexdigest()
    return f"{persona}:{moment}:{digest}"


def fill(template: str, values: Mapping[str, str]) -> str:
    """Substitute placeholders in one pass; values are inserted verbatim, never parsed as templates."""
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


class GuideBook:
    """All guides, ready to phrase any moment for any persona."""

    def __init__(self, catalogue: Catalogue, guides: Mapping[str, GuideFile]) -> None:
        self.catalogue = catalogue
        self.guides = dict(guides)
        self._placeholders = {
            (persona, moment): [set(PLACEHOLDER_RE.findall(t)) for t in templates]
            for persona, guide in guides.items()
            for moment, templates in guide.moments.items()
        }

    def has(self, moment: str) -> bool:
        """Whether the neutral guide phrases this moment (every moment must have a neutral phrasing)."""
        return moment in self.guides[NEUTRAL].moments

    def style(self, persona: str) -> Style:
        """The persona's style, neutral's when the persona has no guide."""
        return (self.guides.get(persona) or self.guides[NEUTRAL]).style

    def render(
        self,
        moment: str,
        persona: str,
        values: Mapping[str, str],
        used: Collection[str] = (),
        *,
        seed: str = "",
    ) -> Rendered:
        """Phrase a moment for a persona with an unused variant whose placeholders all have values."""
        for source in (persona, NEUTRAL):
            guide = self.guides.get(source)
            if guide is None or moment not in guide.moments:
                continue
            templates = guide.moments[moment]
            fits = [
                (i, t)
                for i, t in enumerate(templates)
                if self._placeholders[(source, moment)][i] <= values.keys()
            ]
            if not fits:
                continue
            keys = [_variant_key(source, moment, t) for _, t in fits]
            unused = [i for i, key in enumerate(keys) if key not in used] or list(range(len(fits)))
            start = int(hashlib.blake2b(f"{seed}|{moment}".encode(), digest_size=2).hexdigest(), 16)
            choice = unused[start % len(unused)]
            return Rendered(fill(fits[choice][1], values), keys[choice], source)
        raise KeyError(f"no phrasing for moment {moment!r} with values {sorted(values)}")

    def variants(self, moment: str, persona: str) -> list[str]:
        """Every phrasing a persona has for a moment (neutral's when it has none)."""
        for source in (persona, NEUTRAL):
            guide = self.guides.get(source)
            if guide and moment in guide.moments:
                return list(guide.moments[moment])
        return []


def _template_issues(path: Path, data: Any, guide: GuideFile, catalogue: Catalogue) -> list[ContentIssue]:
    issues = []
    for moment, templates in guide.moments.items():
        info = catalogue.moments.get(moment)
        if info is None:
            issues.append(
                issue_at(path, data, ("moments", moment), f"unknown moment {moment!r}; see {CATALOGUE_FILE}")
            )
            continue
        for index, template in enumerate(templates):
            where = ("moments", moment, index)
            unknown = set(PLACEHOLDER_RE.findall(template)) - set(info.placeholders)
            if unknown:
                allowed = ", ".join("{" + p + "}" for p in info.placeholders) or "none"
                names = ", ".join("{" + p + "}" for p in sorted(unknown))
                issues.append(
                    issue_at(path, data, where, f"unknown placeholder {names}; allowed here: {allowed}")
                )
            if _STRAY_BRACE.search(PLACEHOLDER_RE.sub("", template)):
                issues.append(issue_at(path, data, where, "unbalanced brace; placeholders look like {name}"))
            if not guide.style.emoji and _EMOJI_RE.search(template):
                issues.append(issue_at(path, data, where, "emoji in a guide whose style says emoji: false"))
            if len(template) > guide.style.max_length:
                issues.append(
                    issue_at(path, data, where, f"longer than style.max_length ({guide.style.max_length})")
                )
        if not templates:
            issues.append(issue_at(path, data, ("moments", moment), "expected at least one phrasing"))
    return issues


def load_guides(directory: Path) -> GuideBook:
    """Load the catalogue and every guide in a directory; ContentError lists every problem found."""
    catalogue_path = directory / CATALOGUE_FILE
    catalogue = validate(Catalogue, load_yaml(catalogue_path), catalogue_path)
    issues: list[ContentIssue] = []
    guides: dict[str, GuideFile] = {}
    for path in sorted(directory.glob("*.yaml")):
        if path.name == CATALOGUE_FILE:
            continue
        try:
            data = load_yaml(path)
            guide = validate(GuideFile, data, path)
        except ContentError as exc:
            issues.extend(exc.issues)
            continue
        if guide.persona not in PERSONAS:
            issues.append(
                issue_at(path, data, ("persona",), f"unknown persona; expected one of {', '.join(PERSONAS)}")
            )
        elif guide.persona in guides:
            issues.append(issue_at(path, data, ("persona",), f"a second guide for {guide.persona!r}"))
        issues.extend(_template_issues(path, data, guide, catalogue))
        guides[guide.persona] = guide
    if NEUTRAL not in guides:
        if not issues:
            issues.append(
                ContentIssue(str(directory), 1, 1, "no neutral guide: it is the fallback for every moment")
            )
    else:
        missing = sorted(set(catalogue.moments) - set(guides[NEUTRAL].moments))
        for moment in missing:
            issues.append(
                ContentIssue(str(directory / "neutral.yaml"), 1, 1, f"neutral guide lacks moment {moment!r}")
            )
    if issues:
        raise ContentError(issues)
    return GuideBook(catalogue, guides)
