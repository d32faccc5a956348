"""`tonebot chat` starts light: no migration machinery, messenger or web stack is imported for it, and a
start from the content cache answers exactly as one that built the content."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Runs the command, then names every module it imported (on stderr, after the chat's own output).
SCRIPT = (
    "import sys\nfrom bot.cli import main\ncode = main(sys.argv[1:])\n"
    "print('MODULES', ' '.join(sorted(sys.modules)), file=sys.stderr)\nsys.exit(code)"
)
NOT_FOR_CHAT = ("alembic", "mako", "aiogram", "telegram", "uvicorn", "fastapi", "starlette", "jinja2")
DIALOG = "не работает интернет, договор 1234567\n1\nпозовите оператора\nспасибо\n"


def _tonebot(cache: str, *args: str) -> tuple[str, set[str]]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "TONEBOT_CACHE_DIR": cache}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        input=DIALOG,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    modules = done.stderr.rpartition("MODULES ")[2].split()
    return done.stdout, {name.partition(".")[0] for name in modules}


@pytest.mark.subprocess
def test_chat_imports_only_what_it_uses_and_answers_alike_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    # The same conversation in three copies of one database at the schema's head, as after a first start.
    _tonebot(str(cache), "db", "upgrade", "--db", str(tmp_path / "empty.db"))
    for name in ("built", "cached", "uncached"):
        shutil.copy(tmp_path / "empty.db", tmp_path / f"{name}.db")
    built, _ = _tonebot(str(cache), "chat", "--db", str(tmp_path / "built.db"), "--explain")
    assert len(list(cache.glob("*.pickle"))) == 1
    cached, modules = _tonebot(str(cache), "chat", "--db", str(tmp_path / "cached.db"), "--explain")
    uncached, _ = _tonebot("off", "chat", "--db", str(tmp_path / "uncached.db"), "--explain")
    assert sorted(modules & set(NOT_FOR_CHAT)) == []
    assert cached == built == uncached
    assert built.count("\n") > 8
