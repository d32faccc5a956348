"""Scoring the persona classifier: each conversation runs through a fresh engine conversation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from common.messages import IncomingMessage
from common.state import ConversationState
from dialogs.engine import Engine
from dialogs.evaluation.metrics import Counts
from personas.labels import PERSONAS

CHANNEL = "eval"
# Without timestamps, messages are spaced like an unhurried chat: no burst is invented.
DEFAULT_GAP = timedelta(seconds=60)


def _times(messages: list[dict[str, Any]]) -> list[datetime]:
    start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    times = []
    for index, message in enumerate(messages):
        raw = message.get("at")
        if raw:
            at = datetime.fromisoformat(str(raw))
            times.append(at if at.tzinfo else at.replace(tzinfo=UTC))
        else:
            times.append(times[-1] + DEFAULT_GAP if times else start + DEFAULT_GAP * index)
    return times


def predict_persona(engine: Engine, conversation_id: str, messages: list[dict[str, Any]]) -> str:
    """The persona the engine settles on after the client's messages."""
    state = ConversationState()
    for index, (message, at) in enumerate(zip(messages, _times(messages), strict=True)):
        incoming = IncomingMessage(
            CHANNEL, conversation_id, conversation_id, str(message.get("text", "")), at, str(index)
        )
        engine.handle(state, incoming)
    return state.persona


def evaluate_personas(
    engine: Engine, rows: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Accuracy, macro F1, per-label scores and the confusion matrix, plus the rows that went wrong."""
    labels: list[str] = list(PERSONAS)
    confusion: dict[str, dict[str, int]] = {truth: dict.fromkeys(labels, 0) for truth in labels}
    errors = []
    for row in rows:
        truth = str(row["persona"])
        predicted = predict_persona(engine, str(row.get("id")), list(row["messages"]))
        confusion.setdefault(truth, dict.fromkeys(labels, 0))[predicted] += 1
        if predicted != truth:
            errors.append(
                {
                    "id": row.get("id"),
                    "expected": truth,
                    "got": predicted,
                    "messages": [m.get("text") for m in row["messages"]],
                }
            )
    per_label = {}
    for label in labels:
        counts = Counts(
            tp=confusion[label][label],
            fp=sum(confusion[t][label] for t in confusion if t != label),
            fn=sum(v for p, v in confusion[label].items() if p != label),
            support=sum(confusion[label].values()),
        )
        per_label[label] = counts.report()
    present = [label for label in labels if per_label[label]["support"]]
    n = len(rows)
    correct = sum(confusion[label][label] for label in labels)
    result = {
        "accuracy": round(correct / n, 4) if n else 0.0,
        "macro_f1": round(sum(float(per_label[lb]["f1"]) for lb in present) / len(present), 4)
        if present
        else 0.0,
        "per_label": per_label,
        "confusion": confusion,
        "n": n,
    }
    return result, errors
