"""Word lists the engine reads from content/lexicons: editors extend them without touching code."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.yamlfile import ContentError, ContentIssue, load_yaml, validate


class MatchingLexicon(BaseModel):
    """Words to ignore and slang to map when recognising requests."""

    model_config = ConfigDict(extra="forbid")
    stopwords: list[str] = Field(default_factory=list)
    synonyms: dict[str, str] = Field(
        default_factory=dict, description="word or lemma -> lemma to use instead"
    )
    negations: list[str] = Field(default_factory=lambda: ["не", "нет", "ни"])


class HandoffLexicon(BaseModel):
    """How a request for a person is worded, and the wordings that only mention one."""

    model_config = ConfigDict(extra="forbid")
    persons: list[str] = Field(default_factory=list)
    person_phrases: list[str] = Field(
        default_factory=list, description="Whole phrases that ask for a person."
    )
    request_words: list[str] = Field(default_factory=list)
    refusals: list[str] = Field(
        default_factory=list, description="Lemmas that, before the person word, turn a request down."
    )
    other_verbs: list[str] = Field(
        default_factory=list, description="Verbs that make a person word a mention."
    )
    not_a_person_after: list[str] = Field(default_factory=list, description="'оператор связи' is a company.")
    not_a_person_before: list[str] = Field(
        default_factory=list, description="'на другого человека' is someone else, not a person to talk to."
    )
    declines: list[str] = Field(
        default_factory=list, description="'сам разберусь': no person wanted, with no person word said."
    )
    who_questions: list[str] = Field(
        default_factory=list, description="'ты бот или человек?' asks who answers, not for a person."
    )


class ControlLexicon(BaseModel):
    """Short answers that steer the dialog: yes, no, cancel, correction."""

    model_config = ConfigDict(extra="forbid")
    yes: list[str] = Field(default_factory=list)
    no: list[str] = Field(default_factory=list)
    cancel: list[str] = Field(default_factory=list)
    correction: list[str] = Field(default_factory=list)
    resolved: list[str] = Field(default_factory=list, description="'всё заработало' ends a request.")


class ActsLexicon(BaseModel):
    """Examples of each dialogue act: answers to the bot's questions, thanks, goodbyes, questions."""

    model_config = ConfigDict(extra="forbid")
    acts: dict[str, list[str]] = Field(default_factory=dict)
    requires: dict[str, list[list[str]]] = Field(
        default_factory=dict,
        description="act -> groups of words (lemmas): the message must hold a word of every group",
    )


class UrgentSituation(BaseModel):
    """A situation that always goes to a person at once."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(default="", description="How operators read it in the queue.")
    category: str | None = Field(default=None, description="Request category that takes it; else general.")
    phrases: list[str] = Field(default_factory=list, description="All words of one, close together, decide.")
    examples: list[str] = Field(default_factory=list)


class UrgentLexicon(BaseModel):
    """Situations that go to a person at once, first in the queue, whatever else is going on."""

    model_config = ConfigDict(extra="forbid")
    situations: dict[str, UrgentSituation] = Field(default_factory=dict)


class Lexicons(BaseModel):
    """Every lexicon the engine uses."""

    matching: MatchingLexicon
    handoff: HandoffLexicon
    control: ControlLexicon
    acts: ActsLexicon = Field(default_factory=ActsLexicon)
    urgent: UrgentLexicon = Field(default_factory=UrgentLexicon)


_PARTS: tuple[tuple[str, type[BaseModel], tuple[str, ...]], ...] = (
    ("matching", MatchingLexicon, ()),
    ("handoff", HandoffLexicon, ("persons", "request_words", "refusals")),
    ("control", ControlLexicon, ("yes", "no", "cancel", "correction")),
    ("acts", ActsLexicon, ("acts",)),
    ("urgent", UrgentLexicon, ()),
)


def _merge(base: dict[str, Any], layer: dict[str, Any]) -> None:
    """Merge a layer into the base: lists add up (without repeats), mappings merge key by key, other
    values are replaced."""
    for key, value in layer.items():
        earlier = base.get(key)
        if isinstance(value, list) and isinstance(earlier, list):
            base[key] = list(dict.fromkeys([*earlier, *value]))
        elif isinstance(value, dict) and isinstance(earlier, dict):
            merged = dict(earlier)
            _merge(merged, value)
            base[key] = merged
        else:
            base[key] = value


def load_lexicons(directories: Path | Sequence[Path]) -> Lexicons:
    """Load the engine's lexicons from a directory, or one per content layer (shared first): a later
    layer's lists add words, its mappings override. ContentError on any problem."""
    layers = [directories] if isinstance(directories, Path) else list(directories)
    issues: list[ContentIssue] = []
    parts: dict[str, Any] = {}
    for name, model, required in _PARTS:
        merged: dict[str, Any] = {}
        files = [layer / f"{name}.yaml" for layer in layers]
        found = [path for path in files if path.is_file()]
        if not found and not required:
            parts[name] = model()  # optional: a layer set without it has none
            continue
        if not found:
            # Reported as before: the shared layer, or the only directory, lacks the file.
            issues.append(ContentIssue(str(files[0]), 1, 1, "cannot read file: no such file"))
            continue
        for path in found:
            try:
                data = load_yaml(path)
                layer = validate(model, data if data is not None else {}, path)
            except ContentError as exc:
                issues.extend(exc.issues)
                continue
            given = set(data or {}) & set(model.model_fields)
            _merge(merged, layer.model_dump(include=given, exclude_unset=False))
        for field_name in required:
            if not merged.get(field_name):
                message = f"{field_name}: no words given in any layer; expected a list of words"
                issues.append(ContentIssue(str(found[-1]), 1, 1, message))
        parts[name] = model.model_validate(merged)
    if issues:
        raise ContentError(issues)
    return Lexicons.model_validate(parts)
