"""Serving the web app (console and web chat), and Telegram beside it in the same process when configured."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import uvicorn
from aiohttp import web

from bot.messengers import Messenger
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
    messengers: Sequence[tuple[Messenger, Any]] = (),
    webhook_port: int | None = None,
    campaigns: bool = False,
) -> None:
    """Run until interrupted; `on_ready` gets the base URL once the port is listening. Messengers that
    poll (VK, MAX) poll beside the web app; the others (WhatsApp) get their webhook on `webhook_port`.
    With `campaigns`, due campaign messages go out through every configured messenger (a trigger event
    the web app queues wakes the sender)."""
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
    if campaigns:
        tasks.append(asyncio.create_task(_send_campaigns(runtime, app, stop_polling), name="campaigns"))
    for messenger, settings in messengers:
        runner = messenger.runner()
        if messenger.polls:
            polled = runner.run_polling(runtime.service, settings, runtime.desk_store, stop=stop_polling)
            tasks.append(asyncio.create_task(polled, name=messenger.name))
        else:
            port_for_hooks = webhook_port if webhook_port is not None else port + 1
            hooks = _serve_webhook(runtime, messenger, settings, host, port_for_hooks, stop_polling)
            tasks.append(asyncio.create_task(hooks, name=messenger.name))
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


async def _serve_webhook(
    runtime: Runtime, messenger: Messenger, settings: Any, host: str, port: int, stop: asyncio.Event
) -> None:
    """A messenger's webhook app (its own aiohttp server) until `stop` is set."""
    site_runner = web.AppRunner(messenger.webhook_app(runtime, settings), access_log=None)
    await site_runner.setup()
    try:
        await web.TCPSite(site_runner, host, port).start()
        log.warning("%s webhook listening on http://%s:%d", messenger.title, host, port)
        await stop.wait()
    finally:
        await site_runner.cleanup()


async def _send_campaigns(runtime: Runtime, app: Any, stop: asyncio.Event) -> None:
    """Campaigns sent beside the web app until `stop`; POST /api/events wakes the sender."""
    from bot.campaigns.outbounds import messenger_outbounds
    from bot.campaigns.serving import listen, sending_beside
    from dialogs.campaigns import CAMPAIGN_CHANNELS
    from wiring.settings import environment

    outbounds = messenger_outbounds(runtime, environment(), CAMPAIGN_CHANNELS)
    async with sending_beside(runtime, outbounds, own=True, stop=stop) as sender:
        listen(app, sender)
        await stop.wait()
