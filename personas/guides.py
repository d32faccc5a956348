"""Tone guides: for each persona and moment of a dialog, several phrasings with named placeholders.

A guide is a YAML file per persona; `moments.yaml` beside them lists every moment with its placeholders
and sample values. Neutral is the fallback for a moment a persona lacks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations, zip_longest
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.yamlfile import ContentError, ContentIssue, issue_at, load_yaml, validate
from personas.labels import NEUTRAL, PERSONAS

PLACEHOLDER_RE = re.compile(r"\{([a-z][a-z0-9_]*)\}")
_STRAY_BRACE = re.compile(r"[{}]")
_EMOJI_RE = re.compile("[\U0001f300-\U0001faff\u2600-\u27bf\U0001f000-\U0001f2ff]")
CATALOGUE_FILE = "moments.yaml"
# Moments with at most this many placeholders have their fitting variants listed for every subset at load.
_SUBSETS_LISTED = 6


class MomentInfo(BaseModel):
    """A moment of a dialog as the catalogue describes it."""

    # Validators are built at the first validation (content read from YAML), not at import: a start that
    # restores the content from the cache never validates one.
    model_config = ConfigDict(extra="forbid", defer_build=True)
    about: str = ""
    placeholders: list[str] = Field(default_factory=list)


class Catalogue(BaseModel):
    """Every moment guides may phrase, and sample values for previews."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    moments: dict[str, MomentInfo]
    samples: dict[str, str] = Field(default_factory=dict)


class Style(BaseModel):
    """How a persona's replies look."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    emoji: bool = False
    address: str = Field(default="вы", pattern="^(вы|ты)$")
    max_length: int = 600
    about: str = ""


class GuideFile(BaseModel):
    """One persona's guide."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
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


def _as_format(template: str) -> str:
    """The template for str.format_map: its placeholders as fields, every other brace doubled."""
    parts = PLACEHOLDER_RE.split(template)
    escaped = (part.replace("{", "{{").replace("}", "}}") for part in parts[::2])
    fields = ("{" + name + "}" for name in parts[1::2])
    return "".join(piece for pair in zip_longest(escaped, fields, fillvalue="") for piece in pair)


@dataclass(frozen=True, slots=True)
class _Variant:
    """One phrasing prepared at load: its key, the placeholders it needs, how to fill it."""

    key: str
    needs: frozenset[str]
    # Filled by format_map only when every placeholder has a value, so it inserts exactly what `fill` does.
    pattern: str
    # A phrasing without placeholders is the same reply every time.
    fixed: Rendered | None


class _Phrasings:
    """One guide's phrasings of one moment, with the variants that fit each set of given placeholders."""

    __slots__ = ("_fits", "keys", "needs", "source", "suffix", "uniform", "variants")

    def __init__(self, source: str, moment: str, templates: list[str]) -> None:
        self.source = source
        self.suffix = f"|{moment}".encode()
        variants = []
        for template in templates:
            key = _variant_key(source, moment, template)
            needs = frozenset(PLACEHOLDER_RE.findall(template))
            fixed = None if needs else Rendered(template, key, source)
            variants.append(_Variant(key, needs, _as_format(template), fixed))
        self.variants = tuple(variants)
        self.keys = frozenset(v.key for v in variants)
        self.needs = frozenset().union(*(v.needs for v in variants))
        # Usually every variant needs the same placeholders: then they all fit or none does.
        self.uniform = all(v.needs == self.needs for v in variants)
        # A variant fits when the values cover its placeholders; only those of this moment matter, so the
        # fitting variants are listed per subset of them (a moment has a few: 2**n subsets).
        self._fits: dict[frozenset[str], tuple[_Variant, ...]] = {}
        if len(self.needs) <= _SUBSETS_LISTED:
            names = sorted(self.needs)
            for size in range(len(names) + 1):
                for subset in map(frozenset, combinations(names, size)):
                    self._fits[subset] = tuple(v for v in self.variants if v.needs <= subset)

    def fits(self, values: Mapping[str, str]) -> tuple[_Variant, ...]:
        """The variants whose placeholders all have values, in the guide's order."""
        if not self.needs:
            return self.variants
        if self.uniform:
            return self.variants if values.keys() >= self.needs else ()
        present = self.needs.intersection(values)
        found = self._fits.get(present)
        return tuple(v for v in self.variants if v.needs <= present) if found is None else found


