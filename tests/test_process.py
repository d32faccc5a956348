"""`tonebot` as a separate process: scripted chat, a real restart mid-dialog, content errors at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import tonebot

pytestmark = pytest.mark.subprocess
DATA = Path(__file__).parent / "data"


def test_scripted_chat_completes_a_no_internet_request(tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    result = tonebot("chat", "--db", db, stdin="не работает интернет\n1234567\n1\nда, помогло\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("номер договора") + out.count("номер вашего договора") <= 1
    assert "Все лампочки горят" in out and "1234567" in out
    assert "Traceback" not in result.stderr


def test_restart_mid_dialog_continues_where_it_stopped(tmp_path: Path) -> None:
    db = str(tmp_path / "chat.db")
    first = tonebot("chat", "--db", db, "--explain-json", stdin="перезвоните мне\n")
    assert first.returncode == 0 and '"asked": "phone"' in first.stdout
    second = tonebot("chat", "--db", db, "--explain-json", stdin="8 913 123 45 67\n")
    assert second.returncode == 0, second.stderr
    explained = json.loads(second.stdout.strip().splitlines()[-1].removeprefix("  · "))
    assert explained["details"] == {"phone": "+79131234567"}
    assert explained["asked"] == "callback_time"
    third = tonebot("chat", "--db", db, stdin="завтра в 10\n")
    assert "+7 913 123-45-67" in third.stdout


def test_broken_scenario_file_stops_start_up_with_file_line_column(
    tmp_path: Path, content_copy: Path
) -> None:
    path = content_copy / "scenarios" / "provider.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if "details: [contract, router_lights]" in line)
    lines[index] = lines[index].replace("router_lights", "router_light")
    path.write_text("\n".join(lines), encoding="utf-8")
    result = tonebot("--content", str(content_copy), "chat", "--db", str(tmp_path / "x.db"), stdin="привет\n")
    assert result.returncode == 2
    assert f"{path}:{index + 1}:" in result.stderr
    assert "unknown detail 'router_light'" in result.stderr and "Traceback" not in result.stderr


def test_yaml_syntax_error_is_located(tmp_path: Path, content_copy: Path) -> None:
    path = content_copy / "scenarios" / "provider.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\n  - id: [broken\n", encoding="utf-8")
    result = tonebot("--content", str(content_copy), "chat", "--db", str(tmp_path / "x.db"), stdin="")
    assert result.returncode == 2 and f"{path}:" in result.stderr and "YAML syntax" in result.stderr


@pytest.mark.parametrize(
    ("kind", "name", "keys"),
    [
        ("details", "details_dev.jsonl", {"fields", "micro_f1", "n"}),
        ("handoff", "handoff_dev.jsonl", {"accuracy", "false_handoff_rate", "missed_handoff_rate", "n"}),
    ],
)
def test_eval_prints_json_on_the_last_line(kind: str, name: str, keys: set[str]) -> None:
    result = tonebot("eval", kind, str(DATA / name), "--json")
    assert result.returncode == 0, result.stderr
    assert set(json.loads(result.stdout.strip().splitlines()[-1])) == keys


def test_eval_on_a_broken_file_says_where(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1}\n{not json\n', encoding="utf-8")
    result = tonebot("eval", "details", str(path))
    assert result.returncode == 2 and f"{path}:2:" in result.stdout


def test_guides_lint_is_clean_on_the_shipped_guides() -> None:
    result = tonebot("guides", "lint")
    assert result.returncode == 0, result.stdout
    assert "aggressor" in result.stdout and "no errors" in result.stdout


def test_guides_lint_reports_unknown_placeholder(content_copy: Path) -> None:
    guide = content_copy.parent / "common" / "guides" / "positive.yaml"
    lines = guide.read_text(encoding="utf-8").splitlines()
    index = next(
        i for i, line in enumerate(lines) if line.strip().startswith("- ") and "greeting" in lines[i - 1]
    )
    lines[index] = lines[index].replace('"', '"{client_name} ', 1)
    guide.write_text("\n".join(lines), encoding="utf-8")
    result = tonebot("guides", "lint", str(content_copy))
    assert result.returncode == 1
    assert f"{guide}:{index + 1}:" in result.stdout and "unknown placeholder {client_name}" in result.stdout


def test_guides_preview_renders_every_variant_with_samples() -> None:
    result = tonebot("guides", "preview", "--persona", "sysadmin", "--moment", "answer.callback")
    assert result.returncode == 0
    assert "+79131234567" in result.stdout and "{" not in result.stdout


def test_eval_personas_json() -> None:
    result = tonebot("eval", "personas", str(DATA / "personas_dev.jsonl"), "--json")
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report) == {"accuracy", "macro_f1", "per_label", "confusion", "n"}
    assert set(report["per_label"]["aggressor"]) == {"precision", "recall", "f1", "support"}


@pytest.mark.parametrize(
    ("token", "says"),
    [("", "TELEGRAM_BOT_TOKEN is not set"), ("12345", "does not look like a bot token")],
)
def test_run_telegram_without_a_good_token_says_what_to_set(tmp_path: Path, token: str, says: str) -> None:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "TELEGRAM_BOT_TOKEN": token}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "telegram"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0]
