"""`tonebot campaigns lint|preview|run|pause|resume|status`: campaigns for editors and whoever runs them.

    tonebot campaigns lint [PATH]              every campaign, or file:line errors (exit 1)
    tonebot campaigns preview NAME [--persona P]  the message and follow-ups as each persona reads them
    tonebot campaigns run NAME [--channel C]   start (or resume): queue the audience, send, show the funnel
    tonebot campaigns pause NAME | resume NAME
    tonebot campaigns status [NAME]            the funnel table

Only argparse is imported at start: the rest when a command runs (see bot/cli.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from wiring.settings import Settings

PERSONAS = ("unsure", "talker", "positive", "aggressor", "sysadmin", "neutral")
CHANNELS = ("telegram", "vk", "max", "whatsapp")


def add_parser(commands: Any, handler: Callable[[argparse.Namespace], int]) -> None:
    """Register `tonebot campaigns ...` on the command's subparsers."""
    campaigns = commands.add_parser(
        "campaigns", help="outbound campaigns: lint, preview, run, pause, resume, status"
    )
    verbs = campaigns.add_subparsers(dest="campaigns_command", required=True)
    lint = verbs.add_parser("lint", help="check the campaign files; print each campaign, or file:line errors")
    lint.add_argument("path", nargs="?", help="a content directory (default: the content in use)")
    preview = verbs.add_parser("preview", help="the message and follow-ups as each persona reads them")
    preview.add_argument("name", help="the campaign's id")
    preview.add_argument("--persona", choices=PERSONAS, help="only this persona")
    run = verbs.add_parser("run", help="start or resume: queue the audience, send, then show the funnel")
    run.add_argument("name", help="the campaign's id")
    run.add_argument(
        "--channel", action="append", choices=CHANNELS, help="only this messenger (may be given again)"
    )
    pause = verbs.add_parser("pause", help="stop sending (messages in flight finish)")
    pause.add_argument("name")
    resume = verbs.add_parser("resume", help="send again, from where it stopped")
    resume.add_argument("name")
    resume.add_argument("--channel", action="append", choices=CHANNELS, help="only this messenger")
    status = verbs.add_parser("status", help="the funnel of one campaign, or of every campaign")
    status.add_argument("name", nargs="?")
    for verb in (lint, preview, run, pause, resume, status):
        verb.add_argument("--db", help="SQLite file (default: DATABASE_URL or tonebot.db)")
        verb.add_argument("--company", default=argparse.SUPPRESS, help="a shipped company: provider or bank")
    campaigns.set_defaults(handler=handler)


def run_command(args: argparse.Namespace, settings: Settings, out: TextIO | None = None) -> int:
    """Run one `tonebot campaigns` verb (printing to `out`, standard output by default); the exit code."""
    out = out or sys.stdout
    verb = args.campaigns_command
    if verb == "lint":
        from bot.campaigns.editors import lint

        return lint(Path(args.path) if args.path else settings.content_dir, out)
    if verb == "preview":
        from bot.campaigns.editors import preview

        return preview(settings.content_dir, args.name, args.persona, out)
    from bot.campaigns.running import run_verb

    return run_verb(verb, args, settings, out)
