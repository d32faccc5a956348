"""Scoring whole conversations: the client's turns in order, expectations about how the conversation ended.

The format is the one of DESIGN.md (and of the editors' conversation tests in content/tests): turns are typed
text (`text`, `after_s` seconds after the previous turn) or a pressed button (`press`, by label or number).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz, utils

from common.messages import Button, IncomingMessage
from common.state import ConversationState
from dialogs.details.base import DetailKind
from dialogs.engine import Engine, Turn

CHANNEL = "eval"
DEFAULT_GAP_S = 30.0
ADDRESS_MIN_SCORE = 85
# The first turn is at noon of a fixed Wednesday in the company's time zone: results never depend on when
# (or where) the evaluation runs.
FIRST_DAY = (2026, 11, 25)


@dataclass(slots=True)
class DialogResult:
    """How one conversation went: the failed expectations (none when it passed) and the transcript."""

    id: str
    failures: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)
    client_turns: int = 0
    fallbacks: int = 0
    reasks: int = 0
    handoff_ok: bool = True
    details_expected: int = 0
    details_ok: int = 0
    scenarios_expected: int = 0
    scenarios_seen: int = 0

    @property
    def passed(self) -> bool:
        """Whether every expectation held."""
        return not self.failures


def _start(engine: Engine) -> datetime:
    zone = ZoneInfo(engine.live.get().scenarios.company.timezone)
    return datetime(*FIRST_DAY, 12, 0, tzinfo=zone)


def _press(buttons: tuple[Button, ...], label: str) -> Button | None:
    wanted = " ".join(label.split()).casefold()
    for button in buttons:
        if " ".join(button.text.split()).casefold() == wanted:
            return button
    if label.strip().isdigit() and 1 <= int(label) <= len(buttons):
        return buttons[int(label) - 1]
    return None


def same_detail(kind: DetailKind | None, expected: str, got: str) -> bool:
    """Whether a collected value counts as the expected one (addresses fuzzily, emails in any case)."""
    if kind is DetailKind.ADDRESS:
        return fuzz.token_set_ratio(expected, got, processor=utils.default_process) >= ADDRESS_MIN_SCORE
    if kind is DetailKind.EMAIL:
        return expected.lower() == got.lower()
    if kind in (DetailKind.CONTRACT,):
        return (
            "".join(ch for ch in expected if ch.isalnum()).upper()
            == "".join(ch for ch in got if ch.isalnum()).upper()
        )
    return expected == got


def _shown(turn: Turn) -> list[str]:
    lines = []
    for reply in turn.replies:
        lines.append(f"  bot: {reply.text}")
        if reply.buttons:
            lines.append("       [" + "] [".join(button.text for button in reply.buttons) + "]")
    return lines


def run_dialog(engine: Engine, row: dict[str, Any]) -> DialogResult:
    """Run one conversation through a fresh state and check its expectations."""
    dialog_id = str(row.get("id", ""))
    result = DialogResult(dialog_id)
    state = ConversationState()
    clock = _start(engine)
    buttons: tuple[Button, ...] = ()
    seen_scenarios: set[str] = set()
    said: set[str] = set()
    for index, step in enumerate(row.get("turns") or []):
        if not isinstance(step, dict):
            result.failures.append(f"turn {index + 1}: expected an object with text or press")
            continue
        clock += timedelta(seconds=float(step.get("after_s", DEFAULT_GAP_S) if index else 0))
        text, payload = str(step.get("text", "")), None
        if "press" in step:
            label = str(step["press"])
            button = _press(buttons, label)
            if button is not None:
                text, payload = "", button.payload
                result.transcript.append(f"client presses [{button.text}]")
            else:
                text = label
                result.transcript.append(f"client: {label}   (no button [{label}] on screen: typed)")
        else:
            result.transcript.append(f"client: {text}")
        message = IncomingMessage(
            CHANNEL, dialog_id, dialog_id, text, clock, str(index), button_payload=payload
        )
        turn = engine.handle(state, message)
        result.client_turns += 1
        result.transcript.extend(_shown(turn))
        explain = turn.explain
        result.fallbacks += bool(explain.get("fallback"))
        result.reasks += len(explain.get("reasked", ()))
        seen_scenarios.update(explain.get("scenarios", ()))
        said.update(explain.get("moments", ()))
        shown = [reply.buttons for reply in turn.replies if reply.buttons]
        if turn.replies:
            buttons = shown[-1] if shown else ()
    _check(engine, row.get("expect") or {}, state, seen_scenarios, result)
    _check_voice(row.get("expect") or {}, state, said, result)
    return result


def _check_voice(
    expect: dict[str, Any], state: ConversationState, said: set[str], result: DialogResult
) -> None:
    """Editors' checks of how the bot spoke: the persona it settled on, the moments it said."""
    if "persona" in expect and state.persona != str(expect["persona"]):
        result.failures.append(f"persona: expected {expect['persona']!r}, got {state.persona!r}")
    for moment in expect.get("said") or []:
        # "waiting_when" is said as itself or as one of its variants ("waiting_when.outage").
        if not any(key == moment or key.startswith(f"{moment}.") for key in said):
            result.failures.append(f"the bot never said {moment!r} (said {sorted(said)})")


