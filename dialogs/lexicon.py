"""Word lists the engine reads from content/lexicons: editors extend them without touching code."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from dialogs.yamlfile import load_yaml, validate


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
    persons: list[str]
    person_phrases: list[str] = Field(
        default_factory=list, description="Whole phrases that ask for a person."
    )
    request_words: list[str]
    refusals: list[str] = Field(description="Lemmas that, before the person word, turn a request down.")
    other_verbs: list[str] = Field(
        default_factory=list, description="Verbs that make a person word a mention."
    )
    not_a_person_after: list[str] = Field(default_factory=list, description="'оператор связи' is a company.")


class ControlLexicon(BaseModel):
    """Short answers that steer the dialog: yes, no, cancel, correction."""

    model_config = ConfigDict(extra="forbid")
    yes: list[str]
    no: list[str]
    cancel: list[str]
    correction: list[str]
    resolved: list[str] = Field(default_factory=list, description="'всё заработало' ends a request.")


class Lexicons(BaseModel):
    """Every lexicon the engine uses."""

    matching: MatchingLexicon
    handoff: HandoffLexicon
    control: ControlLexicon


def load_lexicons(directory: Path) -> Lexicons:
    """Load the engine's lexicons from a directory; ContentError on any problem."""
    parts = {}
    for name, model in (
        ("matching", MatchingLexicon),
        ("handoff", HandoffLexicon),
        ("control", ControlLexicon),
    ):
        path = directory / f"{name}.yaml"
        parts[name] = validate(model, load_yaml(path), path)
    return Lexicons.model_validate(parts)
