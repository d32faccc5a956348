"""`tonebot` run as a real process, the way a user runs it, for the tests of its commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def tonebot(
    *args: str, stdin: str = "", cwd: Path | None = None, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m bot.cli ARGS` with UTF-8 output; on `url`'s database, else none from the environment."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("DATABASE_URL", None)
    if url is not None:
        env["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )
