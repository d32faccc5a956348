"""The `tonebot` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from common.names import Channel, OperatorRole

# Only what every command needs is imported here: the rest (storage and SQLAlchemy, the engine, Telegram,
# the web app) by the commands that use it, so `tonebot chat` starts and `--help` answers at once.
if TYPE_CHECKING:
    from bot.telegram.runner import TelegramSettings
    from wiring.settings import Settings

# The demo's operator: the responsible person of several categories in the shipped teams file.
DEMO_OPERATOR = "anna"


def _settings(args: argparse.Namespace) -> Settings:
    from wiring.settings import Settings, company_dir

    settings = Settings.from_env()
    if getattr(args, "db", None):
        from storage.database import sqlite_url

        settings = replace(settings, database_url=sqlite_url(args.db))
    if getattr(args, "company", None):
        settings = replace(settings, content_dir=company_dir(args.company))
    if getattr(args, "content", None):
        settings = replace(settings, content_dir=Path(args.content))
    return settings


def _chat(args: argparse.Namespace) -> int:
    from bot.terminal import run_chat
    from wiring.runtime import build_runtime, until_stopped

    runtime = build_runtime(_settings(args))
    with until_stopped(runtime):
        run_chat(runtime.service, user=args.user, explain=args.explain, explain_json=args.explain_json)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from dialogs.evaluation import run_evaluation

    content_dir = _settings(args).content_dir
    return run_evaluation(args.kind, Path(args.file), as_json=args.json, content_dir=content_dir)


def _test(args: argparse.Namespace) -> int:
    from dialogs.evaluation.content_tests import run_tests

    settings = _settings(args)
    return run_tests(settings.content_dir, Path(args.path) if args.path else None, sys.stdout)


def _personas(args: argparse.Namespace) -> int:
    from common.layers import content_layers
    from common.text import shared_lemmatizer
    from dialogs.evaluation.metrics import read_jsonl
    from personas.fitting import as_yaml, fit
    from personas.signals import LEARNED_FILE

    try:
        rows = [row for name in args.files for row in read_jsonl(name)]
    except (OSError, ValueError) as exc:
        print(f"tonebot personas fit: {exc}", file=sys.stderr)
        return 2
    if args.out:
        out = Path(args.out)
    else:
        layers = content_layers(_settings(args).content_dir)
        holding = [layer for layer in layers if (layer / "personas" / "signals.yaml").is_file()] or layers
        out = holding[-1] / "personas" / LEARNED_FILE
    table = fit(rows, shared_lemmatizer())
    scales = {"aggressor": args.aggressor_scale}
    out.write_text(as_yaml(table, list(args.files), args.scale, scales), encoding="utf-8")
    words = ", ".join(f"{label} {len(weights)}" for label, weights in table.items())
    print(f"fitted from {len(rows)} conversations: {words}; written to {out}")
    return 0


def _guides(args: argparse.Namespace) -> int:
    from personas.editor_tools import lint, preview

    path = Path(args.path) if getattr(args, "path", None) else _settings(args).content_dir
    if args.guides_command == "lint":
        return lint(path, sys.stdout)
    return preview(path, args.persona, args.moment, sys.stdout)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from wiring.runtime import build_runtime, until_stopped

    if args.channel != "telegram":
        return _run_messenger(args)
    from bot.telegram.runner import run_polling, run_webhook

    telegram = _telegram(required=True)
    assert telegram is not None
    runtime = build_runtime(_settings(args))
    with until_stopped(runtime):
        if args.webhook_url:
            run_webhook(runtime.service, telegram, args.webhook_url, args.host, args.port, runtime.desk_store)
        else:
            from bot.campaigns.serving import serve_with_campaigns
            from wiring.settings import environment

            polling = run_polling(runtime.service, telegram, runtime.desk_store)
            asyncio.run(serve_with_campaigns(runtime, environment(), ["telegram"], polling))
    return 0


def _run_messenger(args: argparse.Namespace) -> int:
    """`tonebot run vk|max|whatsapp`: long polling where the messenger has it, else (or with --webhook)
    its webhook on --host/--port."""
    import asyncio

    from aiohttp import web

    from bot.messengers import MESSENGERS
    from wiring.runtime import build_runtime, until_stopped
    from wiring.settings import environment

    messenger = MESSENGERS[args.channel]
    # A missing or malformed token raises SettingsError here: one line and exit 2, before anything starts.
    settings = messenger.settings(environment())
    runner = messenger.runner()
    runtime = build_runtime(_settings(args))
    webhook = args.webhook or bool(args.webhook_url)
    if args.webhook_url and hasattr(runner, "subscribe_webhook"):
        # MAX posts nowhere until the URL is subscribed (VK's and Meta's are set in their consoles).
        asyncio.run(runner.subscribe_webhook(settings, args.webhook_url))
    from bot.campaigns.outbounds import messenger_outbounds
    from bot.campaigns.serving import beside_app, serve_with_campaigns

    with until_stopped(runtime):
        if messenger.polls and not webhook:
            polling = runner.run_polling(runtime.service, settings, runtime.desk_store)
            asyncio.run(serve_with_campaigns(runtime, environment(), [messenger.name], polling))
        else:

            async def app() -> web.Application:
                served = messenger.webhook_app(runtime, settings)
                # Campaigns go out beside the webhook, through a client of their own.
                beside_app(
                    served,
                    runtime,
                    lambda: messenger_outbounds(runtime, environment(), [messenger.name]),
                    own=True,
                )
                return served

            print(f"{messenger.title} webhook on http://{args.host}:{args.port}", flush=True)
            web.run_app(app(), host=args.host, port=args.port, print=None)
    return 0


def _campaigns(args: argparse.Namespace) -> int:
    from bot.campaigns.commands import run_command

    return run_command(args, _settings(args))


def _operators(args: argparse.Namespace) -> int:
    import getpass
    from datetime import UTC, datetime

    from operators.passwords import MIN_LENGTH, hash_password, new_password
    from wiring.runtime import build_runtime

    runtime = build_runtime(_settings(args))
    name = args.name.strip()
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-" for c in name):
        print(
            "tonebot: an operator name is 1-64 letters, digits, dots, dashes or underscores", file=sys.stderr
        )
        return 2
    if args.generate or not sys.stdin.isatty():
        password = sys.stdin.readline().strip() if args.password_stdin else new_password()
    else:
        password = getpass.getpass(f"password for {name}: ")
        if password != getpass.getpass("again: "):
            print("tonebot: the passwords differ; nothing was changed", file=sys.stderr)
            return 2
    if len(password) < MIN_LENGTH:
        print(f"tonebot: a password needs at least {MIN_LENGTH} characters", file=sys.stderr)
        return 2
    store = runtime.desk_store
    if args.operators_command == "add":
        try:
            store.add_operator(
                name, hash_password(password), args.display_name or name, args.role, datetime.now(UTC)
            )
        except ValueError as exc:
            print(f"tonebot: {exc}; use `tonebot operators password {name}` to change it", file=sys.stderr)
            return 1
        print(f"operator {name} added")
    elif not store.set_password(name, hash_password(password)):
        print(f"tonebot: there is no operator {name!r}", file=sys.stderr)
        return 1
    else:
        print(f"password of {name} changed; their sessions are signed out")
    if args.generate or (not sys.stdin.isatty() and not args.password_stdin):
        print(f"password: {password}")
    return 0


def _telegram(*, required: bool) -> TelegramSettings | None:
    """Telegram settings from the environment and `.env`; None when optional and no token is set. A bad
    value raises TelegramConfigError, which `main` reports with what to set (exit 2)."""
    from bot.telegram.runner import TelegramSettings
    from wiring.settings import environment

    env = environment()
    if not required and not env.get("TELEGRAM_BOT_TOKEN"):
        return None
    return TelegramSettings.from_env(env)


def _web(args: argparse.Namespace) -> int:
    import asyncio

    from bot.serve import serve
    from wiring.runtime import build_runtime, until_stopped

    runtime = build_runtime(_settings(args))
    # Only on request: beside webhook workers, long polling would fight them for the bot's updates.
    telegram = _telegram(required=False) if args.telegram else None
    if args.telegram and telegram is None:
        print("tonebot: --telegram needs TELEGRAM_BOT_TOKEN", file=sys.stderr)
        return 2

    def ready(url: str) -> None:
        print(f"web chat:         {url}/chat", flush=True)
        print(f"operator console: {url}/console", flush=True)

    with until_stopped(runtime):
        asyncio.run(
            serve(runtime, args.host, args.port, telegram, on_ready=ready, secure_cookies=args.secure_cookies)
        )
    return 0


def _demo(args: argparse.Namespace) -> int:
    import asyncio
    from datetime import UTC, datetime

    from bot.messengers import MESSENGERS, configured_messengers
    from bot.serve import serve
    from operators.passwords import hash_password, new_password
    from wiring.runtime import build_runtime, until_stopped
    from wiring.settings import environment

    runtime = build_runtime(_settings(args))
    telegram = _telegram(required=False)
    messengers = configured_messengers(environment())
    password = new_password()
    if not runtime.desk_store.set_password(DEMO_OPERATOR, hash_password(password)):
        runtime.desk_store.add_operator(
            DEMO_OPERATOR, hash_password(password), "Анна", OperatorRole.OPERATOR, datetime.now(UTC)
        )

    def ready(url: str) -> None:
        print(f"tonebot demo is running (SQLite: {runtime.store.engine.url.database}).", flush=True)
        print(f"  web chat for clients:  {url}/chat", flush=True)
        print(f"  operators' console:    {url}/console", flush=True)
        print(f"  sign in as:            {DEMO_OPERATOR} / {password}", flush=True)
        if telegram is None:
            print("  Telegram:              off (set TELEGRAM_BOT_TOKEN to answer there too)", flush=True)
        else:
            print("  Telegram:              on (long polling)", flush=True)
        running = {messenger.name for messenger, _settings in messengers}
        for messenger in MESSENGERS.values():
            label = f"  {messenger.title}:".ljust(25)
            if messenger.name not in running:
                print(f"{label}off (set {messenger.token_variable} to answer there too)", flush=True)
            elif messenger.polls:
                print(f"{label}on (long polling)", flush=True)
            else:
                print(f"{label}on (webhook on port {args.port + 1})", flush=True)
        print("Press Ctrl+C to stop.", flush=True)

    with until_stopped(runtime):
        asyncio.run(
            serve(
                runtime,
                "127.0.0.1",
                args.port,
                telegram,
                on_ready=ready,
                messengers=messengers,
                campaigns=True,
            )
        )
    return 0


def _worker(args: argparse.Namespace) -> int:
    import asyncio
    from typing import Any

    from bot.channels.limits import RateLimits
    from bot.channels.webhook import WebhookReader
    from bot.channels.workers import ChannelWorker
    from bot.messengers import configured_messengers
    from wiring.runtime import build_runtime, until_stopped
    from wiring.settings import environment

    telegram = _telegram(required=False)
    messengers = configured_messengers(environment())
    if telegram is None and not messengers:
        print(
            "tonebot: a worker needs a messenger: set TELEGRAM_BOT_TOKEN (or VK_GROUP_TOKEN, MAX_BOT_TOKEN, "
            "WHATSAPP_TOKEN)",
            file=sys.stderr,
        )
        return 2
    if telegram is not None and not telegram.webhook_secret:
        print(
            "tonebot: set TELEGRAM_WEBHOOK_SECRET (the same for every worker) so that only Telegram can post "
            "updates",
            file=sys.stderr,
        )
        return 2
    runtime = build_runtime(_settings(args))
    limits = RateLimits(per_chat_interval=args.chat_interval, global_per_second=args.send_rate)
    others: list[tuple[WebhookReader, Any]] = []
    for messenger, settings in messengers:
        runner = messenger.runner()
        others.append((runner.webhook_reader(settings), messenger.gateway(runtime, settings)))
    worker: ChannelWorker
    options: dict[str, Any] = {"threads": args.threads, "stale_claim_s": args.stale_claim_s}
    if telegram is None:
        worker = ChannelWorker(runtime, others, record_receipts=runtime.desk_store.record_receipts, **options)
    else:
        from bot.telegram.runner import make_bot
        from bot.telegram.workers import WEBHOOK_PATH, WebhookWorker

        secret = telegram.webhook_secret
        assert secret is not None
        if args.webhook_url:
            url = args.webhook_url.rstrip("/")
            url = url if url.endswith(WEBHOOK_PATH) else url + WEBHOOK_PATH
            registering = make_bot(telegram)

            async def register() -> None:
                await registering.set_webhook(url, secret_token=secret, drop_pending_updates=False)
                await registering.session.close()

            asyncio.run(register())
        worker = WebhookWorker(
            runtime,
            make_bot(telegram),
            secret,
            limits=limits,
            others=others,
            record_receipts=runtime.desk_store.record_receipts,
            **options,
        )
    from aiohttp import web

    from bot.campaigns.serving import beside_app

    app = worker.app()
    # Campaigns go out through the worker's own messenger clients (one pace for replies and campaigns).
    beside_app(app, runtime, lambda: {name: gw.outbound for name, gw in worker.gateways.items()}, own=False)
    with until_stopped(runtime):
        web.run_app(app, host=args.host, port=args.port, print=None)
    return 0


def _clients(args: argparse.Namespace) -> int:
    import getpass
    import json
    from datetime import UTC, datetime, timedelta

    from wiring.runtime import build_runtime

    runtime = build_runtime(_settings(args))
    who = f"cli:{getpass.getuser()}"
    now = datetime.now(UTC)
    if args.clients_command == "export":
        data = runtime.client_data.export(args.id, who, now)
        if data is None:
            print(f"tonebot: there is no client {args.id}", file=sys.stderr)
            return 1
        text = json.dumps(data, ensure_ascii=False, indent=2)
        if args.out:
            from storage.privacy import write_private

            write_private(Path(args.out), text + "\n")  # 0600: it holds personal data
            print(f"client {args.id} written to {args.out}")
        else:
            print(text)
        return 0
    if args.clients_command == "merge":
        try:
            merged = runtime.desk_store.merge_clients(args.keep, args.absorb, args.by, now, via=who)
        except (LookupError, ValueError) as exc:
            print(f"tonebot: {exc}", file=sys.stderr)
            return 1
        print(f"client {args.absorb} merged into client {args.keep}: {merged.describe()}")
        return 0
    if args.clients_command == "verify":
        by = args.by or who
        try:
            done = runtime.desk_store.verify_identity(args.channel, args.user, args.phone, by, now)
        except (LookupError, ValueError) as exc:
            print(f"tonebot: {exc}", file=sys.stderr)
            return 1
        others = ", ".join(str(c) for c in done.person if c != done.client_id)
        said = "confirmed" if done.added else "was already confirmed"
        linked = f"; one person with clients {others}" if others else ""
        print(f"client {done.client_id} ({args.channel} {args.user}): phone {said} by company:{by}{linked}")
        return 0
    if args.clients_command == "forget":
        if not args.yes:
            print(f"tonebot: this erases client {args.id} for good; add --yes to do it", file=sys.stderr)
            return 2
        erased = runtime.client_data.forget(args.id, who, now)
        if erased is None:
            print(f"tonebot: there is no client {args.id}", file=sys.stderr)
            return 1
        print(f"client {args.id} forgotten: {erased.describe()}")
        return 0
    days = args.days if args.days is not None else runtime.retention_days
    if days <= 0:
        print("tonebot: give --days N or set TONEBOT_RETENTION_DAYS", file=sys.stderr)
        return 2
    erased = runtime.client_data.purge(now - timedelta(days=days), who, now)
    print(f"older than {days} days: {erased.describe()}")
    return 0


def _db(args: argparse.Namespace) -> int:
    from storage.database import connect
    from storage.schema import current_revision, head_revision, upgrade

    settings = _settings(args)
    engine = connect(settings.database_url, check=False)
    shown = engine.url.render_as_string(hide_password=True)
    if args.db_command == "upgrade":
        before = current_revision(engine)
        upgrade(engine)
        print(f"{shown}: schema {before or 'empty'} -> {current_revision(engine)}")
    else:
        current = current_revision(engine)
        state = "up to date" if current == head_revision() else f"this tonebot needs {head_revision()}"
        print(f"{shown}: schema {current or 'not migrated'} ({state})")
    return 0


def _bench(args: argparse.Namespace) -> int:
    # The benchmarks live in the repository beside the package (with the test stand-ins they drive).
    checkout = Path(__file__).resolve().parent.parent
    if not (checkout / "bench" / "suite.py").is_file():
        print("tonebot: `tonebot bench` runs from a clone of the tonebot repository", file=sys.stderr)
        return 2
    import subprocess

    # A process of its own, from the checkout: bench sits above bot (it drives the bot), never inside it.
    flags = [*(["--quick"] if args.quick else []), *(["--json"] if args.json else [])]
    return subprocess.run([sys.executable, "-m", "bench.suite", *flags], cwd=checkout, check=False).returncode


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tonebot", description="A customer-service bot that speaks in your tone."
    )
    parser.add_argument("--content", help="content directory (scenarios, guides, lexicons)")
    parser.add_argument(
        "--company", help="a shipped company's content: provider (the default) or bank; see content/"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True)

    chat = commands.add_parser("chat", help="talk to the bot in the terminal (one message per line)")
    chat.add_argument(
        "--db", help="SQLite file to keep conversations in (default: DATABASE_URL or tonebot.db)"
    )
    chat.add_argument("--user", default="local", help="who you are to the bot (default: local)")
    chat.add_argument("--explain", action="store_true", help="after each reply, show what the bot understood")
    chat.add_argument("--explain-json", action="store_true", help="the same as one JSON line, for scripts")
    chat.add_argument("--company", default=argparse.SUPPRESS, help="a shipped company: provider or bank")
    chat.set_defaults(handler=_chat)

    run = commands.add_parser("run", help="run the bot in a messenger")
    run.add_argument("channel", choices=["telegram", "vk", "max", "whatsapp"])
    run.add_argument(
        "--webhook",
        action="store_true",
        help="VK and MAX: serve the Callback API / webhook on --host and --port instead of long polling",
    )
    run.add_argument(
        "--webhook-url",
        help="public HTTPS URL Telegram (or MAX) should post updates to, registered at start (default: long "
        "polling)",
    )
    run.add_argument("--host", default="127.0.0.1", help="address the webhook app listens on")
    run.add_argument("--port", type=int, default=8080, help="port the webhook app listens on")
    run.add_argument("--company", default=argparse.SUPPRESS, help="a shipped company: provider or bank")
    run.set_defaults(handler=_run)

    evaluate = commands.add_parser("eval", help="score the bot on a labelled JSON Lines file")
    evaluate.add_argument("kind", choices=["requests", "dialogs", "details", "handoff", "personas"])
    evaluate.add_argument("file")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    evaluate.add_argument("--company", default=argparse.SUPPRESS, help="a shipped company: provider or bank")
    evaluate.set_defaults(handler=_eval)

    test = commands.add_parser(
        "test", help="run the editors' conversation tests (default: the tests of the content in use)"
    )
    test.add_argument("path", nargs="?", help="a test file (.yaml, .jsonl) or a directory of them")
    test.add_argument("--company", default=argparse.SUPPRESS, help="a shipped company: provider or bank")
    test.set_defaults(handler=_test)

    personas = commands.add_parser("personas", help="the persona classifier's fitted word weights")
    persona_commands = personas.add_subparsers(dest="personas_command", required=True)
    fitting = persona_commands.add_parser(
        "fit", help="fit word weights from labelled conversations (personas format) into learned.yaml"
    )
    fitting.add_argument("files", nargs="+", help="JSON Lines files in the personas evaluation format")
    fitting.add_argument("--out", help="where to write (default: personas/learned.yaml of the shared layer)")
    fitting.add_argument("--scale", type=float, default=0.3, help="how much a fitted word counts (0.3)")
    fitting.add_argument(
        "--aggressor-scale", type=float, default=0.15, help="the same for aggression, which acts at once"
    )
    fitting.set_defaults(handler=_personas)

    guides = commands.add_parser("guides", help="tools for tone-guide editors")
    guide_commands = guides.add_subparsers(dest="guides_command", required=True)
    lint = guide_commands.add_parser(
        "lint", help="check guides: file:line:column errors and a coverage matrix"
    )
    lint.add_argument(
        "path", nargs="?", help="guides directory or content directory (default: the content in use)"
    )
    preview = guide_commands.add_parser("preview", help="show every phrasing of a moment with sample values")
    preview.add_argument(
        "--persona",
        required=True,
        choices=["unsure", "talker", "positive", "aggressor", "sysadmin", "neutral"],
    )
    preview.add_argument("--moment", required=True)
    preview.add_argument("--path", help="guides directory or content directory")
    guides.set_defaults(handler=_guides)

    demo = commands.add_parser(
        "demo", help="web chat and operators' console on 127.0.0.1 with a demo operator (and Telegram if set)"
    )
    demo.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    demo.add_argument("--db", help="SQLite file (default: DATABASE_URL or tonebot.db)")
    demo.add_argument("--company", default=argparse.SUPPRESS, help="a shipped company: provider or bank")
    demo.set_defaults(handler=_demo)

    web = commands.add_parser("web", help="serve the web chat and the operators' console")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    web.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    web.add_argument(
        "--secure-cookies", action="store_true", help="send cookies only over HTTPS (behind TLS)"
    )
    web.add_argument(
        "--telegram", action="store_true", help="answer Telegram too, by long polling (one-process set-ups)"
    )
    web.add_argument("--company", default=argparse.SUPPRESS, help="a shipped company: provider or bank")
    web.set_defaults(handler=_web)

    operators = commands.add_parser("operators", help="operator accounts for the console")
    operator_commands = operators.add_subparsers(dest="operators_command", required=True)
    for verb, help_text in (("add", "create an account"), ("password", "set a new password")):
        command = operator_commands.add_parser(verb, help=help_text)
        command.add_argument("name")
        command.add_argument("--db", help="SQLite file (default: DATABASE_URL or tonebot.db)")
        command.add_argument("--generate", action="store_true", help="make up a random password and print it")
        command.add_argument(
            "--password-stdin", action="store_true", help="read the password from the first line of input"
        )
        if verb == "add":
            command.add_argument("--display-name", help="the name clients see (default: NAME)")
            command.add_argument("--role", choices=list(OperatorRole), default=OperatorRole.OPERATOR)
        else:
            command.set_defaults(display_name=None, role=OperatorRole.OPERATOR)
    operators.set_defaults(handler=_operators)

    worker = commands.add_parser(
        "worker",
        help="one of several webhook workers sharing PostgreSQL, for every messenger set (see Deployment)",
    )
    worker.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    worker.add_argument("--port", type=int, default=8081, help="port to listen on (default 8081)")
    worker.add_argument(
        "--threads", type=int, default=4, help="threads for storage and the engine (default 4)"
    )
    worker.add_argument("--webhook-url", help="register this public URL with Telegram at start")
    worker.add_argument(
        "--stale-claim-s",
        type=float,
        default=60.0,
        help="replies a worker claimed but did not send within this time are resent by others (default 60)",
    )
    worker.add_argument(
        "--send-rate",
        type=float,
        default=30.0,
        help="messages a second this worker sends at most; Telegram allows about 30 for the whole bot, so "
        "divide by the number of workers (default 30)",
    )
    worker.add_argument(
        "--chat-interval", type=float, default=1.0, help="seconds between messages to one chat (default 1)"
    )
    worker.add_argument("--company", default=argparse.SUPPRESS, help="a shipped company: provider or bank")
    worker.set_defaults(handler=_worker)

    clients = commands.add_parser(
        "clients", help="a client's data: export, forget, merge, verify; retention purge"
    )
    client_commands = clients.add_subparsers(dest="clients_command", required=True)
    export = client_commands.add_parser("export", help="everything stored about one client, as JSON")
    export.add_argument("id", type=int, help="the client's number (shown in the console)")
    export.add_argument("--out", help="write to this file instead of standard output")
    forget = client_commands.add_parser("forget", help="erase a client's messages, details and identities")
    forget.add_argument("id", type=int)
    forget.add_argument("--yes", action="store_true", help="confirm: the data cannot be brought back")
    purge = client_commands.add_parser("purge", help="delete conversations older than the retention period")
    purge.add_argument("--days", type=int, help="instead of TONEBOT_RETENTION_DAYS")
    merge = client_commands.add_parser(
        "merge", help="record an operator's decision that two clients are one person (audited)"
    )
    merge.add_argument("keep", type=int, help="the client that stays")
    merge.add_argument("absorb", type=int, help="the client whose conversations and details move to KEEP")
    merge.add_argument("--by", required=True, help="the operator account that decided (recorded)")
    verify = client_commands.add_parser(
        "verify", help="record that the company's own systems confirmed a client's phone (audited)"
    )
    verify.add_argument("--channel", required=True, choices=list(Channel))
    verify.add_argument("--user", required=True, help="the client's user id in that channel")
    verify.add_argument("--phone", required=True, help="the confirmed number, e.g. +79131234567")
    verify.add_argument(
        "--by", help="who in the company confirmed it (recorded as company:BY; default cli:<login>)"
    )
    for command in (export, forget, purge, merge, verify):
        command.add_argument("--db", help="SQLite file (default: DATABASE_URL or tonebot.db)")
    clients.set_defaults(handler=_clients)

    db = commands.add_parser("db", help="the database schema (DATABASE_URL)")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    for verb, help_text in (
        ("upgrade", "migrate the database to this tonebot's schema (back it up first)"),
        ("current", "show the schema revision of the database"),
    ):
        command = db_commands.add_parser(verb, help=help_text)
        command.add_argument("--db", help="SQLite file (default: DATABASE_URL or tonebot.db)")
    db.set_defaults(handler=_db)

    from bot.campaigns.commands import add_parser as add_campaigns

    add_campaigns(commands, _campaigns)

    bench = commands.add_parser("bench", help="measure speed and memory (from a clone of the repository)")
    bench.add_argument("--quick", action="store_true", help="small sizes: a smoke run, noisier figures")
    bench.add_argument("--json", action="store_true", help="end with the figures as one JSON object")
    bench.set_defaults(handler=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tonebot` console command."""
    args = _parser().parse_args(argv)
    from bot.logmask import install_masking
    from dialogs import content_cache
    from wiring.settings import environment

    install_masking()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    content_cache.configure(content_cache.directory_from(environment()))
    try:
        result: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if _raised(exc, "common.yamlfile", "ContentError"):
            print("tonebot: the content files have errors; fix them and start again:", file=sys.stderr)
            for issue in exc.issues:  # type: ignore[attr-defined]
                print(f"  {issue}", file=sys.stderr)
            return 2
        if _raised(exc, "storage.schema", "SchemaError") or _raised(exc, "wiring.settings", "SettingsError"):
            print(f"tonebot: {exc}", file=sys.stderr)
            return 2
        raise
    return result


def _raised(exc: Exception, module: str, name: str) -> bool:
    """Whether `exc` is `module.name`, without importing the module: raised, it is already loaded."""
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(exc, getattr(loaded, name))


if __name__ == "__main__":
    sys.exit(main())
