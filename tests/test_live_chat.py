"""A broken tone-guide edit while `tonebot chat` runs: reported with file and line, last good one serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Empty, Queue

import pytest

pytestmark = pytest.mark.subprocess


class ChatProcess:
    """`tonebot chat --explain` fed line by line; each turn ends with the explain line."""

    def __init__(self, content: Path, db: Path) -> None:
        env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.cli",
                "--content",
                str(content),
                "chat",
                "--db",
                str(db),
                "--explain-json",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: Queue[str] = Queue()
        self.errors: list[str] = []
        self.threads = [
            threading.Thread(target=self._pump, args=(self.process.stdout, self.lines), daemon=True),
            threading.Thread(target=self._collect_errors, daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _pump(stream: object, queue: Queue[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            queue.put(line.rstrip("\n"))

    def _collect_errors(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.errors.append(line)

    def say(self, text: str) -> tuple[list[str], dict[str, object]]:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        replies: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except Empty:
                continue
            if line.startswith("  · "):
                return replies, json.loads(line.removeprefix("  · "))
            replies.append(line)
        raise AssertionError(f"no reply to {text!r}; stderr: {''.join(self.errors)}")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        for thread in self.threads:
            thread.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def test_broken_guide_edit_during_a_running_chat_is_survived(content_copy: Path, tmp_path: Path) -> None:
    chat = ChatProcess(content_copy, tmp_path / "live.db")
    try:
        replies, _ = chat.say("/start")
        assert replies
        guide = content_copy.parent / "common" / "guides" / "neutral.yaml"
        good = guide.read_text(encoding="utf-8")
        broken = good.replace("  closing:\n", "  closing: [\n", 1)
        guide.write_text(broken, encoding="utf-8")
        time.sleep(1.2)
        replies, _ = chat.say("не работает интернет")
        assert replies and any("договор" in r.lower() for r in replies)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any("neutral.yaml:" in e for e in chat.errors):
            time.sleep(0.1)
        assert any(f"{guide}:" in e for e in chat.errors), chat.errors
        marker = "Это помощник, исправленный на лету"
        guide.write_text(
            good.replace("Это помощник «{company}».", marker + " «{company}».").replace(
                "Добрый день! Я бот поддержки «{company}».", marker + " «{company}»."
            ),
            encoding="utf-8",
        )
        time.sleep(1.2)
        replies, _ = chat.say("/start")
        assert any(marker in r for r in replies), replies
    finally:
        chat.close()
