"""Content edits while running: a good edit is live within a second, a broken one keeps serving."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from dialogs.content import LiveContent


def wait_until(content: LiveContent, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not done():
        content.get()
        time.sleep(0.05)


def test_broken_edit_keeps_serving_and_a_fix_is_picked_up(content_copy: Path) -> None:
    content = LiveContent(content_copy)
    guide = content_copy / "guides" / "neutral.yaml"
    good = guide.read_text(encoding="utf-8")
    guide.write_text(good.replace("  greeting:\n", "  greeting: [unclosed\n", 1), encoding="utf-8")
    wait_until(content, lambda: content.last_error is not None)
    assert content.last_error is not None
    assert str(guide) in str(content.last_error)
    assert content.get().guides.has("greeting")
    fixed = good.replace("Это помощник «{company}».", "Это новый помощник «{company}».")
    guide.write_text(fixed, encoding="utf-8")
    wait_until(content, lambda: content.generation == 2)
    assert content.last_error is None and content.generation == 2
    assert any("новый помощник" in v for v in content.get().guides.variants("greeting", "neutral"))


def test_deleted_file_keeps_the_last_good_version(content_copy: Path) -> None:
    content = LiveContent(content_copy)
    (content_copy / "lexicons" / "handoff.yaml").unlink()
    content.reload_if_changed()
    assert content.last_error is not None
    assert content.get().human_requests.detect("позовите оператора") is not None


def test_answer_moment_missing_from_guides_is_located(content_copy: Path) -> None:
    from dialogs.content import load_content
    from dialogs.yamlfile import ContentError

    path = content_copy / "scenarios" / "provider.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    index = next(i for i, line in enumerate(lines) if "answer: answer.balance" in line)
    lines[index] = lines[index].replace("answer.balance", "answer.balanse")
    path.write_text("\n".join(lines), encoding="utf-8")
    try:
        load_content(content_copy)
    except ContentError as exc:
        assert f"{path}:{index + 1}:" in str(exc) and "answer.balanse" in str(exc)
    else:
        raise AssertionError("a missing answer moment must stop loading")


def test_a_deleted_guide_or_scenario_file_is_an_error_not_a_quiet_loss(content_copy: Path) -> None:
    content = LiveContent(content_copy)
    talker = content_copy / "guides" / "talker.yaml"
    kept = talker.read_text(encoding="utf-8")
    talker.unlink()
    content.reload_if_changed()
    assert content.last_error is not None and "talker.yaml" in str(content.last_error)
    assert "talker" in content.get().guides.guides
    talker.write_text(kept, encoding="utf-8")
    content.reload_if_changed()
    assert content.last_error is None
    (content_copy / "scenarios" / "provider.yaml").unlink()
    content.reload_if_changed()
    assert content.last_error is not None and "provider.yaml" in str(content.last_error)
    assert content.get().scenarios.scenario("no_internet") is not None
