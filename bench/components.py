"""CPU time per message of each engine component over the benchmark mix: where the engine's time goes.

python -m bench.components [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bench.engine import message_stream
from common.text import clean
from dialogs.content import LiveContent

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
# What a request that still needs every kind of detail would look for.
NEEDED = ("phone", "contract", "address", "callback_time", "email")


def _per_message_us(texts: list[str], work: Callable[[str], object], repeats: int = 3) -> float:
    """Best of `repeats` passes (after a warm one), CPU microseconds a text."""
    for text in texts:
        work(text)
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for text in texts:
            work(text)
        best = min(best, (time.process_time() - started) / len(texts) * 1e6)
    return round(best, 1)


def measure(count: int = 6000) -> dict[str, float]:
    """Microseconds a message for each component, keyed by component."""
    content = LiveContent().get()
    raw = [message.text for message in message_stream(count)]
    texts = [clean(text) for text in raw]
    return {
        "clean_us": _per_message_us(raw, clean),
        "judge_us": _per_message_us(texts, lambda t: content.personas.judge({}, "neutral", t, NOW)),
        "extract_us": _per_message_us(
            texts, lambda t: content.extractor.extract(t, NOW, asked=None, needed=NEEDED)
        ),
        "match_us": _per_message_us(texts, content.matcher.match),
        "detect_us": _per_message_us(texts, content.human_requests.detect),
        "control_us": _per_message_us(
            texts,
            lambda t: (
                content.control.is_cancel(t),
                content.control.is_yes(t),
                content.control.is_no(t),
                content.control.is_resolved(t),
            ),
        ),
    }


def main() -> None:
    """Print the table, or one JSON object with --json."""
    parser = argparse.ArgumentParser(description="CPU per message of each engine component")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<12}{value:>8}")


if __name__ == "__main__":
    main()
