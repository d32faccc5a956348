"""Runs an evaluation and prints a table, or one JSON object on the last line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.yamlfile import ContentError
from dialogs.content import LiveContent
from dialogs.engine import Engine
from dialogs.evaluation.content_tests import load_tests
from dialogs.evaluation.details import evaluate_details
from dialogs.evaluation.dialogs import evaluate_dialogs
from dialogs.evaluation.handoff import evaluate_handoff
from dialogs.evaluation.metrics import read_jsonl
from dialogs.evaluation.personas import evaluate_personas
from dialogs.evaluation.requests import evaluate_requests

MAX_ERRORS_SHOWN = 25


def _persona_table(result: dict[str, Any]) -> str:
    labels = list(result["per_label"])
    lines = [f"{'label':<11}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    for label, row in result["per_label"].items():
        lines.append(
            f"{label:<11}{row['precision']:>10.3f}{row['recall']:>8.3f}{row['f1']:>8.3f}{row['support']:>9}"
        )
    lines.append(f"accuracy {result['accuracy']:.3f}, macro F1 {result['macro_f1']:.3f} over {result['n']}")
    lines.append("")
    lines.append("confusion (rows: expected, columns: predicted)")
    lines.append(" " * 11 + "".join(f"{label[:9]:>10}" for label in labels))
    for truth, row in result["confusion"].items():
        lines.append(f"{truth:<11}" + "".join(f"{row.get(label, 0):>10}" for label in labels))
    return "\n".join(lines)


def _requests_table(result: dict[str, Any]) -> str:
    lines = [f"{'scenario':<20}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
    rows = {**result["per_scenario"], "(out of scope)": result["out_of_scope"]}
    for label, row in rows.items():
        lines.append(
            f"{label:<20}{row['precision']:>10.3f}{row['recall']:>8.3f}{row['f1']:>8.3f}{row['support']:>9}"
        )
    lines.append(
        f"accuracy {result['accuracy']:.3f}, macro F1 {result['macro_f1']:.3f}"
        f" (lowest {result['min_f1']:.3f}) over {result['n']};"
        f" in-scope called out of scope {result['in_scope_called_out_of_scope']:.3f}"
    )
    return "\n".join(lines)


def _table(result: dict[str, Any]) -> str:
    if "per_scenario" in result:
        return _requests_table(result)
    if "per_label" in result:
        return _persona_table(result)
    if "fields" in result:
        lines = [f"{'field':<10}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}"]
        for field, row in result["fields"].items():
            lines.append(
                f"{field:<10}{row['precision']:>10.3f}{row['recall']:>8.3f}{row['f1']:>8.3f}{row['support']:>9}"
            )
        lines.append(f"micro F1 {result['micro_f1']:.3f} over {result['n']} messages")
        return "\n".join(lines)
    return "\n".join(f"{key:<22}{value}" for key, value in result.items())


def run_evaluation(kind: str, path: Path, *, as_json: bool, content_dir: Path) -> int:
    """Score one labelled file; exit code 0, or 2 when the file cannot be read."""
    try:
        if kind == "dialogs" and (path.is_dir() or path.suffix == ".yaml"):
            rows = [test.dialog for test in load_tests(path)]  # editors' conversation tests
        else:
            rows = read_jsonl(str(path))
    except (OSError, ValueError, ContentError) as exc:
        print(f"tonebot eval: {exc}")
        return 2
    content = LiveContent(content_dir)
    if kind == "details":
        result, errors = evaluate_details(content.get(), rows)
    elif kind == "dialogs":
        result, errors = evaluate_dialogs(Engine(content), rows)
    elif kind == "requests":
        result, errors = evaluate_requests(content.get(), rows)
    elif kind == "personas":
        result, errors = evaluate_personas(Engine(content), rows)
    else:
        result, errors = evaluate_handoff(Engine(content), rows)
    if not as_json and kind == "dialogs":
        for error in errors:
            print(f"FAIL {error['id']}: " + "; ".join(error["failures"]))
            print("\n".join("    " + line for line in error["transcript"]))
        print(_table(result))
    elif not as_json:
        for error in errors[:MAX_ERRORS_SHOWN]:
            print("miss:", json.dumps(error, ensure_ascii=False))
        if len(errors) > MAX_ERRORS_SHOWN:
            print(f"... and {len(errors) - MAX_ERRORS_SHOWN} more")
        print(_table(result))
    else:
        print(json.dumps(result, ensure_ascii=False))
    return 0
