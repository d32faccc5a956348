"""The `tonebot` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.settings import Settings
from dialogs.yamlfile import ContentError
from storage.database import sqlite_url


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if getattr(args, "db", None):
        settings = Settings(sqlite_url(args.db), settings.content_dir)
    if getattr(args, "content", None):
        settings = Settings(settings.database_url, Path(args.content))
    return settings


def _chat(args: argparse.Namespace) -> int:
    from bot.runtime import build_runtime
    from bot.terminal import run_chat

    runtime = build_runtime(_settings(args))
    run_chat(runtime.service, user=args.user, explain=args.explain, explain_json=args.explain_json)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from dialogs.evaluation import run_evaluation

    return run_evaluation(args.kind, Path(args.file), as_json=args.json, settings=_settings(args))


def _guides(args: argparse.Namespace) -> int:
    from personas.editor_tools import lint, preview

    path = Path(args.path) if getattr(args, "path", None) else _settings(args).content_dir
    if args.guides_command == "lint":
        return lint(path, sys.stdout)
    return preview(path, args.persona, args.moment, sys.stdout)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from bot.runtime import build_runtime
    from bot.settings import environment
    from bot.telegram.runner import TelegramConfigError, TelegramSettings, run_polling, run_webhook

    try:
        telegram = TelegramSettings.from_env(environment())
    except TelegramConfigError as exc:
        print(f"tonebot: {exc}", file=sys.stderr)
        return 2
    runtime = build_runtime(_settings(args))
    if args.webhook_url:
        run_webhook(runtime.service, telegram, args.webhook_url, args.host, args.port)
    else:
        asyncio.run(run_polling(runtime.service, telegram))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tonebot", description="A customer-service bot that speaks in your tone."
    )
    parser.add_argument("--content", help="content directory (scenarios, guides, lexicons)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", required=True)

    chat = commands.add_parser("chat", help="talk to the bot in the terminal (one message per line)")
    chat.add_argument(
        "--db", help="SQLite file to keep conversations in (default: DATABASE_URL or tonebot.db)"
    )
    chat.add_argument("--user", default="local", help="who you are to the bot (default: local)")
    chat.add_argument("--explain", action="store_true", help="after each reply, show what the bot understood")
    chat.add_argument("--explain-json", action="store_true", help="the same as one JSON line, for scripts")
    chat.set_defaults(handler=_chat)

    run = commands.add_parser("run", help="run the bot in a messenger")
    run.add_argument("channel", choices=["telegram"])
    run.add_argument(
        "--webhook-url", help="public HTTPS URL Telegram should post updates to (default: long polling)"
    )
    run.add_argument("--host", default="127.0.0.1", help="address the webhook app listens on")
    run.add_argument("--port", type=int, default=8080, help="port the webhook app listens on")
    run.set_defaults(handler=_run)

    evaluate = commands.add_parser("eval", help="score the bot on a labelled JSON Lines file")
    evaluate.add_argument("kind", choices=["details", "handoff", "personas"])
    evaluate.add_argument("file")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    evaluate.set_defaults(handler=_eval)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tonebot` console command."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        result: int = args.handler(args)
    except ContentError as exc:
        print("tonebot: the content files have errors; fix them and start again:", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
