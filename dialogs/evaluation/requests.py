"""Scoring request recognition: which scenario a client's first message names, or none (null)."""

from __future__ import annotations

from typing import Any

from dialogs.content import Content
from dialogs.evaluation.metrics import Counts


def predict_request(content: Content, text: str) -> tuple[str | None, list[tuple[str, float]]]:
    """The scenario the engine would take a first message for (None: no request or out of scope), and the
    two best candidates with their scores."""
    matcher = content.matcher
    ranking = matcher.rank(text)
    match = matcher.decide(ranking)
    return (match.scenario_id if match else None), [(label, round(s, 2)) for label, s in ranking.top(2)]


def evaluate_requests(
    content: Content, rows: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Accuracy, per-scenario precision/recall/F1, macro F1, out-of-scope precision and recall."""
    smalltalk = {s.id for s in content.scenarios.scenarios if s.smalltalk}
    per_label: dict[str, Counts] = {}
    oos = Counts()
    correct = in_scope = in_scope_called_none = 0
    errors = []
    for row in rows:
        expected = row.get("expect")
        expected = str(expected) if expected is not None else None
        predicted, top = predict_request(content, str(row.get("text", "")))
        # Small talk holds no request: a greeting counts as "none" unless the set names the greeting itself.
        if predicted in smalltalk and expected != predicted:
            predicted = None
        if expected is not None:
            in_scope += 1
            per_label.setdefault(expected, Counts()).support += 1
            in_scope_called_none += predicted is None
        else:
            oos.support += 1
        if predicted == expected:
            correct += 1
            if expected is None:
                oos.tp += 1
            else:
                per_label[expected].tp += 1
            continue
        if expected is None:
            oos.fn += 1
        else:
            per_label[expected].fn += 1
        if predicted is None:
            oos.fp += 1
        else:
            per_label.setdefault(predicted, Counts()).fp += 1
        errors.append(
            {
                "id": row.get("id"),
                "text": row.get("text"),
                "expected": expected,
                "predicted": predicted,
                "top": top,
            }
        )
    n = len(rows)
    reports = {label: counts.report() for label, counts in sorted(per_label.items())}
    scored = [r for r in reports.values() if r["support"]]
    result = {
        "n": n,
        "accuracy": round(correct / n, 4) if n else 0.0,
        "macro_f1": round(sum(float(r["f1"]) for r in scored) / len(scored), 4) if scored else 0.0,
        "min_f1": min((float(r["f1"]) for r in scored), default=0.0),
        "out_of_scope": oos.report(),
        "in_scope_called_out_of_scope": round(in_scope_called_none / in_scope, 4) if in_scope else 0.0,
        "per_scenario": reports,
    }
    return result, errors
