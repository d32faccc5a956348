"""Several `tonebot worker` processes behind a round-robin proxy, fed by a Telegram Bot API stand-in.

Shared by the multi-worker tests and `python -m bench.workers`: real processes, a real PostgreSQL
database, real HTTP between them; nothing reaches the real Telegram.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from sqlalchemy import create_engine, text

from dialogs.content import copy_content
from tests.support.balancer import Balancer
from tests.support.botapi import BotApiStandin
from tests.support.webserver import always_open

SECRET = "cluster-secret-0123456789"


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def content_always_open(directory: Path) -> Path:
    """A copy of the shipped content whose teams work around the clock."""
    return always_open(copy_content(directory / "content"))


@dataclass
class Cluster:
    """Running workers, the proxy in front of them and the stand-in feeding it."""

    api: BotApiStandin
    balancer: Balancer
    database_url: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    def kill(self, index: int) -> None:
        """kill -9 one worker."""
        self.processes[index].send_signal(signal.SIGKILL)
        self.processes[index].wait(10)

    def counts(self) -> dict[str, int]:
        """Messages in the database: incoming handled/unhandled, outgoing by delivery state."""
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as connection:
                rows = connection.execute(
                    text(
                        "SELECT direction, handled, delivery, count(*) FROM messages "
                        "GROUP BY direction, handled, delivery"
                    )
                ).all()
        finally:
            engine.dispose()
        found: dict[str, int] = {}
        for direction, handled, delivery, count in rows:
            key = (
                f"in_{'handled' if handled else 'waiting'}"
                if direction == "in"
                else f"out_{delivery or 'inline'}"
            )
            found[key] = found.get(key, 0) + int(count)
        return found


async def _healthy(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession(trust_env=False) as client:
        while loop.time() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"worker on port {port} exited with {process.returncode}")
            try:
                async with client.get(f"http://127.0.0.1:{port}/healthz") as answer:
                    if answer.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"worker on port {port} did not start")


@asynccontextmanager
async def cluster(
    workers: int,
    database_url: str,
    work_dir: Path,
    *,
    stale_claim_s: float = 60.0,
    threads: int = 2,
    extra_args: Sequence[str] = (),
    webhook_connections: int = 40,
    workers_database_url: str | None = None,
) -> AsyncIterator[Cluster]:
    """Start the stand-in, `workers` worker processes and the proxy; stop them all afterwards.
    `workers_database_url`: the workers reach the database there instead (a counting proxy)."""
    content = content_always_open(work_dir)
    # Telegram posts up to max_connections (default 40) updates at once; one chat's in order.
    async with BotApiStandin(webhook_connections=webhook_connections) as api:
        ports = [free_port() for _ in range(workers)]
        env = {
            **os.environ,
            "DATABASE_URL": workers_database_url or database_url,
            "TELEGRAM_BOT_TOKEN": api.token,
            "TELEGRAM_API_BASE": api.base_url,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TONEBOT_CONTENT_DIR": str(content),
            "PYTHONIOENCODING": "utf-8",
        }
        processes = []
        logs = []
        for index, port in enumerate(ports):
            log = open(work_dir / f"worker{index}.log", "wb")  # noqa: SIM115  (closed below)
            logs.append(log)
            command = [
                sys.executable,
                "-m",
                "bot.cli",
                "worker",
                "--port",
                str(port),
                "--threads",
                str(threads),
            ]
            command += ["--stale-claim-s", str(stale_claim_s), *extra_args]
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        balancer = Balancer([f"http://127.0.0.1:{port}" for port in ports])
        try:
            await asyncio.gather(
                *(_healthy(port, process) for port, process in zip(ports, processes, strict=True))
            )
            url = await balancer.start()
            async with (
                aiohttp.ClientSession(trust_env=False) as client,
                client.post(
                    api.method_url("setWebhook"),
                    json={"url": f"{url}/telegram/webhook", "secret_token": SECRET},
                ) as answer,
            ):
                assert answer.status == 200, await answer.text()
            yield Cluster(api, balancer, database_url, processes, ports)
        finally:
            await balancer.stop()
            for process in processes:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
            for log in logs:
                log.close()
