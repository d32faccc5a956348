"""Card numbers, accounts, CVV codes and addresses never reach `-v` logs in the clear, and cards and CVV
codes never reach the database, whichever channel brings them: the terminal chat, the web chat and Telegram,
each a real `tonebot -v` process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bot.logmask import mask
from dialogs.details.card import luhn_valid
from tests.support.botapi import BotApiStandin

# Luhn-valid numbers in every grouping a client writes: 4/4/4/4 with spaces, none, 4/4/4/4/3 with dashes,
# dots, 4/6/5 (American Express) and 13 digits.
CARDS = (
    "4276 1600 9876 5432",
    "5486012877339108",
    "4276-3801-2345-6789-017",
    "6011.0009.9013.9424",
    "3714 496353 98431",
    "4276380123457",
)
ACCOUNTS = (
    "40817810099991234567",
    "40817 810 5 5555 0012345",
    "4070 2810 3000 0001 2345",
    "40817-810-2-3456-7654321",
)
CVVS = (
    "CVV 731",
    "cvc2: 8264",
    "CVV2 519",
    "код с обратной стороны 642",
    "три цифры на обороте 385",
)
# An address, and what of it must not be left readable once it is masked.
ADDRESSES = (
    ("г. Москва, Тверская 7-12", ("Тверская 7", "7-12")),
    ("Москва Тверская д 7 кв 12", ("Тверская д", "д 7", "кв 12")),
    ("Ленина 5-12", ("Ленина 5", "5-12")),
    ("пр-т Мира 10", ("Мира 10",)),
    ("мкр. Северный 3/1", ("Северный 3", "3/1")),
    ("ул. Гоголя, д. 15, кв. 42", ("Гоголя", "д. 15", "кв. 42")),
)
# One conversation each (more than 8 messages at once would meet the flood guard and go unread): the
# account and address dialogs make the bot take each value as a detail and repeat it in its replies.
DIALOGS = (
    tuple(f"номер карты {card}" for card in CARDS),
    (
        f"не работает интернет, договор {ACCOUNTS[0]}",
        f"счёт {ACCOUNTS[1]}",
        ACCOUNTS[2],
        f"лицевой счёт {ACCOUNTS[3]}",
    ),
    tuple(f"вот {code}" for code in CVVS),
    (
        f"переезжаю, новый адрес {ADDRESSES[0][0]}",
        f"не так, правильный адрес {ADDRESSES[1][0]}",
        *(address for address, _ in ADDRESSES[2:]),
    ),
)
MESSAGES = tuple(text for dialog in DIALOGS for text in dialog)
# A CVV cue still followed by its digits.
# The cue starts a word: random tokens stored in the database (salts, ids) may hold "cVc481" by chance.
CVV_LEFT = re.compile(r"(?i)(?<![0-9a-zа-яё_+/=$-])(?:cvv2?|cvc2?|сторон\w*|оборот\w*)\W{0,3}\d{3,4}")
SQLITE_FILES = ("", "-wal", "-shm")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _joined(text: str) -> str:
    """The text with single spaces, dashes and dots between digits removed: grouped numbers read whole."""
    return re.sub(r"(?<=\d)[ \u00a0.\-–](?=\d)", "", text)


def _leaks_of_a_number(number: str, text: str) -> list[str]:
    """Pieces of the number readable in the text: as sent, all its digits, or any 8 digits of it in a row
    (a mask that keeps 12 of 16 digits is no mask)."""
    digits, joined = _digits(number), _joined(text)
    windows = {digits[i : i + 8] for i in range(len(digits) - 7)}
    return [piece for piece in (number, digits, *sorted(windows)) if piece in text or piece in joined]


def _cvv_leaks(text: str) -> list[str]:
    return [code for code in CVVS if code in text] + CVV_LEFT.findall(text)


def _log_leaks(logs: str) -> list[str]:
    leaks = [piece for number in (*CARDS, *ACCOUNTS) for piece in _leaks_of_a_number(number, logs)]
    leaks += _cvv_leaks(logs)
    for address, parts in ADDRESSES:
        leaks += [piece for piece in (address, *parts) if piece in logs]
    return leaks


def _database_text(database: Path) -> str:
    """Every byte of the SQLite files, as text (JSON's \\u escapes read too, so no phrase hides in them)."""
    raw = b"".join(path.read_bytes() for name in SQLITE_FILES if (path := Path(f"{database}{name}")).exists())
    text = raw.decode("utf-8", errors="replace")
    return text + "\n" + re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m[1], 16)), text)


