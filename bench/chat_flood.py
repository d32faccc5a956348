"""The operators' queue after a flood of made-up web-chat visitors, and the web process with many idle
chat streams open.

Flood: 200 visitors with made-up cookies, all from one address, ask for a person; we count the waiting
handoffs. Streams: N idle chat streams (10 per address, from 127.0.0.x addresses) stay open; we take the
server's CPU use and the latency of chat messages from other visitors. The server is `tonebot web` in its
own process (`--tree DIR` serves another version). Run: `python -m bench.chat_flood [--tree DIR]
[--visitors 200] [--streams 300] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import sqlite3
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.body_limit import ROOT, Server, web_server

HEADERS = {"X-Tonebot-Chat": "1"}
IDLE_WINDOW_S = 10.0
STREAMS_PER_ADDRESS = 10
PROBES = 50


def post(port: int, address: str, text: str, message_id: str = "m1") -> tuple[int, float]:
    """One message from a new made-up visitor at `address`: the status and the milliseconds it took."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", transport=transport, timeout=30) as http:
        http.cookies.set("tonebot_visitor", secrets.token_urlsafe(18))
        started = time.perf_counter()
        response = http.post("/chat/api/messages", json={"id": message_id, "text": text}, headers=HEADERS)
        return response.status_code, (time.perf_counter() - started) * 1000


def waiting(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("select count(*) from handoffs where status = 'waiting'").fetchone()[0])


def flood(server: Server, visitors: int) -> dict[str, float]:
    """`visitors` made-up visitors from 127.0.0.1 ask for a person, 20 at a time."""
    started = time.perf_counter()
    with ThreadPoolExecutor(20) as pool:
        results = list(
            pool.map(lambda _n: post(server.port, "127.0.0.1", "позовите оператора"), range(visitors))
        )
    statuses = [status for status, _ms in results]
    return {
        "visitors": visitors,
        "seconds": round(time.perf_counter() - started, 2),
        "accepted_202": statuses.count(202),
        "refused_429": statuses.count(429),
        "waiting_handoffs": waiting(server.database),
    }


def open_streams(port: int, count: int) -> list[socket.socket]:
    """`count` idle chat streams of made-up visitors, 10 per 127.0.0.x address."""
    opened = []
    for n in range(count):
        sock = socket.socket()
        sock.bind((f"127.0.10.{1 + n // STREAMS_PER_ADDRESS}", 0))  # up to 2,540 streams
        sock.connect(("127.0.0.1", port))
        sock.sendall(
            f"GET /chat/api/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Cookie: tonebot_visitor={secrets.token_urlsafe(18)}\r\n\r\n".encode()
        )
        opened.append(sock)
    for sock in opened:
        sock.settimeout(10)
        head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head[:100]
    return opened


def idle(server: Server, streams: int) -> dict[str, float]:
    """CPU use over a quiet window and chat latency while `streams` idle streams are open."""
    opened = open_streams(server.port, streams)
    try:
        time.sleep(2.0)
        cpu = server.cpu_s()
        time.sleep(IDLE_WINDOW_S)
        cpu_share = (server.cpu_s() - cpu) / IDLE_WINDOW_S
        post(server.port, "127.0.199.1", "здравствуйте")  # warm-up, not counted
        probes = [f"127.0.200.{n + 1}" for n in range(PROBES)]
        latencies = [post(server.port, address, "как оплатить интернет?")[1] for address in probes]
    finally:
        for sock in opened:
            sock.close()
    return {
        "streams": streams,
        "server_cpu_while_idle_pct": round(cpu_share * 100, 1),
        "chat_post_p50_ms": round(statistics.median(latencies), 1),
        "chat_post_max_ms": round(max(latencies), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the tonebot source tree to serve")
    parser.add_argument("--visitors", type=int, default=200)
    parser.add_argument("--streams", type=int, nargs="+", default=[0, 300])
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    args = parser.parse_args()
    tree = args.tree.resolve()
    figures: dict[str, dict[str, float]] = {}
    with web_server(tree) as server:
        figures["flood"] = flood(server, args.visitors)
    for count in args.streams:
        with web_server(tree) as server:
            figures[f"streams_{count}"] = idle(server, count)
    print(f"tree: {tree}")
    for name, result in figures.items():
        print(f"{name:12} " + "  ".join(f"{key}={value}" for key, value in result.items()))
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
