"""Scoring the handoff decision: each conversation runs through a fresh engine conversation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from common.messages import IncomingMessage
from common.state import ConversationState
from dialogs.engine import Engine

CHANNEL = "eval"


def run_conversation(engine: Engine, conversation_id: str, texts: list[str]) -> ConversationState:
    """Feed a client's messages in order through a new conversation; the final state."""
    state = ConversationState()
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    for index, text in enumerate(texts):
        message = IncomingMessage(
            CHANNEL, conversation_id, conversation_id, text, start + timedelta(seconds=40 * index), str(index)
        )
        engine.handle(state, message)
    return state


def evaluate_handoff(
    engine: Engine, rows: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """accuracy, false and missed handoff rates, plus the rows that went wrong."""
    correct = false_handoffs = missed = negatives = positives = 0
    errors = []
    for row in rows:
        state = run_conversation(engine, str(row.get("id")), [str(m) for m in row["messages"]])
        expected = bool(row["expect_handoff"])
        positives += expected
        negatives += not expected
        if state.handed_off == expected:
            correct += 1
            continue
        false_handoffs += state.handed_off and not expected
        missed += expected and not state.handed_off
        errors.append(
            {
                "id": row.get("id"),
                "messages": row["messages"],
                "expected": expected,
                "reason": state.handoff_reason,
            }
        )
    n = len(rows)
    result = {
        "accuracy": round(correct / n, 4) if n else 0.0,
        "false_handoff_rate": round(false_handoffs / negatives, 4) if negatives else 0.0,
        "missed_handoff_rate": round(missed / positives, 4) if positives else 0.0,
        "n": n,
    }
    return result, errors
