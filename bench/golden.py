"""Golden replay: every conversation of the labelled sets through the full service path (SQLite), each
conversation's transcript reduced to a digest, compared with the digests recorded before.

A refactoring or a speed change must leave every reply, button, persona and hand-off as it was; a content
edit that changes replies on purpose is followed by `record`. `check --show N` names the transcripts that
differ and `show --key K` prints one (run it in an older checkout to see what it was).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
GOLDEN = DATA / "golden_replay.json"
COMPANIES = ("provider", "bank")
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _texts(row: dict[str, object]) -> list[str]:
    if "messages" in row:
        return [m["text"] if isinstance(m, dict) else str(m) for m in row["messages"]]  # type: ignore[attr-defined]
    return [str(row["text"])]


def dialogs() -> Iterator[tuple[str, list[str]]]:
    """(key, client messages) for every row of every labelled set, in a fixed order."""
    for path in sorted(DATA.glob("*.jsonl")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if line.strip():
                yield f"{path.stem}:{number}", _texts(json.loads(line))


def transcripts(company: str) -> dict[str, list[object]]:
    """Each dialog's transcript for a company: per turn the replies (text, buttons), persona, handed-off."""
    from common.messages import IncomingMessage
    from dialogs.content import CONTENT_ROOT, LiveContent
    from dialogs.engine import Engine
    from dialogs.service import ConversationService
    from storage import SqlStore, connect
    from storage.database import sqlite_url

    query = text("SELECT persona, status FROM conversations WHERE chat_id = :chat ORDER BY id DESC LIMIT 1")

    engine = Engine(LiveContent(CONTENT_ROOT / company))
    result: dict[str, list[object]] = {}
    with tempfile.TemporaryDirectory() as directory:
        store = SqlStore(connect(sqlite_url(f"{directory}/golden.db")))
        service = ConversationService(engine, store)
        for index, (key, client_texts) in enumerate(dialogs()):
            chat = f"g{index}"
            transcript: list[object] = []
            for step, said in enumerate(client_texts):
                at = START + timedelta(hours=index, seconds=step * 40)
                turn = service.handle(IncomingMessage("golden", chat, chat, said, at, str(step)))
                replies = [[r.text, [[b.text, b.payload] for b in r.buttons]] for r in turn.replies]
                with store.engine.connect() as connection:
                    persona, status = connection.execute(query, {"chat": chat}).one()
                transcript.append([replies, persona, status])
            result[key] = transcript
        store.engine.dispose()
    return result


def digests() -> dict[str, str]:
    """`company/key` → a short digest of that transcript."""
    found: dict[str, str] = {}
    for company in COMPANIES:
        for key, transcript in transcripts(company).items():
            raw = json.dumps(transcript, ensure_ascii=False, sort_keys=True).encode()
            found[f"{company}/{key}"] = hashlib.sha256(raw).hexdigest()[:16]
    return found


def differences(recorded: dict[str, str], now: dict[str, str]) -> list[str]:
    """Keys whose transcript changed, appeared or disappeared."""
    return sorted(k for k in recorded.keys() | now.keys() if recorded.get(k) != now.get(k))


def main() -> None:
    """`python -m bench.golden record|check [--show N]|show --key K`."""
    parser = argparse.ArgumentParser(description="golden replay of every labelled conversation")
    parser.add_argument("action", choices=("record", "check", "show"))
    parser.add_argument("--show", type=int, default=0, help="print up to N changed transcripts")
    parser.add_argument("--key", action="append", default=[], help="show: company/set:row to print")
    args = parser.parse_args()
    if args.action == "show":
        for company in COMPANIES:
            for key, transcript in transcripts(company).items():
                if f"{company}/{key}" in args.key:
                    print(f"{company}/{key}: {json.dumps(transcript, ensure_ascii=False, indent=1)}")
        return
    now = digests()
    if args.action == "record":
        GOLDEN.write_text(json.dumps(now, indent=0, sort_keys=True) + "\n", encoding="utf-8")
        print(f"recorded {len(now)} transcripts in {GOLDEN.relative_to(ROOT)}")
        return
    changed = differences(json.loads(GOLDEN.read_text(encoding="utf-8")), now)
    print(f"{len(now)} transcripts, {len(changed)} changed")
    for key in changed[: args.show]:
        print(key)
    raise SystemExit(1 if changed else 0)


if __name__ == "__main__":
    main()
