"""Scoring detail extraction: phone, contract, email, address on single messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rapidfuzz import fuzz, utils

from dialogs.content import Content
from dialogs.evaluation.metrics import Counts

FIELDS = ("phone", "contract", "email", "address")
ADDRESS_MIN_SCORE = 85


def same(field: str, expected: str, predicted: str) -> bool:
    """Whether a predicted value counts as the expected one."""
    if field == "address":
        score = fuzz.token_set_ratio(expected, predicted, processor=utils.default_process)
        return bool(score >= ADDRESS_MIN_SCORE)
    if field == "email":
        return expected.lower() == predicted.lower()
    return expected == predicted


def predict(content: Content, text: str, now: datetime) -> dict[str, str | None]:
    """What the bot takes from a first message, for each scored field."""
    found = content.extractor.extract(text, now).found
    return {field: found[field].value if field in found else None for field in FIELDS}


def evaluate_details(
    content: Content, rows: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per-field scores and micro F1, plus the rows that went wrong."""
    counts = {field: Counts() for field in FIELDS}
    errors = []
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    for row in rows:
        predicted = predict(content, str(row["text"]), now)
        expected = row.get("expect") or {}
        wrong = {}
        for field in FIELDS:
            want, got = expected.get(field), predicted[field]
            count = counts[field]
            if want is not None:
                count.support += 1
            if want is not None and got is not None and same(field, str(want), got):
                count.tp += 1
                continue
            if want is not None:
                count.fn += 1
            if got is not None:
                count.fp += 1
            if want is not None or got is not None:
                wrong[field] = {"expected": want, "got": got}
        if wrong:
            errors.append({"id": row.get("id"), "text": row["text"], "wrong": wrong})
    total = Counts(
        tp=sum(c.tp for c in counts.values()),
        fp=sum(c.fp for c in counts.values()),
        fn=sum(c.fn for c in counts.values()),
        support=sum(c.support for c in counts.values()),
    )
    result = {
        "fields": {field: count.report() for field, count in counts.items()},
        "micro_f1": total.report()["f1"],
        "n": len(rows),
    }
    return result, errors