def _database_leaks(stored: str) -> list[str]:
    """Cards and CVV codes found in the database; accounts and addresses are details operators need."""
    return [piece for card in CARDS for piece in _leaks_of_a_number(card, stored)] + _cvv_leaks(stored)


def _check(logs: str, stored: str) -> None:
    """The logs hold no card, account, CVV or address; the stored bytes no card or CVV."""
    assert logs.count(" heard ") == len(MESSAGES), "each message was logged at DEBUG: there was work to mask"
    assert not (leaks := _log_leaks(logs)), f"readable in the logs: {leaks}"
    assert not (leaks := _database_leaks(stored)), f"stored: {leaks}"
    assert "[карта ••••" in logs and "[код CVV скрыт]" in logs and "[адрес скрыт]" in logs
    # The engine took the values as details and its replies repeated them: those copies were masked too.
    assert "'new_address': '[адрес скрыт]'" in logs and "'contract': '40***21'" in logs
    assert "••••5432" in stored, "the card message was stored, with its last four digits only"


def _environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", **extra}
    for name in (
        "DATABASE_URL",
        "TELEGRAM_BOT_TOKEN",
        "TELEGRAM_API_BASE",
        "TONEBOT_CONTENT_DIR",
        "TONEBOT_COMPANY",
    ):
        if name not in extra:
            env.pop(name, None)
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _tonebot(
    args: list[str], directory: Path, env: dict[str, str], stop: int
) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    """A `tonebot` process writing to files (a `-v` log would fill a pipe nobody reads); stopped by `stop`."""
    out, err = directory / "stdout.txt", directory / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", *args], cwd=directory, env=env, stdout=stdout, stderr=stderr
        )
        try:
            yield process, out, err
        finally:
            process.send_signal(stop)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
    assert "Traceback" not in err.read_text(encoding="utf-8")


def _wait_for(condition: str, path: Path, count: int = 1) -> None:
    deadline = time.monotonic() + 90
    while path.read_text(encoding="utf-8").count(condition) < count:
        assert time.monotonic() < deadline, f"{condition!r} x{count} not in {path}"
        time.sleep(0.1)


# --- mask() on its own ------------------------------------------------------------------------------------


def test_the_cards_are_luhn_valid() -> None:
    assert all(luhn_valid(_digits(card)) for card in CARDS)


@pytest.mark.parametrize("card", CARDS)
def test_a_card_in_any_grouping_keeps_only_its_last_four_digits(card: str) -> None:
    masked = mask(f"карта {card}, спишите")
    assert masked == f"карта [карта ••••{_digits(card)[-4:]}], спишите"


@pytest.mark.parametrize("account", ACCOUNTS)
def test_an_account_in_any_grouping_is_masked_whole(account: str) -> None:
    digits = _digits(account)
    assert mask(f"счёт {account} открыт") == f"счёт {digits[:2]}***{digits[-2:]} открыт"


@pytest.mark.parametrize("code", CVVS)
def test_a_cvv_in_any_form_is_removed(code: str) -> None:
    masked = mask(f"вот {code}, всё")
    assert masked.endswith("[код CVV скрыт], всё") and _digits(code)[-3:] not in masked


@pytest.mark.parametrize(("address", "parts"), ADDRESSES)
def test_an_address_in_any_form_leaves_no_house_or_flat(address: str, parts: tuple[str, ...]) -> None:
    masked = mask(f"живу: {address}. Когда приедете?")
    assert masked == "живу: [адрес скрыт]. Когда приедете?"
    assert not [part for part in parts if part in masked]


