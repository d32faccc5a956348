"""From saving a tone-guide file to the next reply that uses it, in a running engine."""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from common.messages import IncomingMessage
from common.state import ConversationState
from dialogs.content import LiveContent, copy_content
from dialogs.engine import Engine

GIVE_UP_S = 10.0


def _reply(engine: Engine, attempt: int) -> str:
    chat = f"reload-{attempt}-{time.perf_counter_ns()}"
    message = IncomingMessage("bench", chat, chat, "/start", datetime.now(UTC), "1")
    return " ".join(reply.text for reply in engine.handle(ConversationState(), message).replies)


def measure(times: int = 5) -> float:
    """Median milliseconds from writing a changed greeting to the first reply that carries it."""
    with tempfile.TemporaryDirectory() as directory:
        content = copy_content(Path(directory) / "content")
        guide = content.parent / "common" / "guides" / "neutral.yaml"
        engine = Engine(LiveContent(content))
        _reply(engine, -1)
        delays = []
        for attempt in range(times):
            marker = f"(версия {attempt})"
            data = yaml.safe_load(guide.read_text(encoding="utf-8"))
            data["moments"]["greeting"] = [f"Здравствуйте! Это {{company}}, чем помочь? {marker}"]
            text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
            time.sleep(0.05)  # a new modification time, as an editor's save an instant later would have
            saved = time.perf_counter()
            guide.write_text(text, encoding="utf-8")
            while marker not in _reply(engine, attempt):
                if time.perf_counter() - saved > GIVE_UP_S:
                    raise RuntimeError(f"the edited guide was not serving after {GIVE_UP_S} s")
                time.sleep(0.002)
            delays.append((time.perf_counter() - saved) * 1000)
        return round(statistics.median(delays), 1)


if __name__ == "__main__":
    print(f"reload_ms {measure()}")
