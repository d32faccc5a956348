"""Personal data: masked in logs, exported and forgotten on request, deleted after the retention period."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.logmask import mask

PHONE, CONTRACT, EMAIL = "+7 913 123-45-67", "7654321", "ivan.petrov@mail.ru"
ADDRESS = "ул. Ленина, д. 15, кв. 42"


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("позвоните на +7 913 123-45-67", "позвоните на +7913***4567"),
        ("8(913)1234567", "8913***4567"),
        ("договор 7654321", "договор 76***21"),
        ("почта ivan.petrov@mail.ru", "почта i***@mail.ru"),
        ("живу ул. Ленина, д. 15, кв. 42 второй подъезд", "живу [адрес скрыт] второй подъезд"),
        ("Duration 35 ms, 2026 year", "Duration 35 ms, 2026 year"),
    ],
)
def test_mask(raw: str, masked: str) -> None:
    assert mask(raw) == masked


@pytest.mark.subprocess
def test_logs_of_a_full_dialog_hold_no_personal_data(tmp_path: Path) -> None:
    dialog = "\n".join(
        [
            "не работает интернет",
            f"договор {CONTRACT}",
            "все горят",
            "нет, не помогло",
            f"мой телефон {PHONE}, почта {EMAIL}, адрес {ADDRESS}",
            "хочу подключить интернет",
            ADDRESS,
            PHONE,
        ]
    )
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "-v", "chat", "--db", str(tmp_path / "p.db")],
        input=dialog + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    logs = result.stderr
    assert "heard" in logs, "the turn log (DEBUG) was written, so there was something to mask"
    for secret in (CONTRACT, "9131234567", "123-45-67", EMAIL, "Ленина, д. 15"):
        assert secret not in logs, f"{secret} in the logs"
    assert "+7913***4567" in logs and "76***21" in logs and "i***@mail.ru" in logs
    assert "[адрес скрыт]" in logs


CARD_DIALOG = [
    "у меня украли карту 4276 1600 9876 5432, cvv 123, деньги уходят",
    "номер карты 4276160098765432, срок 12/27",
    "код на обороте 321",
    "вот ещё раз: 4276-1600-9876-5432 cvc2 456",
]
CARD_SECRETS = ("4276160098765432", "4276 1600 9876 5432", "4276-1600-9876-5432", "42761600", "16009876")
CVV_SECRETS = ("cvv 123", "обороте 321", "cvc2 456")


def _digits_runs(text: str) -> list[str]:
    import re

    # Card-like runs of digits (not the fractions of stored timings: "0.0038779999").
    runs = re.findall(r"(?<![\d.])\d(?:[ \-]?\d){12,18}(?![\d.])", text)
    return ["".join(re.findall(r"\d", run)) for run in runs]


@pytest.mark.subprocess
def test_no_full_card_number_or_cvv_is_stored_logged_or_echoed(tmp_path: Path) -> None:
    import sqlite3

    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("DATABASE_URL", None)
    database = tmp_path / "cards.db"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--company", "bank", "-v", "chat", "--db", str(database)],
        input="\n".join(CARD_DIALOG) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "heard" in result.stderr, "the turn log (DEBUG) was written"
    replies, logs = result.stdout, result.stderr
    rows = []
    with sqlite3.connect(database) as db:
        tables = [name for (name,) in db.execute("select name from sqlite_master where type='table'")]
        for table in tables:
            rows += [repr(row) for row in db.execute(f'select * from "{table}"')]
    stored = "\n".join(rows)
    assert "••••5432" in stored, "the message was stored, with the card's last digits only"
    for place, text in (("stored rows", stored), ("logs", logs), ("replies", replies)):
        for secret in (*CARD_SECRETS, *CVV_SECRETS):
            assert secret not in text, f"{secret!r} in the {place}"
        assert not [run for run in _digits_runs(text) if len(run) >= 13], place
