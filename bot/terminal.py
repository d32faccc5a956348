"""The terminal chat: one client talking to the engine, interactive or scripted through stdin."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from common.messages import Button, IncomingMessage
from dialogs.engine import Turn
from dialogs.service import ConversationService

CHANNEL = "terminal"


def _lines(stream: TextIO, interactive: bool, out: TextIO) -> Iterator[str]:
    if isinstance(stream, io.TextIOWrapper):
        # Bytes that are no UTF-8 become U+FFFD here rather than stopping the chat (strict) or reaching
        # storage as lone surrogates (surrogateescape, Python's choice under a C locale).
        stream.reconfigure(errors="replace")
    while True:
        if interactive:
            out.write("вы> ")
            out.flush()
        line = stream.readline()
        if not line:
            return
        yield line.rstrip("\n")


def explain_lines(explain: dict[str, Any]) -> list[str]:
    """What the bot understood, for people: the request, the details, the persona with scores and cues."""
    lines = []
    layer = explain.get("layer")
    if layer:
        why = ", ".join(f"{k}={v}" for k, v in (explain.get("layer_why") or {}).items())
        acts = ", ".join(f"{k} {v:g}" for k, v in (explain.get("acts") or {}).items())
        lines.append(
            f"heard as: {layer}" + (f" ({why})" if why else "") + (f" · acts: {acts}" if acts else "")
        )
    match = explain.get("match")
    request = f"request {explain.get('active') or '-'}"
    if match:
        request += (
            f" (matched {match['scenario']} {match['score']}, margin {match.get('margin', 0)},"
            f" {match['evidence']})"
        )
    details = ", ".join(f"{k}={v}" for k, v in (explain.get("details") or {}).items()) or "-"
    waiting = explain.get("asked") or explain.get("awaiting") or "-"
    lines.append(f"{request} · details: {details} · waiting for: {waiting}")
    persona = explain.get("persona")
    if persona:
        scores = ", ".join(f"{k} {v:g}" for k, v in persona["scores"].items() if v) or "no signal"
        lines.append(
            f"persona {persona['label']} ({scores})" + (" · ESCALATE" if persona["escalate"] else "")
        )
        if persona["cues"]:
            lines.append("cues: " + "; ".join(persona["cues"]))
    if explain.get("handed_off"):
        lines.append("handed off to a person")
    return lines


def _print_turn(
    turn: Turn, out: TextIO, *, interactive: bool, explain: bool, explain_json: bool = False
) -> list[Button]:
    buttons: list[Button] = []
    for reply in turn.replies:
        out.write(("бот> " if interactive else "") + reply.text + "\n")
        for number, button in enumerate(reply.buttons, start=1):
            out.write(f"  [{number}] {button.text}\n")
        buttons = list(reply.buttons) or buttons
    if explain:
        for line in explain_lines(turn.explain):
            out.write(f"  · {line}\n")
    if explain_json:
        out.write("  · " + json.dumps(turn.explain, ensure_ascii=False, default=str) + "\n")
    out.flush()
    return buttons


def run_chat(
    service: ConversationService,
    *,
    user: str = "local",
    explain: bool = False,
    explain_json: bool = False,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> None:
    """Talk to the engine as one client until end of input; a number picks a button of the last reply."""
    interactive = stdin.isatty()
    buttons: list[Button] = []
    for line in _lines(stdin, interactive, stdout):
        text, payload = line, None
        choice = line.strip()
        # Length first: int() refuses strings of over 4,300 digits, and no reply has that many buttons.
        if len(choice) <= 9 and choice.isascii() and choice.isdigit() and 1 <= int(choice) <= len(buttons):
            text, payload = buttons[int(choice) - 1].text, buttons[int(choice) - 1].payload
        message = IncomingMessage(
            channel=CHANNEL,
            chat_id=user,
            user_id=user,
            text=text,
            at=datetime.now(UTC),
            button_payload=payload,
        )
        turn = service.handle(message)
        buttons = _print_turn(
            turn, stdout, interactive=interactive, explain=explain, explain_json=explain_json
        )
