"""Shared types of detail extraction: what a detail is and what was found for it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class DetailKind(StrEnum):
    """The types of detail a scenario can ask for."""

    PHONE = "phone"
    CONTRACT = "contract"
    EMAIL = "email"
    ADDRESS = "address"
    DATETIME = "datetime"
    TEXT = "text"
    CHOICE = "choice"
    CARD = "card"
    MONEY = "money"


class ChoiceOption(BaseModel):
    """One answer of a choice detail; its label is shown on a button."""

    # Validators are built at the first validation (content read from YAML), not at import: a start that
    # restores the content from the cache never validates one.
    model_config = ConfigDict(extra="forbid", defer_build=True)
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str
    synonyms: list[str] = Field(default_factory=list)


class DetailSpec(BaseModel):
    """A detail as the scenario file defines it."""

    model_config = ConfigDict(extra="forbid", defer_build=True)
    type: DetailKind
    title: str = Field(description="How the client-facing phrasing names this detail.")
    pattern: str | None = Field(default=None, description="Regular expression for contract numbers.")
    cues: list[str] = Field(default_factory=list, description="Words that announce this detail.")
    options: list[ChoiceOption] = Field(default_factory=list)
    min_length: int = 2
    past: bool = Field(default=False, description="A date that has been (a payment), not one to come.")

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


@dataclass(frozen=True, slots=True)
class Found:
    """A value found for a detail: normalised value, and the client's own words for it."""

    name: str
    value: str
    raw: str
    start: int = 0
    end: int = 0


@dataclass(frozen=True, slots=True)
class Invalid:
    """The client tried to give a detail but it did not validate; `problem` names a guide moment."""

    name: str
    problem: str
    raw: str = ""


Span = tuple[int, int]


def overlaps(span: Span, taken: list[Span]) -> bool:
    """Whether span intersects any of the taken spans."""
    return any(span[0] < end and start < span[1] for start, end in taken)
