"""`tonebot bench` runs end to end and reports every figure the Benchmarks issue asks for.

Only the shape of the report is checked: timings are never asserted in tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.suite import TARGETS, Target, table

ROOT = Path(__file__).resolve().parent.parent
ASKED = [
    "engine_msgs_per_s",
    "engine_p50_us",
    "engine_p95_us",
    "engine_p99_us",
    "engine_nopersist_msgs_per_s",
    "rss_mb_1k",
    "rss_mb_10k",
    "e2e_msgs_per_s",
    "e2e_p99_ms",
    "echo_msgs_per_s",
    "e2e_vs_echo",
    *(f"e2e_{name}_{figure}" for name in ("vk", "max", "whatsapp") for figure in ("msgs_per_s", "vs_echo")),
    *(f"e2e_{name}_echo_msgs_per_s" for name in ("vk", "max", "whatsapp")),
    "reload_ms",
    "cold_start_ms",
    "missed_call_p95_s",
    *(f"campaign_{figure}" for figure in ("seconds", "follow_ups")),
    *(f"campaign_{name}_msgs_per_s" for name in ("telegram", "vk")),
    "campaign_telegram_max_per_s",
    "campaign_vk_max_calls_per_s",
    "analytics_dashboard_s",
]


@pytest.mark.slow
@pytest.mark.subprocess
def test_tonebot_bench_quick_prints_a_table_and_every_figure_as_json() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("tonebot")), "bench", "--quick", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    figures = json.loads(lines[-1])
    assert set(ASKED) <= set(figures)
    assert all(isinstance(figures[key], int | float) and figures[key] > 0 for key in ASKED)
    assert any(line.startswith("engine_p50_us") and "<= 250" in line for line in lines)


def test_the_table_says_which_targets_are_met() -> None:
    lines = table({"engine_p50_us": 120.0, "e2e_vs_echo": 0.5, "cold_start_ms": 900.0}).splitlines()
    assert "met" in lines[2] and "MISSED" in lines[3] and lines[4].rstrip().endswith("900")
    assert Target(1000, at_most=True).met(999) and not Target(0.8, at_most=False).met(0.79)
    assert set(TARGETS) <= set(ASKED)