def test_an_address_the_engine_recognised_is_masked_wherever_the_record_repeats_it() -> None:
    record = "heard 'Заречная 9', details {'address': 'Заречная 9'}, replied ['Записал адрес: Заречная 9.']"
    assert "Заречная 9" not in mask(record) and mask(record).count("[адрес скрыт]") == 3


def test_a_number_after_an_escaped_line_break_is_masked() -> None:
    assert mask(r"heard 'договор\n7654321'") == r"heard 'договор\n76***21'"


@pytest.mark.parametrize(
    "sentence",
    [
        "встреча 12.05.2024 в 10:30, оплатил 1500 руб",
        "жду уже 3-4 дня, звоните с 9-18",
        "тариф Турбо 100, скорость 500 Мбит/с, Windows 10",
        "переезд 15 декабря, пинг 35 ms",
        "took 0.0038779999123456 s, decided in 123 ms",
        "код из смс 1234 не пришёл",
        "Duration 35 ms, 2026 year",
    ],
)
def test_ordinary_sentences_stay_readable(sentence: str) -> None:
    assert mask(sentence) == sentence


# --- every channel, a real `tonebot -v` process ------------------------------------------------------------


@pytest.mark.subprocess
def test_the_terminal_chat(tmp_path: Path) -> None:
    # One process per dialog (the terminal chat is one conversation), all at once.
    runs = [
        (
            tmp_path / f"chat{number}.db",
            subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "-v", "chat", "--db", str(tmp_path / f"chat{number}.db")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                cwd=tmp_path,
                env=_environment(),
            ),
        )
        for number in range(len(DIALOGS))
    ]
    logs, stored = [], []
    for (database, process), dialog in zip(runs, DIALOGS, strict=True):
        _, errors = process.communicate("\n".join(dialog) + "\n", timeout=180)
        assert process.returncode == 0, errors[-3000:]
        logs.append(errors)
        stored.append(_database_text(database))
    _check("\n".join(logs), "\n".join(stored))


@pytest.mark.subprocess
def test_the_web_chat(tmp_path: Path) -> None:
    port = _free_port()
    database = tmp_path / "tonebot.db"
    demo = ["-v", "demo", "--port", str(port)]
    with _tonebot(demo, tmp_path, _environment(), signal.SIGINT) as (_, out, err):
        _wait_for("Press Ctrl+C", out)
        for number, dialog in enumerate(DIALOGS):
            # A visitor of their own for each dialog: the page gives each client its cookie.
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
                assert http.get("/chat").status_code == 200
                for index, text in enumerate(dialog):
                    body = {"id": f"d{number}m{index}", "text": text}
                    sent = http.post("/chat/api/messages", json=body, headers={"X-Tonebot-Chat": "1"})
                    assert sent.status_code == 202, sent.text
        _wait_for(" heard ", err, len(MESSAGES))
        while_running = _database_text(database)
    _check(err.read_text(encoding="utf-8"), while_running + _database_text(database))


@pytest.mark.subprocess
def test_telegram(tmp_path: Path) -> None:
    asyncio.run(_telegram(tmp_path))


async def _telegram(tmp_path: Path) -> None:
    database = tmp_path / "telegram.db"
    async with BotApiStandin() as api:
        env = _environment(
            TELEGRAM_BOT_TOKEN=api.token, TELEGRAM_API_BASE=api.base_url, DATABASE_URL=f"sqlite:///{database}"
        )
        with _tonebot(["-v", "run", "telegram"], tmp_path, env, signal.SIGTERM) as (process, _, err):
            # A chat for each dialog; one chat's messages are handled in order.
            for number, dialog in enumerate(DIALOGS):
                for text in dialog:
                    api.add_message(7000 + number, text)
            deadline = time.monotonic() + 90
            while err.read_text(encoding="utf-8").count(" heard ") < len(MESSAGES):
                assert time.monotonic() < deadline, err.read_text(encoding="utf-8")[-3000:]
                await asyncio.sleep(0.1)
            while_running = _database_text(database)
            # Stopped here, with the stand-in still answering while the bot closes its session.
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 30)
        assert api.sent(7000, "sendMessage"), "the bot answered in Telegram"
    _check(err.read_text(encoding="utf-8"), while_running + _database_text(database))
