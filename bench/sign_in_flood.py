"""What a flood of sign-in attempts costs the serving process: memory, and the web chat's speed meanwhile.

`tonebot web` runs over a fresh SQLite file (`--tree` serves another checkout, e.g. the code before);
`--attempts` wrong passwords for `--names` names are sent at once from `--addresses` loopback addresses
while a web-chat client keeps writing. Prints the server's resident memory before, at its high-water mark
and after, the answers' status codes, and the chat's median answer time alone and during the flood.
Run: `python -m bench.sign_in_flood [--attempts 400] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.body_limit import ROOT, web_server


def _chat_times(
    base: str, messages: int, pause_s: float, going: Callable[[], bool] = lambda: True
) -> list[float]:
    """Milliseconds per web-chat message, one client writing one message after another."""
    times: list[float] = []
    with httpx.Client(base_url=base, timeout=60) as http:
        http.get("/chat")
        for index in range(messages):
            if not going():
                break
            started = time.perf_counter()
            http.post(
                "/chat/api/messages",
                json={"id": f"c{index}-{time.time_ns()}", "text": "какой у меня тариф?"},
                headers={"X-Tonebot-Chat": "1"},
            )
            times.append((time.perf_counter() - started) * 1000)
            time.sleep(pause_s)
    return times


def _attempt(base: str, address: str, name: str, index: int) -> int:
    with httpx.Client(
        base_url=base, timeout=120, transport=httpx.HTTPTransport(local_address=address)
    ) as http:
        form = http.get("/console/login").text
        csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        response = http.post(
            "/console/login", data={"name": name, "password": f"guess-{index}", "csrf": csrf}
        )
        return response.status_code


def measure(tree: Path, attempts: int, addresses: int, names: int) -> dict[str, Any]:
    """Memory and chat speed around a flood of wrong sign-ins."""
    with web_server(tree) as server:
        base = f"http://127.0.0.1:{server.port}"
        _chat_times(base, 10, 0.0)  # warm: the conversation exists, the engine has run
        quiet = statistics.median(_chat_times(base, 20, 0.1))
        before = server.memory_mb()
        chat_during: list[float] = []
        flooding = True
        chatter = threading.Thread(
            target=lambda: chat_during.extend(_chat_times(base, 100_000, 0.1, lambda: flooding))
        )
        started = time.perf_counter()

        def call(n: int) -> int:
            address = f"127.0.{1 + n % addresses // 250}.{2 + n % addresses % 250}"
            return _attempt(base, address, f"user{n % names}", n)

        with ThreadPoolExecutor(attempts) as pool:
            futures = [pool.submit(call, n) for n in range(attempts)]
            chatter.start()
            statuses = Counter(f.result() for f in futures)
        flood_s = time.perf_counter() - started
        flooding = False
        chatter.join()
        time.sleep(2)
        return {
            "attempts": attempts,
            "addresses": addresses,
            "names": names,
            "statuses": dict(sorted(statuses.items())),
            "flood_s": round(flood_s, 1),
            "rss_mb_before": round(before),
            "rss_mb_peak": round(server.memory_mb("VmHWM")),
            "rss_mb_after": round(server.memory_mb()),
            "chat_ms_median_quiet": round(quiet, 1),
            "chat_ms_median_during": round(statistics.median(chat_during), 1),
            "chat_ms_max_during": round(max(chat_during), 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the tonebot source tree to serve")
    parser.add_argument("--attempts", type=int, default=400)
    parser.add_argument("--addresses", type=int, default=200, help="distinct client addresses (127.0.x.y)")
    parser.add_argument("--names", type=int, default=400, help="distinct names guessed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.tree.resolve(), args.attempts, args.addresses, args.names)
    if args.json:
        print(json.dumps(figures))
    else:
        for name, value in figures.items():
            print(f"{name:>24}: {value}")


if __name__ == "__main__":
    main()
