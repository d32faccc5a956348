"""Fitted persona word weights: fitting from labelled rows, the CLI that writes the table, and its use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from common.text import shared_lemmatizer
from personas.fitting import MIN_MESSAGES, as_yaml, fit
from personas.signals import LearnedWords


def _rows() -> list[dict[str, object]]:
    unsure = [{"persona": "unsure", "messages": [f"боюсь что-то сломать, подскажите {n}"]} for n in range(6)]
    positive = [{"persona": "positive", "messages": [f"спасибо огромное, вы лучшие {n}"]} for n in range(6)]
    neutral = [{"persona": "neutral", "messages": [f"нет интернета, договор {n}"]} for n in range(6)]
    return unsure + positive + neutral


def test_a_word_shared_by_one_persona_gets_weight_there_and_nowhere_else() -> None:
    table = fit(_rows(), shared_lemmatizer())
    assert "бояться" in table["unsure"]
    assert "бояться" not in table.get("positive", {})
    assert "интернет" not in table["unsure"] and "интернет" not in table["positive"]


def test_a_word_seen_in_too_few_messages_is_left_out() -> None:
    rows = _rows() + [{"persona": "unsure", "messages": ["страшновато"]}] * (MIN_MESSAGES - 1)
    assert "страшновато" not in fit(rows, shared_lemmatizer())["unsure"]


def test_the_written_table_validates_and_says_where_it_came_from() -> None:
    text = as_yaml(fit(_rows(), shared_lemmatizer()), ["a.jsonl"], 0.3, {"aggressor": 0.1})
    assert text.startswith("# ")
    learned = LearnedWords.model_validate(yaml.safe_load(text))
    assert learned.scale == 0.3 and learned.scales["aggressor"] == 0.1
    assert learned.fitted_from == ["a.jsonl"]


def test_the_cli_writes_a_table_the_classifier_loads(tmp_path: Path) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in _rows()), encoding="utf-8")
    out = tmp_path / "learned.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "personas", "fit", str(data), "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "written to" in done.stdout
    assert "бояться" in yaml.safe_load(out.read_text(encoding="utf-8"))["words"]["unsure"]


def test_the_cli_reports_a_missing_file_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "personas", "fit", str(tmp_path / "nope.jsonl")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "nope.jsonl" in done.stderr
