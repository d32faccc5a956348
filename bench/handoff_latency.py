"""From a client's handoff to the operator's queue showing it, measured in a real headless Chromium.

An operator's queue page is open (live updates over server-sent events); clients ask for a person in the
web chat one after another; each time we measure from sending the request until the new row is in the
operator's page. Run: `python -m bench.handoff_latency [--handoffs 30] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from bench.cluster import content_always_open
from operators.passwords import hash_password
from storage.database import sqlite_url
from web.app import create_app
from web.background import serving_in_thread
from web.limits import ChatLimits
from wiring.runtime import build_runtime
from wiring.settings import Settings

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync"]


def measure(handoffs: int, chromium: str) -> dict[str, float]:
    """Milliseconds from a client's request for a person to the row in the operator's open queue page."""
    work = Path(tempfile.mkdtemp(prefix="tonebot-latency-"))
    content = content_always_open(work)
    runtime = build_runtime(Settings(sqlite_url(str(work / "latency.db")), content))
    runtime.desk_store.add_operator(
        "anna", hash_password("bench-password"), "Анна", "operator", datetime.now(UTC)
    )
    totals, posts = [], []
    try:
        # Every client here comes from 127.0.0.1: lift the budget of new chats per address for them.
        app = create_app(runtime, chat_limits=ChatLimits(new_chats=handoffs + 1))
        with serving_in_thread(app) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page()
            page.goto(f"{base}/console/login")
            page.fill("input[name=name]", "anna")
            page.fill("input[name=password]", "bench-password")
            page.click("button[type=submit]")
            page.wait_for_selector("#queue-rows")
            page.wait_for_timeout(500)  # the event stream is open
            for index in range(handoffs):
                client = httpx.Client(base_url=base)
                client.get("/chat")
                started = time.perf_counter()
                response = client.post(
                    "/chat/api/messages",
                    json={"id": f"m{index}", "text": "позовите оператора, пожалуйста"},
                    headers={"X-Tonebot-Chat": "1"},
                )
                posted = time.perf_counter()
                response.raise_for_status()
                page.wait_for_function(
                    "n => document.querySelectorAll('#queue-rows tr.item').length >= n",
                    arg=index + 1,
                    polling="raf",
                )
                shown = time.perf_counter()
                totals.append((shown - started) * 1000)
                posts.append((posted - started) * 1000)
                client.close()
            browser.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    totals.sort()
    return {
        "handoffs": handoffs,
        "handoff_to_queue_p50_ms": round(statistics.median(totals), 1),
        "handoff_to_queue_p95_ms": round(totals[max(0, int(len(totals) * 0.95) - 1)], 1),
        "handoff_to_queue_max_ms": round(totals[-1], 1),
        "client_post_p50_ms": round(statistics.median(posts), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--handoffs", type=int, default=30)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = parser.parse_args()
    figures = measure(args.handoffs, args.chromium)
    for key, value in figures.items():
        print(f"{key:28} {value}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
