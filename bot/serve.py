"""Serving the web app (console and web chat), and Telegram beside it in the same process when configured."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator

import uvicorn

from bot.telegram.runner import TelegramSettings, run_polling
from web.app import create_app
from wiring.runtime import Runtime

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOP_WAIT_S = 5.0


class _Server(uvicorn.Server):
    """uvicorn's server, except that a stop signal ends `serve()` normally once the graceful shutdown is
    done; uvicorn raises the signal again then, which kills the process by SIGTERM (exit code -15)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


async def serve(
    runtime: Runtime,
    host: str,
    port: int,
    telegram: TelegramSettings | None = None,
    *,
    on_ready: Callable[[str], None] = lambda _url: None,
    secure_cookies: bool = False,
) -> None:
    """Run until interrupted; `on_ready` gets the base URL once the port is listening."""
    app = create_app(runtime, secure_cookies=secure_cookies)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        # Records go to the root logger, whose set-up masks personal data.
        log_config=None,
        # Live pages hold streams open; waiting for them would make Ctrl+C slow.
        timeout_graceful_shutdown=2,
        lifespan="on",
    )
    server = _Server(config)
    tasks = [asyncio.create_task(server.serve(), name="web")]
    stop_polling = asyncio.Event()
    if telegram is not None:
        polling = run_polling(
            runtime.service, telegram, runtime.desk_store, handle_signals=False, stop=stop_polling
        )
        tasks.append(asyncio.create_task(polling, name="telegram"))
    while not server.started:
        if tasks[0].done():
            await tasks[0]
            raise SystemExit(f"tonebot: the web app could not listen on {host}:{port}")
        await asyncio.sleep(0.05)
    on_ready(f"http://{host}:{port}")
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    # Telegram's polling is asked to stop and given a moment to close its session, then cancelled.
    stop_polling.set()
    if pending:
        _, late = await asyncio.wait(pending, timeout=STOP_WAIT_S)
        for task in late:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()
