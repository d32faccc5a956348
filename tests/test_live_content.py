"""Content edits while running: a good edit is live within a second, a broken one keeps serving."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dialogs.content import LiveContent


def wait_until(content: LiveContent, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not done():
        content.get()
        time.sleep(0.05)


def test_broken_edit_keeps_serving_and_a_fix_is_picked_up(content_copy: Path) -> None:
    content = LiveContent(content_copy)
    guide = content_copy.parent / "common" / "guides" / "neutral.yaml"
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
    (content_copy.parent / "common" / "lexicons" / "handoff.yaml").unlink()
    content.reload_if_changed()
    assert content.last_error is not None
    assert content.get().human_requests.detect("позовите оператора") is not None


def test_answer_moment_missing_from_guides_is_located(content_copy: Path) -> None:
    from common.yamlfile import ContentError
    from dialogs.content import load_content

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


def test_turns_never_look_at_files_and_the_watcher_serves_an_edit(
    content_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dialogs.content as module

    looked_from: set[str] = set()
    snapshot = module._snapshot

    def recorded(directory: Path) -> module.Snapshot:
        looked_from.add(threading.current_thread().name)
        return snapshot(directory)

    monkeypatch.setattr(module, "_snapshot", recorded)
    content = LiveContent(content_copy)
    first = content.get()
    guide = content_copy.parent / "common" / "guides" / "neutral.yaml"
    guide.write_text(
        guide.read_text(encoding="utf-8").replace("Это помощник", "Это чуткий помощник"), "utf-8"
    )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and content.generation == 1:
        time.sleep(0.02)  # no get(): the watcher thread alone picks the edit up
    assert content.generation == 2 and content.last_error is None
    looked_from.clear()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not looked_from:
        content.get()
        time.sleep(0.02)
    assert looked_from == {"tonebot-content-watcher"}  # never the thread that asks for content
    latest = content.get()
    assert any("чуткий помощник" in v for v in latest.guides.variants("greeting", "neutral"))
    # Only the guides were read again; everything built from other files is reused as it was.
    assert latest.guides is not first.guides
    assert latest.matcher is first.matcher and latest.personas is first.personas
    assert latest.scenarios is first.scenarios and latest.teams is first.teams
    content.close()


def test_a_closed_live_content_stops_watching_but_reloads_on_request(content_copy: Path) -> None:
    content = LiveContent(content_copy)
    content.close()
    guide = content_copy.parent / "common" / "guides" / "neutral.yaml"
    guide.write_text(
        guide.read_text(encoding="utf-8").replace("Это помощник", "Это другой помощник"), "utf-8"
    )
    time.sleep(0.5)
    assert content.generation == 1
    assert content.reload_if_changed() and content.generation == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_watches_on_its_own(content_copy: Path) -> None:
    content = LiveContent(content_copy)
    guide = content_copy.parent / "common" / "guides" / "neutral.yaml"
    pid = os.fork()
    if pid == 0:  # the child: the parent's watcher thread did not come along
        code = 1
        try:
            content.get()  # starts the child's own watcher
            guide.write_text(
                guide.read_text(encoding="utf-8").replace("Это помощник", "Это ваш помощник"), "utf-8"
            )
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and content.generation == 1:
                time.sleep(0.02)
            code = 0 if content.generation == 2 else 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    content.close()


@pytest.mark.parametrize(
    "text",
    [
        "a: yes\nb: on\nc: True\nd: 0x1f\ne: 2026-01-01\nf: ~\ng: [1, 2.5, -3]\n",
        "a: &x {b: 1}\nc: *x\nd:\n  <<: *x\n  e: 2\n",
        "a: [как дела?, ну и?]\n",
        "a: [:x, -y]\n",
        "? k\n: v\nq:\n",
        "a: {b: }\n",
        "a:\tb\n",
        "\ufeffa: 1\nb: x\ufeffy\n",
        "a: 1\r\nb:\r\n  - c\r\n",
        "a: >-#x\n  t\n",
        "a: |\n  one\n  two\n",
        "a: !!str 1\nb: !\n",
        "a: b\u2028c: d\n",
    ],
)
def test_the_fast_parser_reads_files_exactly_as_the_pure_one(tmp_path: Path, text: str) -> None:
    from common import yamlfile

    def tree(value: object) -> object:
        if isinstance(value, yamlfile.MarkedDict):
            marks = {k: (m.line, m.column) for k, m in value.marks.items()}
            return (
                "map",
                (value.start.line, value.start.column),
                marks,
                {k: tree(v) for k, v in value.items()},
            )
        if isinstance(value, yamlfile.MarkedList):
            return ("seq", [(m.line, m.column) for m in value.marks], [tree(v) for v in value])
        return (type(value).__name__, value)

    def read(fast: bool) -> object:
        loader = yamlfile._FastLoader
        try:
            if not fast:
                yamlfile._FastLoader = None
            return tree(yamlfile.load_yaml(path))
        except yamlfile.ContentError as exc:
            return str(exc)
        finally:
            yamlfile._FastLoader = loader

    path = tmp_path / "file.yaml"
    path.write_text(text, encoding="utf-8", newline="")
    assert read(fast=True) == read(fast=False)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("a: &x [*x]\n", "1:4", "YAML anchors (&x) are not allowed"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "1:1", "nested too deeply"),
        ("a:\n  ? [b, c]\n  : d\n", "2:5", "a key must be a single value"),
        ("a: 1\nb: 2\na: 3\n", "3:1", "duplicate key 'a'"),
    ],
)
def test_unusable_yaml_is_a_located_content_error(
    tmp_path: Path, text: str, where: str, message: str
) -> None:
    from common.yamlfile import ContentError, load_yaml

    path = tmp_path / "file.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as raised:
        load_yaml(path)
    assert f"{path}:{where}: " in str(raised.value) and message in str(raised.value)


def test_a_file_that_cannot_be_loaded_at_all_keeps_the_last_good_version(content_copy: Path) -> None:
    content = LiveContent(content_copy)
    lexicon = content_copy.parent / "common" / "lexicons" / "control.yaml"
    lexicon.write_text("cancel: &x [*x]\n", encoding="utf-8")
    assert not content.reload_if_changed()
    assert content.last_error is not None and "control.yaml:1:9" in str(content.last_error)
    assert content.get().human_requests.detect("позовите оператора") is not None
    content.close()
