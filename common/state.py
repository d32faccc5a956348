"""A conversation's state between messages; plain data so storage can keep it as JSON."""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

import orjson

USED_PHRASES_KEPT = 300
PERSONA_CUES_KEPT = 8


@dataclass(slots=True)
class PendingRequest:
    """A request being served: its scenario, the detail last asked for and failed attempts."""

    scenario_id: str
    asked: str | None = None
    failures: int = 0


@dataclass(slots=True)
class DetailValue:
    """A collected detail: the normalised value and the client's own words for it."""

    value: str
    raw: str
    display: str


@dataclass(slots=True)
class ConversationState:
    """Everything the engine remembers about one conversation."""

    persona: str = "neutral"
    details: dict[str, DetailValue] = field(default_factory=dict)
    active: PendingRequest | None = None
    suspended: list[PendingRequest] = field(default_factory=list)
    awaiting: str | None = None
    awaiting_scenario: str | None = None
    not_understood: int = 0
    handed_off: bool = False
    handoff_reason: str | None = None
    # The category people were asked from, so that questions while waiting are answered for its team.
    handoff_category: str | None = None
    # The request served last: a later "спасибо, ждём" or "когда почините?" is about it.
    last_scenario: str | None = None
    # The client said they already did the usual first steps (rebooted, re-plugged): not asked again.
    tried: bool = False
    # An urgent situation the conversation was handed over for (a stolen card...), so it is raised once.
    urgent: str | None = None
    # Requests whose trouble the bot has apologised for: once is sincere, twice is a script.
    apologised: list[str] = field(default_factory=list)
    # A person has taken the conversation: the bot keeps listening (details, persona) but says nothing.
    with_operator: bool = False
    operator: str = ""
    # An operator closed the conversation and the client has not rated the help yet.
    rating_due: bool = False
    # Flood control: messages the client may still send at once, as of `flood_at` (ISO time).
    flood_tokens: float = -1.0
    flood_at: str = ""
    flood_warned: bool = False
    # Why the client reads as their persona, newest last: operators see these beside the label.
    persona_cues: list[str] = field(default_factory=list)
    used_phrases: list[str] = field(default_factory=list)
    turns: int = 0
    persona_memory: dict[str, Any] = field(default_factory=dict)
    # The campaign whose message the client got last; its buttons and "СТОП" are heard while it is set.
    campaign: str | None = None
    # The client has answered that campaign (its funnel step "replied" is recorded once).
    campaign_answered: bool = False

    def remember_phrase(self, key: str) -> None:
        """Note a phrasing as heard, forgetting the oldest beyond a bound."""
        self.used_phrases.append(key)
        del self.used_phrases[:-USED_PHRASES_KEPT]

    def remember_cues(self, cues: list[str]) -> None:
        """Keep the latest persona cues, without repeats, for operators."""
        for cue in cues:
            if cue in self.persona_cues:
                self.persona_cues.remove(cue)
            self.persona_cues.append(cue)
        del self.persona_cues[:-PERSONA_CUES_KEPT]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (a deep copy)."""
        return asdict(self)

    def to_json(self) -> str:
        """The state as stored: the to_dict() form without the fields still at their defaults (from_json
        puts them back), built without copying."""
        active = self.active
        full = {
            "persona": self.persona,
            "details": {
                name: {"value": d.value, "raw": d.raw, "display": d.display}
                for name, d in self.details.items()
            },
            "active": None if active is None else _request(active),
            "suspended": [_request(p) for p in self.suspended],
            "awaiting": self.awaiting,
            "awaiting_scenario": self.awaiting_scenario,
            "not_understood": self.not_understood,
            "handed_off": self.handed_off,
            "handoff_reason": self.handoff_reason,
            "handoff_category": self.handoff_category,
            "last_scenario": self.last_scenario,
            "tried": self.tried,
            "apologised": self.apologised,
            "urgent": self.urgent,
            "with_operator": self.with_operator,
            "operator": self.operator,
            "rating_due": self.rating_due,
            "flood_tokens": self.flood_tokens,
            "flood_at": self.flood_at,
            "flood_warned": self.flood_warned,
            "persona_cues": self.persona_cues,
            "used_phrases": self.used_phrases,
            "turns": self.turns,
            "persona_memory": self.persona_memory,
            "campaign": self.campaign,
            "campaign_answered": self.campaign_answered,
        }
        # A state is written on every turn: most fields sit at their defaults, and leaving them out keeps
        # the row (and the pages a commit writes) small; orjson costs a third of the standard encoder.
        return orjson.dumps({k: v for k, v in full.items() if v != _DEFAULTS[k]}).decode()

    @classmethod
    def from_json(cls, text: str) -> ConversationState:
        """Rebuild a state stored with to_json() (or to_dict() dumped as JSON)."""
        return cls.from_dict(orjson.loads(text or "{}"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConversationState:
        """Rebuild from to_dict() output, ignoring unknown keys from newer versions."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["details"] = {k: DetailValue(**v) for k, v in data.get("details", {}).items()}
        known["active"] = PendingRequest(**data["active"]) if data.get("active") else None
        known["suspended"] = [PendingRequest(**p) for p in data.get("suspended", [])]
        return cls(**known)


def _request(pending: PendingRequest) -> dict[str, Any]:
    return {"scenario_id": pending.scenario_id, "asked": pending.asked, "failures": pending.failures}


# Every field's default, for leaving them out of the stored form (all are immutable or empty).
_DEFAULTS: dict[str, Any] = {
    **{f.name: f.default for f in fields(ConversationState) if f.default is not MISSING},
    **{f.name: f.default_factory() for f in fields(ConversationState) if f.default_factory is not MISSING},
}
