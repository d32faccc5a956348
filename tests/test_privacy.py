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
