"""Stored names: one StrEnum per concept, equal to the strings already in the databases; the console's
titles are keyed by them; no module imports another module's private (underscore) names."""

from __future__ import annotations

import ast
from pathlib import Path

from common.names import (
    ACTIVE_HANDOFF_STATUSES,
    OPEN_CONVERSATION_STATUSES,
    ConversationStatus,
    Delivery,
    HandoffReason,
    HandoffStatus,
    Priority,
    urgent_reason,
)
from web.console import REASON_TITLES, STATUS_TITLES

ROOT = Path(__file__).resolve().parent.parent
# The project's packages (a test may reach into the module it tests).
PACKAGES = ("bot", "bench", "common", "dialogs", "operators", "personas", "storage", "web", "wiring")


def test_members_are_the_stored_strings() -> None:
    assert [str(s) for s in OPEN_CONVERSATION_STATUSES] == ["bot", "handed_off", "with_operator"]
    assert ACTIVE_HANDOFF_STATUSES == ("waiting", "taken")
    assert f"{Priority.HIGH}" == "high" and Delivery.IMMEDIATE == "" and HandoffStatus.RETURNED == "returned"
    assert urgent_reason("card_stolen") == "urgent:card_stolen"


def test_every_status_and_reason_has_a_title_for_operators() -> None:
    assert set(STATUS_TITLES) == set(ConversationStatus)
    assert set(REASON_TITLES) == set(HandoffReason)


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.relative_to(ROOT)}: {node.module}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_names() -> None:
    found = [
        hit
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for hit in _private_imports(path)
    ]
    assert not found, sorted(found)
