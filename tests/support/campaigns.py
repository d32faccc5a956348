"""Campaigns of a test's own, in a private copy of the content: the tests and benchmarks of sending do not
depend on the shipped campaigns or on how their editors phrase them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from common.events import Event
from common.messages import IncomingMessage, Reply
from dialogs.content import copy_content
from storage import SqlStore

COMPANY = "provider"
# Moments of the test campaigns: each persona's phrasing starts with its own mark, so a test can tell
# whose tone a message was written in.
MOMENTS = {
    "test.offer": "тестовое предложение",
    "test.offer.reminder": "напоминание о тестовом предложении",
    "test.notice": "тестовое служебное сообщение",
}
PHRASINGS = {
    "neutral": {
        "test.offer": ["Здравствуйте! «{company}» предлагает ускорение. Интересно?"],
        "test.offer.reminder": ["Напоминаем о предложении «{company}»."],
        "test.notice": ["Здравствуйте! «{company}» сообщает о плановых работах."],
    },
    "aggressor": {
        "test.offer": ["По делу: «{company}» предлагает ускорение без доплаты."],
        "test.offer.reminder": ["По делу: предложение «{company}» в силе."],
        "test.notice": ["По делу: у «{company}» плановые работы."],
    },
    "positive": {
        "test.offer": ["Отличная новость: «{company}» дарит ускорение!"],
        "test.offer.reminder": ["Отличная новость всё ещё в силе!"],
        "test.notice": ["Отличная новость: работы скоро закончатся!"],
    },
}
# Each persona's mark: the start of every phrasing in its tone.
MARKS = {
    "neutral": ("Здравствуйте!", "Напоминаем"),
    "aggressor": ("По делу",),
    "positive": ("Отличная новость",),
}
ALWAYS = {"business": "00:00-24:00", "quiet": None, "days": "mon-sun"}


def campaign(
    campaign_id: str,
    *,
    purpose: str = "service",
    audience: dict[str, Any] | None = None,
    message: str = "test.offer",
    follow_up: dict[str, Any] | None = None,
    hours: dict[str, Any] | None = None,
    rate: dict[str, float] | None = None,
    buttons: list[dict[str, str]] | None = None,
    time_zone: str | None = None,
) -> dict[str, Any]:
    """One campaign as its file holds it (open around the clock unless `hours` say otherwise)."""
    spec: dict[str, Any] = {
        "id": campaign_id,
        "title": f"Тест {campaign_id}",
        "purpose": purpose,
        "audience": audience or {"query": {"channels": ["telegram", "vk"]}},
        "message": message,
        "buttons": buttons if buttons is not None else [{"action": "callback"}, {"action": "later"}],
        "hours": hours or ALWAYS,
    }
    if follow_up:
        spec["follow_up"] = follow_up
    if rate:
        spec["rate"] = rate
    if time_zone:
        spec["time_zone"] = time_zone
    return spec


def campaign_content(root: Path, *campaigns: dict[str, Any], files: dict[str, str] | None = None) -> Path:
    """A copy of the provider's content with the test moments and these campaigns (and files beside
    them, such as a CSV audience); returns the company's directory."""
    content = copy_content(root / "content", COMPANY)
    guides = content / "guides"
    _edit(guides / "moments.yaml", lambda data: data["moments"].update(_catalogue()))
    for persona, moments in PHRASINGS.items():
        _edit(guides / f"{persona}.yaml", lambda data, extra=moments: data["moments"].update(extra))
    folder = content / "campaigns"
    for old in folder.glob("*"):
        old.unlink()
    folder.mkdir(exist_ok=True)
    (folder / "tests.yaml").write_text(_dump({"campaigns": list(campaigns)}), encoding="utf-8")
    for name, text in (files or {}).items():
        (folder / name).write_text(text, encoding="utf-8")
    return content


class _Plain(yaml.SafeDumper):
    """Writes a value shared by two places out twice: content files allow no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Plain, allow_unicode=True, sort_keys=False)


def _catalogue() -> dict[str, Any]:
    return {moment: {"about": about, "placeholders": ["company"]} for moment, about in MOMENTS.items()}


def _edit(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.setdefault("moments", {})
    change(data)
    path.write_text(_dump(data), encoding="utf-8")


def persona_of(text: str) -> str | None:
    """Whose tone a test campaign's message is in (by its mark); None for any other text."""
    for persona, marks in MARKS.items():
        if text.startswith(marks):
            return persona
    return None


@dataclass
class _Outcome:
    replies: list[Reply] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def client_wrote(
    store: SqlStore, channel: str, chat: str, at: datetime, *, persona: str | None = None
) -> None:
    """Store a client's message in a chat (the door is open), as the service stores a turn; `persona` is
    how the bot has come to read the client."""
    message = IncomingMessage(channel, chat, chat, "Здравствуйте", at, message_id=f"{chat}:{at.timestamp()}")

    def run(_conversation_id: int, state: Any) -> _Outcome:
        if persona:
            state.persona = persona
        return _Outcome()

    store.run_turn(message, run)