class GuideBook:
    """All guides, ready to phrase any moment for any persona."""

    def __init__(self, catalogue: Catalogue, guides: Mapping[str, GuideFile]) -> None:
        self.catalogue = catalogue
        self.guides = dict(guides)
        phrasings = {
            (persona, moment): _Phrasings(persona, moment, templates)
            for persona, guide in self.guides.items()
            for moment, templates in guide.moments.items()
        }
        # Where render looks, in order: the persona's own phrasings, then neutral's. A persona without a
        # guide has no entry and goes to neutral's directly.
        self._chains: dict[tuple[str, str], tuple[_Phrasings, ...]] = {}
        for persona in self.guides:
            for moment in {moment for _, moment in phrasings}:
                chain = tuple(
                    dict.fromkeys(
                        found for source in (persona, NEUTRAL) if (found := phrasings.get((source, moment)))
                    )
                )
                if chain:
                    self._chains[(persona, moment)] = chain

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
        chain = self._chains.get((persona, moment)) or self._chains.get((NEUTRAL, moment), ())
        for phrasings in chain:
            fits = phrasings.fits(values)
            if not fits:
                continue
            unused = fits
            if len(fits) > 1 and not phrasings.keys.isdisjoint(used):
                unused = tuple(v for v in fits if v.key not in used) or fits
            if len(unused) == 1:
                # Any start picks the only one, so the seed's hash is not needed.
                chosen = unused[0]
            else:
                digest = hashlib.blake2b(seed.encode() + phrasings.suffix, digest_size=2).digest()
                chosen = unused[int.from_bytes(digest, "big") % len(unused)]
            if chosen.fixed is not None:
                return chosen.fixed
            return Rendered(chosen.pattern.format_map(values), chosen.key, phrasings.source)
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


def _catalogue(layers: list[Path]) -> Catalogue:
    """Every layer's moments catalogue merged; a later layer may add moments and samples."""
    files = [layer / CATALOGUE_FILE for layer in layers if (layer / CATALOGUE_FILE).is_file()]
    if not files:
        files = [layers[0] / CATALOGUE_FILE]  # reported as unreadable, as a single directory was
    issues: list[ContentIssue] = []
    moments: dict[str, MomentInfo] = {}
    samples: dict[str, str] = {}
    for path in files:
        try:
            part = validate(Catalogue, load_yaml(path), path)
        except ContentError as exc:
            issues.extend(exc.issues)
            continue
        moments.update(part.moments)
        samples.update(part.samples)
    if issues:
        raise ContentError(issues)
    return Catalogue(moments=moments, samples=samples)


def load_guides(directories: Path | Sequence[Path]) -> GuideBook:
    """Load the catalogue and every guide in a directory, or one per content layer (shared first: a later
    layer's guide adds moments and replaces those it phrases again). ContentError lists every problem."""
    layers = [directories] if isinstance(directories, Path) else list(directories)
    catalogue = _catalogue(layers)
    issues: list[ContentIssue] = []
    guides: dict[str, GuideFile] = {}
    # A file that cannot be read says so once; its moments are not then listed as missing one by one.
    unread = False
    for layer in layers:
        in_layer: set[str] = set()
        for path in sorted(layer.glob("*.yaml")) if layer.is_dir() else []:
            if path.name == CATALOGUE_FILE:
                continue
            try:
                data = load_yaml(path)
                guide = validate(GuideFile, data, path)
            except ContentError as exc:
                issues.extend(exc.issues)
                unread = True
                continue
            if guide.persona not in PERSONAS:
                message = f"unknown persona; expected one of {', '.join(PERSONAS)}"
                issues.append(issue_at(path, data, ("persona",), message))
                continue
            if guide.persona in in_layer:
                issues.append(issue_at(path, data, ("persona",), f"a second guide for {guide.persona!r}"))
            in_layer.add(guide.persona)
            earlier = guides.get(guide.persona)
            if earlier is not None and "style" not in data:
                # A company's guide phrases its own moments in the shared style unless it sets its own.
                guide = GuideFile(persona=guide.persona, style=earlier.style, moments=guide.moments)
            issues.extend(_template_issues(path, data, guide, catalogue))
            if earlier is not None:
                guide = GuideFile(
                    persona=guide.persona, style=guide.style, moments={**earlier.moments, **guide.moments}
                )
            guides[guide.persona] = guide
    if NEUTRAL not in guides:
        if not issues:
            where = str(layers[-1])
            issues.append(ContentIssue(where, 1, 1, "no neutral guide: it is the fallback for every moment"))
    elif not unread:
        missing = sorted(set(catalogue.moments) - set(guides[NEUTRAL].moments))
        for moment in missing:
            issues.append(
                ContentIssue(str(layers[-1] / "neutral.yaml"), 1, 1, f"neutral guide lacks moment {moment!r}")
            )
    if issues:
        raise ContentError(issues)
    return GuideBook(catalogue, guides)
