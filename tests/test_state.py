"""The conversation state as stored: small (defaults left out), and read back whole, old rows included."""

from __future__ import annotations

import orjson

from common.state import ConversationState, DetailValue, PendingRequest


def test_a_fresh_state_is_stored_as_an_empty_object() -> None:
    assert ConversationState().to_json() == "{}"


def test_only_fields_away_from_their_defaults_are_stored_and_all_come_back() -> None:
    state = ConversationState(
        persona="aggressor",
        details={"phone": DetailValue("+79130001122", "8 913 000 11 22", "+7 913 000-11-22")},
        active=PendingRequest("no_internet", asked="contract", failures=1),
        suspended=[PendingRequest("payment_missing")],
        handed_off=True,
        flood_tokens=3.5,
        used_phrases=["aggressor:ask.contract:1a2b3c4d"],
        turns=4,
        persona_memory={"count": 4, "history": [{"aggressor": 1.2}]},
    )
    stored = orjson.loads(state.to_json())
    assert "awaiting" not in stored and "with_operator" not in stored and "persona_cues" not in stored
    assert stored["flood_tokens"] == 3.5 and stored["handed_off"] is True
    assert ConversationState.from_json(state.to_json()) == state


def test_a_state_stored_by_an_older_version_still_loads() -> None:
    old = orjson.dumps(
        {"persona": "talker", "recent": [["привет", "2026-11-23T09:00:00+00:00"]], "turns": 2, "tried": False}
    ).decode()
    state = ConversationState.from_json(old)
    assert state.persona == "talker" and state.turns == 2
    assert not hasattr(state, "recent")
