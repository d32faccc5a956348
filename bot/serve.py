"""Serving the web app (console and web chat), and Telegram beside it in the same process when configured."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import uvicorn

from bot.runtime import Runtime
from bot.telegram.runner import TelegramSettings, run_polling
from web.app import create_app

log = logging.getLogger(__name__)


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
    server = uvicorn.Server(config)
    tasks = [asyncio.create_task(server.serve(), name="web")]
    if telegram is not None:
        polling = run_polling(runtime.service, telegram, runtime.desk_store, handle_signals=False)
        tasks.append(asyncio.create_task(polling, name="telegram"))
    while not server.started:
        if tasks[0].done():
            await tasks[0]
            raise SystemExit(f"tonebot: the web app could not listen on {host}:{port}")
        await asyncio.sleep(0.05)
    on_ready(f"http://{host}:{port}")
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in done:
        task.result()
