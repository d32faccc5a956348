"""The editors' conversation tests of every shipped company pass, and no turn says two things that
contradict each other (run through `tonebot test` too)."""

from __future__ import annotations

import io

import pytest

from dialogs.content import CONTENT_ROOT, LiveContent
from dialogs.engine import Engine
from dialogs.evaluation.content_tests import default_tests, load_tests, run_tests
from dialogs.evaluation.dialogs import run_dialog

COMPANIES = ["provider", "bank"]
# Moments that must never be said in the same turn.
CONTRADICTIONS = [
    ({"anger_heard"}, {"out_of_hours"}),  # "we are on it now" beside "people answer tomorrow"
    ({"solved"}, {"not_solved", "handoff"}),
    ({"handoff_declined"}, {"handoff", "handoff_wait", "out_of_hours"}),
    ({"ask_if_solved"}, {"handoff", "handoff_wait", "out_of_hours", "tried_already"}),
    ({"smalltalk.goodbye"}, {"ask_if_solved", "offer_human"}),
    ({"not_understood"}, {"out_of_scope", "capabilities"}),
    ({"handoff_wait"}, {"out_of_hours"}),
]


@pytest.mark.parametrize("company", COMPANIES)
def test_shipped_conversation_tests_pass(company: str) -> None:
    out = io.StringIO()
    code = run_tests(CONTENT_ROOT / company, None, out)
    assert code == 0, out.getvalue()[-6000:]
    assert len(load_tests(default_tests(CONTENT_ROOT / company))) >= 60


@pytest.mark.parametrize("company", COMPANIES)
def test_no_turn_contradicts_itself(company: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine(LiveContent(CONTENT_ROOT / company))
    said: list[set[str]] = []
    handle = engine.handle

    def recording(state, message):  # type: ignore[no-untyped-def]
        turn = handle(state, message)
        said.append(
            {m.split(".")[0] if m.startswith("answer.") else m for m in turn.explain.get("moments", [])}
        )
        return turn

    monkeypatch.setattr(engine, "handle", recording)
    for test in load_tests(default_tests(CONTENT_ROOT / company)):
        run_dialog(engine, test.dialog)
    clashes = [
        (sorted(moments), sorted(a), sorted(b))
        for moments in said
        for a, b in CONTRADICTIONS
        if moments & a and moments & b
    ]
    assert said and clashes == []


def test_a_failing_test_names_file_and_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "# a test that cannot pass\n- id: wrong\n  turns:\n    - {text: не работает интернет}\n"
        "  expect: {handoff: true}\n",
        encoding="utf-8",
    )
    out = io.StringIO()
    assert run_tests(CONTENT_ROOT / "provider", broken, out) == 1
    assert f"{broken}:2: wrong: handoff: expected True, got False" in out.getvalue()


def test_a_malformed_test_file_is_an_error_with_its_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = tmp_path / "broken.yaml"
    broken.write_text("- id: x\n  turns: [\n", encoding="utf-8")
    out = io.StringIO()
    assert run_tests(CONTENT_ROOT / "provider", broken, out) == 2
    assert f"{broken}:" in out.getvalue()
