"""The terminal chat: one client talking to the engine, interactive or scripted through stdin."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TextIO

from dialogs.engine import Turn
from dialogs.messages import Button, IncomingMessage
from dialogs.service import ConversationService

CHANNEL = "terminal"


def _lines(stream: TextIO, interactive: bool, out: TextIO) -> Iterator[str]:
    while True:
        if interactive:
            out.write("вы> ")
            out.flush()
        line = stream.readline()
        if not line:
            return
        yield line.rstrip("\n")


def _print_turn(turn: Turn, out: TextIO, *, interactive: bool, explain: bool) -> list[Button]:
    buttons: list[Button] = []
    for reply in turn.replies:
        out.write(("бот> " if interactive else "") + reply.text + "\n")
        for number, button in enumerate(reply.buttons, start=1):
            out.write(f"  [{number}] {button.text}\n")
        buttons = list(reply.buttons) or buttons
    if explain:
        out.write("  · " + json.dumps(turn.explain, ensure_ascii=False, default=str) + "\n")
    out.flush()
    return buttons


def run_chat(
    service: ConversationService,
    *,
    user: str = "local",
    explain: bool = False,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> None:
    """Talk to the engine as one client until end of input; a number picks a button of the last reply."""
    interactive = stdin.isatty()
    buttons: list[Button] = []
    for line in _lines(stdin, interactive, stdout):
        text, payload = line, None
        choice = line.strip()
        if choice.isdigit() and 1 <= int(choice) <= len(buttons):
            text, payload = buttons[int(choice) - 1].text, buttons[int(choice) - 1].payload
        message = IncomingMessage(
            channel=CHANNEL,
            chat_id=user,
            user_id=user,
            text=text,
            at=datetime.now(UTC),
            button_payload=payload,
        )
        buttons = _print_turn(service.handle(message), stdout, interactive=interactive, explain=explain)
