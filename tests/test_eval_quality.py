"""The labelled dev sets stay above the goals (the held-out sets are scored by hand, see the README)."""

from __future__ import annotations

from pathlib import Path

from dialogs.content import LiveContent
from dialogs.engine import Engine
from dialogs.evaluation.details import evaluate_details
from dialogs.evaluation.handoff import evaluate_handoff
from dialogs.evaluation.metrics import read_jsonl

DATA = Path(__file__).parent / "data"


def test_details_dev_set(live_content: LiveContent) -> None:
    result, errors = evaluate_details(live_content.get(), read_jsonl(str(DATA / "details_dev.jsonl")))
    fields = result["fields"]
    assert result["n"] >= 150
    for name in ("phone", "contract", "email"):
        assert fields[name]["f1"] >= 0.98, (name, errors)
    assert fields["address"]["f1"] >= 0.90, errors


def test_handoff_dev_set_without_aggression(engine: Engine) -> None:
    rows = [r for r in read_jsonl(str(DATA / "handoff_dev.jsonl")) if not str(r["id"]).startswith("agg-")]
    result, errors = evaluate_handoff(engine, rows)
    assert result["accuracy"] >= 0.97, errors


def test_personas_dev_set(engine: Engine) -> None:
    from dialogs.evaluation.personas import evaluate_personas

    result, _ = evaluate_personas(engine, read_jsonl(str(DATA / "personas_dev.jsonl")))
    assert result["macro_f1"] >= 0.90
    confusion = result["confusion"]
    others = sum(sum(row.values()) for label, row in confusion.items() if label != "aggressor")
    called_aggressor = sum(row["aggressor"] for label, row in confusion.items() if label != "aggressor")
    assert called_aggressor / others <= 0.03


def test_paradetox_rude_comments() -> None:
    from dialogs.evaluation.personas import evaluate_personas

    path = Path(__file__).resolve().parents[2] / "shared" / "eval" / "real" / "paradetox-dev.jsonl"
    if not path.is_file():
        import pytest

        pytest.skip(f"{path} is not beside the project")
    result, _ = evaluate_personas(Engine(LiveContent()), read_jsonl(str(path)))
    confusion = result["confusion"]
    assert result["per_label"]["aggressor"]["recall"] >= 0.90
    assert confusion["neutral"]["aggressor"] / sum(confusion["neutral"].values()) <= 0.05