def _check(
    engine: Engine, expect: dict[str, Any], state: ConversationState, seen: set[str], result: DialogResult
) -> None:
    if "handoff" in expect:
        handed = state.handed_off or state.with_operator
        result.handoff_ok = handed == bool(expect["handoff"])
        if not result.handoff_ok:
            reason = f" ({state.handoff_reason})" if state.handoff_reason else ""
            result.failures.append(f"handoff: expected {bool(expect['handoff'])}, got {handed}{reason}")
    for scenario in expect.get("scenarios") or []:
        result.scenarios_expected += 1
        if scenario in seen:
            result.scenarios_seen += 1
        else:
            result.failures.append(f"scenario {scenario!r} was never recognised (saw {sorted(seen)})")
    specs = engine.live.get().scenarios.details
    for name, wanted in (expect.get("details") or {}).items():
        result.details_expected += 1
        got = state.details.get(name)
        spec = specs.get(name)
        if got is not None and same_detail(spec.type if spec else None, str(wanted), got.value):
            result.details_ok += 1
        else:
            result.failures.append(f"detail {name}: expected {wanted!r}, got {got.value if got else None!r}")
    allowed = int(expect.get("fallbacks_max", 0))
    if result.fallbacks > allowed:
        result.failures.append(f"{result.fallbacks} turn(s) answered 'not understood' (at most {allowed})")


def evaluate_dialogs(
    engine: Engine, rows: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Summary over conversations, and the ones that failed with their transcripts."""
    results = [run_dialog(engine, row) for row in rows]
    n = len(results)
    turns = sum(r.client_turns for r in results)
    details_expected = sum(r.details_expected for r in results)
    scenarios_expected = sum(r.scenarios_expected for r in results)
    summary = {
        "n": n,
        "passed": sum(r.passed for r in results),
        "pass_rate": round(sum(r.passed for r in results) / n, 4) if n else 0.0,
        "fallback_rate": round(sum(r.fallbacks for r in results) / turns, 4) if turns else 0.0,
        "handoff_accuracy": round(sum(r.handoff_ok for r in results) / n, 4) if n else 0.0,
        "details_accuracy": round(sum(r.details_ok for r in results) / details_expected, 4)
        if details_expected
        else 1.0,
        "scenario_recall": round(sum(r.scenarios_seen for r in results) / scenarios_expected, 4)
        if scenarios_expected
        else 1.0,
        "reasks": sum(r.reasks for r in results),
    }
    failed = [
        {"id": r.id, "failures": r.failures, "transcript": r.transcript} for r in results if not r.passed
    ]
    return summary, failed
