"""Precision, recall and F1 from counts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Counts:
    """True positives, false positives, false negatives and how many expected values there were."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    support: int = 0

    def report(self) -> dict[str, float | int]:
        """precision, recall, f1 and support, rounded for printing."""
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "f1": round(f1, 4),
            "support": self.support,
        }


def read_jsonl(path: str) -> list[dict[str, object]]:
    """Read a JSON Lines file; a broken line is an error naming file and line."""
    import json

    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}:{exc.colno}: not valid JSON: {exc.msg}") from exc
    return rows
