"""Editors' conversation tests: dialogs in the DESIGN.md format kept beside the content (`tests/*.yaml` or
`*.jsonl` in a company's content directory), run by `tonebot test` and by the project's test suite.

A failure is reported as `file:line: id: what failed`, followed by the transcript of the conversation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from common.yamlfile import ContentError, ContentIssue, load_yaml
from dialogs.content import LiveContent
from dialogs.engine import Engine
from dialogs.evaluation.dialogs import DialogResult, run_dialog

TESTS_DIR = "tests"


@dataclass(frozen=True, slots=True)
class ConversationTest:
    """One dialog of a test file and where it is written."""

    path: Path
    line: int
    dialog: dict[str, Any]


def _plain(value: Any) -> Any:
    """YAML's marked containers as plain dicts and lists."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _from_yaml(path: Path) -> list[ConversationTest]:
    data = load_yaml(path)
    if data is None:
        return []
    if not isinstance(data, list):
        raise ContentError(
            [ContentIssue(str(path), 1, 1, "expected a list of dialogs (- id: ..., turns: ...)")]
        )
    found = []
    for index, item in enumerate(data):
        line = data.marks[index].line + 1 if hasattr(data, "marks") else 1
        if not isinstance(item, dict) or not isinstance(item.get("turns"), list):
            message = "expected a dialog with `turns:` (a list of {text: ...} or {press: ...})"
            raise ContentError([ContentIssue(str(path), line, 1, message)])
        found.append(ConversationTest(path, line, _plain(item)))
    return found


def _from_jsonl(path: Path) -> list[ConversationTest]:
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append(ConversationTest(path, number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise ContentError(
                [ContentIssue(str(path), number, exc.colno, f"not valid JSON: {exc.msg}")]
            ) from exc
    return found


def load_tests(path: Path) -> list[ConversationTest]:
    """Every dialog in a test file or in the `*.yaml` and `*.jsonl` files of a directory."""
    files = sorted([*path.glob("*.yaml"), *path.glob("*.jsonl")]) if path.is_dir() else [path]
    tests: list[ConversationTest] = []
    for file in files:
        tests.extend(_from_jsonl(file) if file.suffix == ".jsonl" else _from_yaml(file))
    return tests


def default_tests(content_dir: Path) -> Path:
    """Where a content directory keeps its conversation tests."""
    return content_dir / TESTS_DIR


def run_tests(content_dir: Path, path: Path | None, out: TextIO) -> int:
    """Run conversation tests against a content directory; 0 when all pass, 1 on failures, 2 on bad input."""
    target = path or default_tests(content_dir)
    try:
        tests = load_tests(target)
        live = LiveContent(content_dir)
    except ContentError as exc:
        for issue in exc.issues:
            out.write(f"{issue}\n")
        return 2
    except OSError as exc:
        out.write(f"tonebot test: {exc}\n")
        return 2
    engine = Engine(live)
    failed = 0
    for test in tests:
        result: DialogResult = run_dialog(engine, test.dialog)
        if result.passed:
            continue
        failed += 1
        out.write(f"{test.path}:{test.line}: {result.id}: " + "; ".join(result.failures) + "\n")
        out.write("".join(f"    {line}\n" for line in result.transcript))
    live.close()
    out.write(f"{len(tests) - failed} of {len(tests)} conversation tests passed ({target})\n")
    return 1 if failed else 0
