"""The compiled-content cache: used only for the very files it was built from, never trusted blindly, and
the bot answers from it exactly as from freshly built content."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bench.golden import START, dialogs
from common.messages import IncomingMessage
from common.state import ConversationState
from common.yamlfile import ContentError
from dialogs import content, content_cache
from dialogs.content import DEFAULT_CONTENT_DIR, LiveContent
from dialogs.engine import Engine


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "cache"
    content_cache.configure(directory)
    try:
        yield directory
    finally:
        content_cache.configure(None)


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every directory content was built for (rather than read from the cache) from now on."""
    built: list[Path] = []
    load = content._load

    def counting(directory: Path, *args: object, **kwargs: object) -> content.Content:
        built.append(directory)
        return load(directory, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(content, "_load", counting)
    return built


def _started(directory: Path) -> LiveContent:
    live = LiveContent(directory)
    live.close()  # the watcher is not wanted here: tests reload by hand
    return live


def test_off_unless_configured(content_copy: Path, tmp_path: Path, builds: list[Path]) -> None:
    _started(content_copy)
    _started(content_copy)
    assert len(builds) == 2
    assert not list(tmp_path.rglob("*.pickle"))


def test_a_second_start_reads_the_cache(content_copy: Path, cache: Path, builds: list[Path]) -> None:
    first = _started(content_copy)
    second = _started(content_copy)
    assert builds == [content_copy]
    assert len(list(cache.glob("*.pickle"))) == 1
    assert second.get().guides.variants("greeting", "neutral") == first.get().guides.variants(
        "greeting", "neutral"
    )


def test_an_edited_file_makes_the_cache_stale(content_copy: Path, cache: Path, builds: list[Path]) -> None:
    _started(content_copy)
    guide = content_copy.parent / "common" / "guides" / "neutral.yaml"
    text = guide.read_text(encoding="utf-8")
    stat = guide.stat()
    edited = text.replace("Это помощник «{company}».", "Эта помощник «{company}».")
    assert edited != text and len(edited.encode()) == len(text.encode())
    guide.write_text(edited, encoding="utf-8")
    # Same size and time as before: only the bytes tell the edit, and they are what the key is made of.
    os.utime(guide, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    live = _started(content_copy)
    assert builds == [content_copy, content_copy]
    assert any("Эта помощник" in v for v in live.get().guides.variants("greeting", "neutral"))
    _started(content_copy)
    assert len(builds) == 2  # the new version was cached in its turn


@pytest.mark.parametrize("damage", ["garbage", "cut", "empty"])
def test_a_corrupt_cache_file_is_ignored_and_written_again(
    content_copy: Path, cache: Path, builds: list[Path], damage: str
) -> None:
    _started(content_copy)
    (path,) = cache.glob("*.pickle")
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(data[: len(content_cache.MAGIC) + 32] + b"\x80\x05not a pickle at all")
    elif damage == "cut":
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"")
    live = _started(content_copy)
    assert live.get().guides.has("greeting")
    assert len(builds) == 2
    assert path.read_bytes()[:100] == data[:100]
    _started(content_copy)
    assert len(builds) == 2


def test_a_cache_file_others_may_write_is_not_read(
    content_copy: Path, cache: Path, builds: list[Path]
) -> None:
    _started(content_copy)
    (path,) = cache.glob("*.pickle")
    path.chmod(0o666)
    _started(content_copy)
    assert len(builds) == 2


def test_live_reload_works_after_a_start_from_the_cache(content_copy: Path, cache: Path) -> None:
    _started(content_copy)
    live = _started(content_copy)
    guide = content_copy.parent / "common" / "guides" / "neutral.yaml"
    text = guide.read_text(encoding="utf-8")
    guide.write_text(text.replace("Это помощник «{company}».", "Это новый помощник «{company}»."), "utf-8")
    assert live.reload_if_changed()
    assert live.generation == 2 and live.last_error is None
    assert any("новый помощник" in v for v in live.get().guides.variants("greeting", "neutral"))
    # A broken edit is still refused with its place, the last good version serving.
    guide.write_text(text.replace("  greeting:\n", "  greeting: [unclosed\n", 1), encoding="utf-8")
    assert not live.reload_if_changed()
    assert live.last_error is not None and f"{guide}:" in str(live.last_error)
    assert live.get().guides.has("greeting")


def test_broken_yaml_is_reported_with_its_place_even_with_a_cache(content_copy: Path, cache: Path) -> None:
    _started(content_copy)
    guide = content_copy.parent / "common" / "guides" / "neutral.yaml"
    guide.write_text(
        guide.read_text(encoding="utf-8").replace("  greeting:\n", "  greeting: [unclosed\n", 1), "utf-8"
    )
    with pytest.raises(ContentError) as raised:
        LiveContent(content_copy)
    assert re.search(rf"{re.escape(str(guide))}:\d+:\d+: ", str(raised.value))
    assert len(list(cache.glob("*.pickle"))) == 1


def test_the_environment_names_the_directory() -> None:
    home = Path.home()
    assert content_cache.directory_from({}) == home / ".cache" / "tonebot"
    assert content_cache.directory_from({"XDG_CACHE_HOME": "/x"}) == Path("/x/tonebot")
    assert content_cache.directory_from({"TONEBOT_CACHE_DIR": "/y", "XDG_CACHE_HOME": "/x"}) == Path("/y")
    assert content_cache.directory_from({"TONEBOT_CACHE_DIR": "off"}) is None


def _transcripts(engine: Engine, count: int) -> list[str]:
    lines = []
    for index, (_key, texts) in enumerate(dialogs()):
        if index == count:
            break
        state = ConversationState()
        for step, text in enumerate(texts):
            at = START + timedelta(hours=index, seconds=step * 40)
            turn = engine.handle(
                state, IncomingMessage("golden", f"c{index}", f"c{index}", text, at, str(step))
            )
            replies = [[r.text, [[b.text, b.payload] for b in r.buttons]] for r in turn.replies]
            lines.append(json.dumps([replies, turn.explain], ensure_ascii=False, sort_keys=True, default=str))
    return lines


@pytest.mark.slow
def test_the_bot_answers_from_the_cache_exactly_as_from_built_content(
    cache: Path, builds: list[Path]
) -> None:
    built = _started(DEFAULT_CONTENT_DIR)
    cached = _started(DEFAULT_CONTENT_DIR)
    assert builds == [DEFAULT_CONTENT_DIR]
    assert _transcripts(Engine(cached), 400) == _transcripts(Engine(built), 400)
