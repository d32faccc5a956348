"""The persona signal lexicon (content/personas/signals.yaml): cues and their weights per persona."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from common.text import fold
from common.yamlfile import load_yaml, validate

LEARNED_FILE = "learned.yaml"


class _Strict(BaseModel):
    # Validators are built at the first validation (content read from YAML), not at import: a start that
    # restores the content from the cache never validates one.
    model_config = ConfigDict(extra="forbid", defer_build=True)


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
    """Emoji as warmth, except the listed ones."""

    not_positive: str = ""
    weight: float


class SarcasmSignal(_Strict):
    """Praise in a conversation about trouble."""

    praise: list[str]
    trouble: list[str]
    weight: float


class WeightOnly(_Strict):
    """A cue whose presence has a fixed weight."""

    weight: float


class LabelSignals(_Strict):
    """Everything that points to one persona."""

    threshold: float = 1.0
    decay: float | None = Field(default=None, gt=0, le=1, description="Overrides the global decay.")
    words: dict[str, float] = Field(default_factory=dict)
    phrases: dict[str, float] = Field(default_factory=dict)
    patterns: dict[str, float] = Field(default_factory=dict)


class PolitenessSignal(_Strict):
    """Politeness markers that soften mild aggression cues."""

    markers: list[str]
    factor: float = Field(ge=0, le=1)
    strong_cue: float = Field(description="A single cue this heavy (swearing, insult) is never softened.")


class StepsSignal(_Strict):
    """Most messages of the conversation are short questions."""

    min_messages: int
    question_share: float
    max_mean_chars: float
    weight: float


class MoodSignal(_Strict):
    """Mild signs of anger that only count in numbers."""

    demand_weight: float
    urgency: list[str]
    urgency_weight: float
    again: list[str]
    again_weight: float
    rhetorical_weight: float
    request_words: list[str]
    double_marks_weight: float


class AngryEmojiSignal(_Strict):
    """Emoji of anger or contempt."""

    emoji: str
    weight: float


class AggressorSignals(LabelSignals):
    """Aggression, plus what escalates it to a person at once."""

    escalate_at: float = 2.5
    # Once angry, a client stays so while the score is above this share of the threshold, unless a calm
    # label clearly outweighs it: one calm line after an outburst is not peace yet.
    linger: float = 1.0
    masked_targets: list[str] = Field(default_factory=list)
    masked_weight: float = Field(default=1.3, description="What one masked swear word weighs.")
    # A message is angry in itself (the bot says "I hear you're upset") from this share of the threshold.
    angry_now_share: float = Field(default=0.5, ge=0, le=1)
    # Words fitted from labelled conversations count towards anger only beside hand-written aggressor cues
    # of at least this weight in the same message.
    fitted_needs: float = Field(default=0.3, ge=0)
    threat_phrases: list[str] = Field(default_factory=list)
    threat_actions: list[str] = Field(default_factory=list)
    leave_phrases: list[str] = Field(default_factory=list)
    leave_needs_anger: float = 0.4
    sarcasm: SarcasmSignal | None = None
    politeness: PolitenessSignal | None = None
    mood: MoodSignal | None = None
    angry_emoji: AngryEmojiSignal | None = None
    quoted_words: WeightOnly | None = None
    caps: CapsSignal | None = None
    exclamations: CountSignal | None = None


class UnsureSignals(LabelSignals):
    """Hesitation and asking for help at every step."""

    # Words that make a message a question without a question mark ("а если нажму").
    question_words: list[str] = Field(default_factory=list)
    short_question: ShortQuestionSignal | None = None
    a_question: WeightOnly | None = None
    asks_every_step: StepsSignal | None = None


class TalkerSignals(LabelSignals):
    """Volume, pace and noticing details."""

    burst: BurstSignal | None = None
    long_message: LengthSignal | None = None
    many_messages: CountSignal | None = None


class PositiveSignals(LabelSignals):
    """Warmth, emotion and drifting off topic."""

    emoji: EmojiSignal | None = None
    exclamations: CountSignal | None = None


class LatinTermsSignal(_Strict):
    """Distinct technical words in Latin letters."""

    per_term: float
    max: float
    everyday: list[str] = Field(default_factory=list)


class SysadminSignals(LabelSignals):
    """Terms and diagnostics done."""

    ip_address: WeightOnly | None = None
    latin_terms: LatinTermsSignal | None = None


class LearnedWords(_Strict):
    """Word weights fitted from labelled conversations (learned.yaml), editable like the rest."""

    fitted_from: list[str] = Field(default_factory=list)
    scale: float = Field(default=0.3, ge=0)
    # Per persona, when one needs another scale: aggression acts at once, so its fitted words count less.
    scales: dict[str, float] = Field(default_factory=dict)
    words: dict[str, dict[str, float]] = Field(default_factory=dict)


class Signals(_Strict):
    """The whole lexicon."""

    decay: float = Field(default=0.8, gt=0, le=1)
    margin: float = Field(default=1.3, ge=1)
    # Inertia: with no label passing its threshold, the current one stays while its score is above this
    # share of its threshold.
    fade_below: float = Field(default=0.5, ge=0, le=1)
    aggressor: AggressorSignals
    unsure: UnsureSignals
    talker: TalkerSignals
    positive: PositiveSignals
    sysadmin: SysadminSignals
    learned: LearnedWords = Field(default_factory=LearnedWords)


def load_signals(directories: Path | Sequence[Path]) -> Signals:
    """Load `signals.yaml` from a directory, or from the last content layer that has one; ContentError
    with file:line:column on problems."""
    layers = [directories] if isinstance(directories, Path) else list(directories)
    found = [layer / "signals.yaml" for layer in layers if (layer / "signals.yaml").is_file()]
    path = found[-1] if found else layers[0] / "signals.yaml"
    signals = _folded(validate(Signals, load_yaml(path), path))
    fitted = [layer / LEARNED_FILE for layer in layers if (layer / LEARNED_FILE).is_file()]
    if fitted:
        data = load_yaml(fitted[-1])
        signals.learned = validate(LearnedWords, data if data is not None else {}, fitted[-1])
    return signals


def _folded(signals: Signals) -> Signals:
    """Every cue the way messages are read (lower case, ё as е): "пошёл ты" in the file matches "пошел
    ты" typed, "RSRP" matches "rsrp". Regular expressions are left as written."""

    def fold_all(value: Any, key: str = "") -> Any:
        if key == "patterns":
            return value
        if isinstance(value, str):
            return fold(value)
        if isinstance(value, list):
            return [fold_all(item) for item in value]
        if isinstance(value, dict):
            return {fold_all(k) if isinstance(k, str) else k: fold_all(v, str(k)) for k, v in value.items()}
        return value

    return Signals.model_validate(fold_all(signals.model_dump()))
