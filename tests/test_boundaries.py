"""Text from every channel is made safe once, at the door: undecodable bytes, NULs, huge numbers."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from sqlalchemy import text

from bot.telegram.inbound import from_message
from common.messages import IncomingMessage
from dialogs.engine import Engine
from dialogs.safetext import clean_json_body, clean_text
from dialogs.service import ConversationService
from storage import SqlStore, connect
from tests.support.webserver import always_open, serving, web_runtime
from web.webchat import visitor_id

ROOT = Path(__file__).resolve().parent.parent
FFFD = "\ufffd"


def test_clean_text_replaces_what_cannot_be_stored_and_keeps_every_other_character() -> None:
    assert clean_text("a\udcffb\ud800 nul\x00") == f"a{FFFD}b{FFFD} nul{FFFD}"
    kept = "Привет!\tстрока\r\nещё\u0085 😀 ₽ é \u200e \x1b[31m \x7f \x9b \ufffe"
    assert clean_text(kept) is kept


def test_a_json_body_with_a_lone_surrogate_is_read_as_text() -> None:
    body = b'{"id": "1", "text": "a\\ud800b \\u0000 \xff", "n": [1, "\\udc80"]}'
    assert json.loads(clean_json_body(body)) == {"id": "1", "text": f"a{FFFD}b {FFFD} {FFFD}", "n": [1, FFFD]}
    escaped = b'{"id": "1", "text": "\\u043f\\u0440\\u0438"}'
    assert json.loads(clean_json_body(escaped)) == {"id": "1", "text": "при"}
    # Bodies that need nothing, or are no JSON (for the caller's parser to refuse), come back as they were.
    for body in (b'{"text": "ok"}', b"{not json", b"\xff\xfe", b"[" * 100_000):
        assert clean_json_body(body) is body


# --- the terminal -----------------------------------------------------------------------------------------

LINES = [
    "хочу сменить тариф".encode(),
    b"\xff\xfe\xc3( \xd0",  # no UTF-8 at all
    "договор 1234567".encode(),
    b"7" * 5000,  # a button number? int() refuses over 4,300 digits
    "нет \x00 NUL и \x1b[31m".encode(),
    b"\xed\xa0\x80 a surrogate encoded",  # what UTF-8 forbids
    b"9" * 4301,
    "спасибо".encode(),
]


@pytest.mark.parametrize("stdin_encoding", ["utf-8:surrogateescape", "utf-8:strict"])
def test_the_terminal_chat_answers_every_line_whatever_bytes_it_reads(
    tmp_path: Path, stdin_encoding: str
) -> None:
    db = tmp_path / "chat.db"
    env = {**os.environ, "PYTHONIOENCODING": stdin_encoding}
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "chat", "--db", str(db), "--explain-json"],
        cwd=ROOT,
        input=b"\n".join(LINES) + b"\n",
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    explained = [line for line in done.stdout.decode().splitlines() if line.startswith("  · {")]
    assert len(explained) == len(LINES)
    with sqlite3.connect(db) as connection:
        stored = [row[0] for row in connection.execute("SELECT text FROM messages WHERE direction = 'in'")]
        raw = [row[0] for row in connection.execute("SELECT raw_json FROM messages WHERE direction = 'in'")]
    assert len(stored) == len(LINES)
    assert stored[1] == f"{FFFD}{FFFD}{FFFD}( {FFFD}"
    assert stored[4] == f"нет {FFFD} NUL и \x1b[31m"
    assert stored[3] == "7" * 5000 and stored[-1] == "спасибо"
    assert all(json.loads(line)["text"] == text for line, text in zip(raw, stored, strict=True))


# --- the web chat, served for real ------------------------------------------------------------------------


@pytest.fixture
def served(
    tmp_path: Path, content_copy: Path, database_url: str
) -> Iterator[tuple[httpx.Client, str, SqlStore]]:
    runtime = web_runtime(tmp_path, always_open(content_copy), database_url)
    with serving(runtime) as url, httpx.Client(base_url=url, timeout=10) as http:
        assert http.get("/chat").status_code == 200
        yield http, visitor_id(http.cookies["tonebot_visitor"]), runtime.store


def test_the_web_chat_keeps_a_message_with_a_lone_surrogate_a_nul_or_a_stray_byte(
    served: tuple[httpx.Client, str, SqlStore],
) -> None:
    http, chat_id, store = served
    bodies = [
        b'{"id": "s1", "text": "\\u0438\\u043d\\u0442\\u0435\\u0440\\u043d\\u0435\\u0442 \\ud800 '
        b'\\u043d\\u0435\\u0442"}',
        b'{"id": "s2", "text": "\\u0434\\u0430 \\u0000 \\udfff"}',
        '{"id": "s3", "text": "сломалось '.encode() + b'\xff\xfe"}',
    ]
    for body in bodies:
        response = http.post(
            "/chat/api/messages",
            content=body,
            headers={"X-Tonebot-Chat": "1", "Content-Type": "application/json"},
        )
        assert response.status_code == 202, response.text
    query = text(
        "SELECT m.text, m.raw_json FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        " WHERE c.chat_id = :chat AND m.direction = 'in' ORDER BY m.id"
    )
    with store.engine.connect() as connection:
        rows = connection.execute(query, {"chat": chat_id}).all()
    assert [row[0] for row in rows] == [
        f"интернет {FFFD} нет",
        f"да {FFFD} {FFFD}",
        f"сломалось {FFFD}{FFFD}",
    ]
    assert [json.loads(row[1])["text"] for row in rows] == [row[0] for row in rows]


# --- Telegram: the adapter's message through the service ------------------------------------------------


def telegram_message(text: str, number: int) -> IncomingMessage:
    update = SimpleNamespace(
        from_user=SimpleNamespace(id=77, is_bot=False),
        chat=SimpleNamespace(id=77),
        text=text,
        caption=None,
        contact=None,
        message_id=number,
        date=datetime.now(UTC),
    )
    message = from_message(update)
    assert message is not None
    return message


@pytest.mark.parametrize("way", ["handle", "accept"])
def test_a_telegram_message_with_a_lone_surrogate_or_a_nul_is_stored_clean(
    database_url: str, engine: Engine, way: str
) -> None:
    store = SqlStore(connect(database_url))
    service = ConversationService(engine, store)
    texts = ["нет интернета \udce2\udc82", "договор \x00 1234567", "спасибо"]
    for number, said in enumerate(texts, start=1):
        message = telegram_message(said, number)
        if way == "handle":
            assert service.handle(message).replies
        else:
            assert service.accept(message)
    if way == "accept":
        assert service.process_pending("telegram", "77") == len(texts)
    with store.engine.connect() as connection:
        query = text("SELECT text FROM messages WHERE direction = 'in' ORDER BY id")
        stored = [row[0] for row in connection.execute(query).all()]
    assert stored == [f"нет интернета {FFFD}{FFFD}", f"договор {FFFD} 1234567", "спасибо"]


def test_detail_finders_read_a_number_of_thousands_of_digits_without_failing(engine: Engine) -> None:
    # The engine reads the first 2,000 characters; the finders are also called directly (`tonebot eval`).
    extractor = engine.live.get().extractor
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    for said in ("7" * 5000, "9" * 4301, "Ленина " + "1" * 5000):
        for asked in (None, *extractor.specs):
            extractor.extract(said, now, asked=asked, needed=list(extractor.specs))
    assert extractor.extract("2", now, asked="tariff", needed=["tariff"]).found["tariff"].value
