"""The persona signal lexicon (content/personas/signals.yaml): cues and their weights per persona."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from dialogs.yamlfile import load_yaml, validate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CapsSignal(_Strict):
    """Shouting: most letters in capitals."""

    min_letters: int = 8
    ratio: float = 0.7
    weight: float


class CountSignal(_Strict):
    """A count reaching a minimum (exclamation marks, messages)."""

    min: int
    weight: float


class LengthSignal(_Strict):
    """A message at least this long."""

    min_chars: int
    weight: float


class ShortQuestionSignal(_Strict):
    """A short message that asks something."""

    max_chars: int
    weight: float


class BurstSignal(_Strict):
    """Messages following each other within seconds."""

    max_gap_seconds: float
    weight: float


class EmojiSignal(_Strict):
    """Emoji of a kind."""

    positive: str
    weight: float


class WeightOnly(_Strict):
    """A cue whose presence has a fixed weight."""

    weight: float


class LabelSignals(_Strict):
    """Everything that points to one persona."""

    threshold: float = 1.0
    words: dict[str, float] = Field(default_factory=dict)
    phrases: dict[str, float] = Field(default_factory=dict)
    patterns: dict[str, float] = Field(default_factory=dict)


class AggressorSignals(LabelSignals):
    """Aggression, plus what escalates it to a person at once."""

    escalate_at: float = 2.5
    masked_targets: list[str] = Field(default_factory=list)
    threat_phrases: list[str] = Field(default_factory=list)
    caps: CapsSignal | None = None
    exclamations: CountSignal | None = None


class UnsureSignals(LabelSignals):
    """Hesitation and asking for help at every step."""

    short_question: ShortQuestionSignal | None = None


class TalkerSignals(LabelSignals):
    """Volume, pace and noticing details."""

    burst: BurstSignal | None = None
    long_message: LengthSignal | None = None
    many_messages: CountSignal | None = None


class PositiveSignals(LabelSignals):
    """Warmth, emotion and drifting off topic."""

    emoji: EmojiSignal | None = None
    exclamations: CountSignal | None = None


class SysadminSignals(LabelSignals):
    """Terms and diagnostics done."""

    ip_address: WeightOnly | None = None


class Signals(_Strict):
    """The whole lexicon."""

    decay: float = Field(default=0.8, gt=0, le=1)
    margin: float = Field(default=1.3, ge=1)
    aggressor: AggressorSignals
    unsure: UnsureSignals
    talker: TalkerSignals
    positive: PositiveSignals
    sysadmin: SysadminSignals


def load_signals(directory: Path) -> Signals:
    """Load `signals.yaml` from a directory; ContentError with file:line:column on problems."""
    path = directory / "signals.yaml"
    return validate(Signals, load_yaml(path), path)
