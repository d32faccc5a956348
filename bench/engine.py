"""Engine speed: a realistic mix of client messages through the full engine path.

The mix comes from the labelled sets in tests/data (every persona, details given and corrected, handoffs,
small talk), replayed as many concurrent conversations. Both runs start after one pass over every
dialog of the mix, so the word caches are warm as in a bot that has been running.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common.messages import IncomingMessage
from common.state import ConversationState
from dialogs.content import LiveContent
from dialogs.engine import Engine
from dialogs.service import ConversationService
from storage import SqlStore, connect
from storage.database import sqlite_url

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"


def conversations() -> list[list[str]]:
    """Client-side conversations from the labelled sets."""
    result: list[list[str]] = []
    for name in ("personas_dev.jsonl", "handoff_dev.jsonl"):
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            result.append([m["text"] if isinstance(m, dict) else str(m) for m in row["messages"]])
    for line in (DATA / "details_dev.jsonl").read_text(encoding="utf-8").splitlines():
        result.append(["перезвоните мне", json.loads(line)["text"], "ой, номер другой: 8 913 000 11 22"])
    return result


def _dialog_messages() -> list[str]:
    return [text for dialog in conversations() for text in dialog]


def message_stream(count: int) -> list[IncomingMessage]:
    """`count` messages, interleaving many conversations as a busy channel would."""
    dialogs = conversations()
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    messages: list[IncomingMessage] = []
    round_number = 0
    while len(messages) < count:
        for index, dialog in enumerate(dialogs):
            chat = f"{round_number}-{index}"
            for step, text in enumerate(dialog):
                at = start + timedelta(seconds=round_number * 3600 + step * 20)
                messages.append(IncomingMessage("bench", chat, chat, text, at, str(step)))
        round_number += 1
    # Order by time so conversations interleave.
    messages.sort(key=lambda m: m.at)
    return messages[:count]


@dataclass(frozen=True, slots=True)
class Timing:
    """Throughput and latency percentiles of one run."""

    msgs_per_s: float
    p50_us: float
    p95_us: float
    p99_us: float


def _timing(latencies_ns: list[int], elapsed_s: float) -> Timing:
    ordered = sorted(latencies_ns)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000, 1)

    return Timing(round(len(ordered) / elapsed_s, 1), pick(0.5), pick(0.95), pick(0.99))


def run_engine(count: int, *, persist: bool) -> Timing:
    """Messages through the service with SQLite (persist) or through the engine with in-memory states."""
    messages = message_stream(count)
    engine = Engine(LiveContent())
    with tempfile.TemporaryDirectory() as directory:
        service = ConversationService(engine, SqlStore(connect(sqlite_url(f"{directory}/bench.db"))))
        states: dict[str, ConversationState] = {}
        # Steady state: every dialog of the mix once, so word caches (lemmas, rude words, lexicon
        # lookups) hold the mix's vocabulary as they do in a bot that has run for a while; both runs
        # are measured warm.
        warm_up: dict[str, ConversationState] = {}
        for message in message_stream(len(_dialog_messages())):
            engine.handle(warm_up.setdefault(message.chat_id, ConversationState()), message)
        latencies: list[int] = []
        started = time.perf_counter()
        for message in messages:
            before = time.perf_counter_ns()
            if persist:
                service.handle(message)
            else:
                engine.handle(states.setdefault(message.chat_id, ConversationState()), message)
            latencies.append(time.perf_counter_ns() - before)
        elapsed = time.perf_counter() - started
    return _timing(latencies, elapsed)


def rss_mb() -> float:
    """Resident memory of this process now, in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main() -> None:
    """`python -m bench.engine [--messages N] [--json]`: engine speed with and without SQLite."""
    import argparse

    parser = argparse.ArgumentParser(description="engine speed and memory")
    parser.add_argument("--messages", type=int, default=6000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    persisted = run_engine(args.messages, persist=True)
    in_memory = run_engine(args.messages, persist=False)
    result = {
        "engine_msgs_per_s": persisted.msgs_per_s,
        "engine_p50_us": persisted.p50_us,
        "engine_p95_us": persisted.p95_us,
        "engine_p99_us": persisted.p99_us,
        "engine_nopersist_msgs_per_s": in_memory.msgs_per_s,
        "engine_nopersist_p50_us": in_memory.p50_us,
        "engine_nopersist_p99_us": in_memory.p99_us,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<28}{value}")


if __name__ == "__main__":
    main()
