"""YAML anchors and aliases are refused in content before anything expands: loader, lint and live reload."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common import yamlfile
from common.yamlfile import ContentError, load_yaml
from dialogs.content import LiveContent

ROOT = Path(__file__).resolve().parent.parent


def bomb(levels: int, width: int = 9) -> str:
    """Rows of anchors, each row `width` aliases of the row before: width**levels values once expanded."""
    rows = [f"bomb0: &b0 [{', '.join(['lol'] * width)}]"]
    rows += [f"bomb{n}: &b{n} [{', '.join([f'*b{n - 1}'] * width)}]" for n in range(1, levels)]
    return "\n".join(rows) + "\n"


@pytest.fixture(params=["fast", "pure"])
def parser(request: pytest.FixtureRequest) -> Iterator[str]:
    """Both of the loader's parsers: libyaml's (when compiled in) and PyYAML's."""
    kept = yamlfile._FastLoader
    if request.param == "pure":
        yamlfile._FastLoader = None
    yield str(request.param)
    yamlfile._FastLoader = kept


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("a: 1\n" + bomb(4), "2:8", "YAML anchors (&b0) are not allowed in content; delete '&b0'"),
        ("a: x\nb: *x\n", "2:4", "YAML aliases (*x) are not allowed in content; write the text out"),
        ("base: &b {x: 1}\nc:\n  <<: *b\n", "1:7", "YAML anchors (&b) are not allowed"),
        ("a: &x [*x]\n", "1:4", "YAML anchors (&x) are not allowed"),
        ("- &only text\n", "1:3", "YAML anchors (&only) are not allowed"),
    ],
)
def test_the_loader_refuses_anchors_and_aliases_where_they_are(
    tmp_path: Path, parser: str, text: str, where: str, message: str
) -> None:
    path = tmp_path / "guide.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as raised:
        load_yaml(path)
    assert len(raised.value.issues) == 1
    assert str(raised.value).startswith(f"{path}:{where}: {message}")


def test_an_ampersand_or_an_asterisk_in_text_is_still_text(tmp_path: Path, parser: str) -> None:
    path = tmp_path / "guide.yaml"
    path.write_text('a: "AT&T, карта *{card_last4}"\nb: [R&D, "*5432"]\nc: Q & A *\n', encoding="utf-8")
    assert load_yaml(path) == {"a": "AT&T, карта *{card_last4}", "b": ["R&D", "*5432"], "c": "Q & A *"}


def test_guides_lint_names_the_bomb_and_how_to_fix_it(content_copy: Path) -> None:
    guide = content_copy.parent / "common" / "guides" / "neutral.yaml"
    lines = guide.read_text(encoding="utf-8").count("\n")
    guide.write_text(guide.read_text(encoding="utf-8") + bomb(9), encoding="utf-8")
    # The timeout only keeps a regression from hanging the suite: a refused bomb takes well under a second.
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "guides", "lint", str(content_copy)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    first = f"{guide}:{lines + 1}:8: YAML anchors (&b0) are not allowed in content"
    assert done.stdout.splitlines() == [
        f"{first}; delete '&b0' and write the text out in full wherever it is repeated",
        "1 error(s)",
    ]


def test_a_bomb_saved_live_is_refused_and_the_next_good_edit_serves(content_copy: Path) -> None:
    content = LiveContent(content_copy)
    guide = content_copy.parent / "common" / "guides" / "neutral.yaml"
    good = guide.read_text(encoding="utf-8")
    guide.write_text(good + bomb(5), encoding="utf-8")
    deadline = time.monotonic() + 10
    while content.last_error is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert content.last_error is not None
    assert [str(issue).split(": ", 1)[1][:40] for issue in content.last_error.issues] == [
        "YAML anchors (&b0) are not allowed in co"
    ]
    assert content.generation == 1 and content.get().guides.has("greeting")
    time.sleep(0.05)  # a later save: a new modification time
    guide.write_text(good.replace("Это помощник «{company}».", "Это помощник «{company}», снова."), "utf-8")
    deadline = time.monotonic() + 10
    while content.generation == 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert content.generation == 2 and content.last_error is None
    assert any("снова" in v for v in content.get().guides.variants("greeting", "neutral"))
    content.close()
