"""The misunderstood inbox for content editors: what the bot did not understand over a period, grouped by
likeness with counts, reasons and moments, personal data hidden; from each group the YAML that teaches the
bot (an example for a scenario, words for a dialogue act, a conversation test) ready to copy, and each
conversation's messages, masked too.

Editors are not operators: the inbox is for team leads and admins (an editor gets one of those accounts).
Every route asks for the session first (`Who`), then makes the one role check, before it reads anything;
refusals are audited. The pages only read: nothing here changes data, so there is no form to forge.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from common.channels import title
from common.layers import content_layers
from common.names import NOT_UNDERSTOOD, Direction, HandoffReason, OperatorRole
from common.yamlfile import ContentError
from dialogs.inbox.grouping import Group, group_messages, mask
from dialogs.inbox.snippets import (
    Snippet,
    act_words,
    closest_act,
    closest_scenario,
    conversation_test,
    scenario_example,
)
from storage.inbox import Inbox, Transcript
from web.auth import SignedIn
from web.console import MAX_ID, Console, PrivateRoute, Shared, Who

REASON_TITLES: dict[str, str] = {
    NOT_UNDERSTOOD: "не понял",
    HandoffReason.STUCK: "передал: бот не справился",
    HandoffReason.MISSED_POINT: "клиент сказал, что бот не понимает",
}
REFUSED = "Непонятое видят руководители групп и администраторы."
NO_CONVERSATION = "В непонятом такого разговора нет."
BAD_PERIOD = "Период — целое число дней от 1 до 365."
DEFAULT_DAYS = 30
MAX_DAYS = 365
PERIODS = (1, 7, 30, 90, 365)
# The newest messages read for a page: enough for a month of a busy desk, few enough to group in well
# under a second (dialogs/inbox/grouping.py bounds the comparisons further).
READ_LIMIT = 5000
GROUPS_SHOWN = 100
INBOX_ROLES = (OperatorRole.LEAD, OperatorRole.ADMIN)
COPY_TITLES = {"scenario": "Пример для сценария", "act": "Слова для акта", "test": "Тест разговора"}


def inbox_store(request: Request) -> Inbox:
    """Dependency: the inbox storage the app keeps in `app.state.inbox`."""
    store: Inbox = request.app.state.inbox
    return store


InboxStore = Annotated[Inbox, Depends(inbox_store)]
router = APIRouter(prefix="/console", route_class=PrivateRoute)


def may_read_inbox(role: str) -> bool:
    """Whether an account's role may read the misunderstood inbox: team leads and admins."""
    return role in INBOX_ROLES


@dataclass(frozen=True, slots=True)
class Copy:
    """One block an editor copies: what it is, where it goes, and its text (or why there is none; neither
    when there is nothing to copy until the editor chooses, as an act)."""

    kind: str  # scenario, act, test
    title: str
    snippet: Snippet | None
    problem: str = ""


@dataclass(frozen=True, slots=True)
class GroupView:
    """A group as the page shows it."""

    group: Group
    reasons: list[tuple[str, str, int]]  # (reason, title, count)
    scenario: str
    act: str
    copies: list[Copy]


@router.get("/inbox", response_class=HTMLResponse)
async def inbox_page(
    request: Request,
    who: Who,
    console: Shared,
    inbox: InboxStore,
    days: Annotated[str, Query(max_length=10)] = str(DEFAULT_DAYS),
    pick: Annotated[str, Query(max_length=20)] = "",
    scenario: Annotated[str, Query(max_length=100)] = "",
    act: Annotated[str, Query(max_length=100)] = "",
) -> Response:
    """The groups of the period, most messages first, with what to copy from each; `pick` (a message of a
    group) gets the `scenario` and `act` chosen for it."""
    refusal = await _refusal(request, who, console, "inbox")
    if refusal is not None:
        return refusal
    period = _days(days)
    if period is None:
        return console.pages.render(request, "error.html", {"message": BAD_PERIOD}, 422)
    chosen = (_number(pick), scenario, act)
    context = await run_in_threadpool(_inbox_context, console, inbox, period, chosen)
    return console.pages.render(request, "inbox.html", {**context, "who": who})


@router.get("/inbox/conversations/{conversation_id}", response_class=HTMLResponse)
async def inbox_conversation(
    request: Request, who: Who, console: Shared, inbox: InboxStore, conversation_id: int
) -> Response:
    """A conversation with something misunderstood in it, every message masked; the look is audited."""
    refusal = await _refusal(request, who, console, f"inbox conversation {conversation_id}")
    if refusal is not None:
        return refusal
    found = None
    if 1 <= conversation_id <= MAX_ID:
        found = await run_in_threadpool(_look, console, inbox, who, conversation_id)
    if found is None:
        return console.pages.render(request, "error.html", {"message": NO_CONVERSATION}, 404)
    context = {"who": who, **_transcript_context(found, who)}
    return console.pages.render(request, "inbox_conversation.html", context)


# --- what the routes share ------------------------------------------------------------------------------
async def _refusal(request: Request, who: SignedIn, console: Console, what: str) -> Response | None:
    """The one role check of every inbox page, before anything is read; refusals are audited."""
    if may_read_inbox(who.role):
        return None
    await run_in_threadpool(console.audit.record, who.name, "refused", None, what, _now())
    return console.pages.render(request, "error.html", {"message": REFUSED}, 403)


def _now() -> datetime:
    return datetime.now(UTC)


def _days(raw: str) -> int | None:
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_DAYS:
        return None
    return int(text)


def _number(raw: str) -> int | None:
    text = raw.strip()
    return int(text) if text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_ID else None


def _inbox_context(
    console: Console, inbox: Inbox, days: int, chosen: tuple[int | None, str, str]
) -> dict[str, Any]:
    now = _now()
    found = inbox.misheard(now - timedelta(days=days), now, READ_LIMIT)
    grouping = group_messages(found.messages)
    live = console.desk.engine.live
    content = live.get()
    scenarios = [(s.id, s.title) for s in content.scenarios.scenarios]
    acts = content.lexicons.acts.acts
    layers = _layers(live.directory)
    pick, picked_scenario, picked_act = chosen
    picked = grouping.containing(pick) if pick is not None else None
    ids = {scenario_id for scenario_id, _ in scenarios}
    views = []
    for group in grouping.groups[:GROUPS_SHOWN]:
        scenario = picked_scenario if group is picked and picked_scenario in ids else ""
        scenario = scenario or closest_scenario(content.matcher, ids, group.text) or scenarios[0][0]
        act = picked_act if group is picked and picked_act in acts else _default_act(group, acts)
        views.append(_view(group, layers, scenario, act))
    return {
        "days": days,
        "periods": sorted({*PERIODS, days}),
        "total": found.total,
        "read": len(found.messages),
        "grouping": grouping,
        "groups": views,
        "groups_shown": GROUPS_SHOWN,
        "scenarios": scenarios,
        "acts": list(acts),
        "now": now,
    }


def _default_act(group: Group, acts: dict[str, list[str]]) -> str:
    """The act with an example alike to the group's text; else, for a complaint that the bot misses the
    point, bot_complaint; else none (the editor chooses one)."""
    guess = closest_act(acts, group.text)
    if guess is None and HandoffReason.MISSED_POINT in group.reasons and "bot_complaint" in acts:
        guess = "bot_complaint"
    return guess or ""


def _layers(directory: Path) -> list[Path] | str:
    """The content's layers, or what is wrong with them while an editor's change to content.yaml is
    broken (the bot keeps serving the last good version meanwhile)."""
    try:
        return content_layers(directory)
    except ContentError as exc:
        return f"Файлы контента сейчас с ошибкой, исправьте её: {exc}"


def _view(group: Group, layers: list[Path] | str, scenario: str, act: str) -> GroupView:
    reasons = [
        (reason, REASON_TITLES.get(reason, reason), count)
        for reason, count in sorted(group.reasons.items(), key=lambda item: (-item[1], item[0]))
    ]
    if isinstance(layers, str):
        copies = [Copy(kind, heading, None, layers) for kind, heading in COPY_TITLES.items()]
        return GroupView(group, reasons, scenario, act, copies)
    text, test_id = group.text, f"inbox-{group.key}"
    makers: dict[str, Callable[[], Snippet] | None] = {
        "scenario": lambda: scenario_example(layers, scenario, text),
        "act": (lambda: act_words(layers, act, text)) if act else None,
        "test": lambda: conversation_test(layers, test_id, text, scenario),
    }
    copies = [_copy(kind, COPY_TITLES[kind], make) for kind, make in makers.items()]
    return GroupView(group, reasons, scenario, act, copies)


def _copy(kind: str, heading: str, make: Callable[[], Snippet] | None) -> Copy:
    """A copy block (empty until the editor chooses, without `make`); a content file the snippet cannot
    fit (broken, or shaped unlike the loader expects) says so instead of failing the whole page."""
    if make is None:
        return Copy(kind, heading, None)
    try:
        return Copy(kind, heading, make())
    except (LookupError, ValueError, OSError, yaml.YAMLError, ContentError) as exc:
        return Copy(kind, heading, None, f"Не удалось подготовить: {exc}")


def _look(console: Console, inbox: Inbox, who: SignedIn, conversation_id: int) -> Transcript | None:
    found = inbox.transcript(conversation_id)
    if found is not None:
        console.audit.record(who.name, "view_inbox", conversation_id, "misunderstood inbox", _now())
    return found


def _transcript_context(found: Transcript, who: SignedIn) -> dict[str, Any]:
    misheard = {mask(message.text) for message in found.misheard}
    lines = [
        {
            "line": line,
            "text": mask(line.text),
            "client": line.direction == Direction.IN,
            "misheard": line.direction == Direction.IN and mask(line.text) in misheard,
        }
        for line in found.lines
    ]
    return {
        "transcript": found,
        "channel": title(found.channel),
        "lines": lines,
        "misheard": [
            {"message": message, "text": mask(message.text), "reason": REASON_TITLES.get(message.reason, "")}
            for message in found.misheard
        ],
        # Admins may open any conversation in the operators' console (unmasked, audited there).
        "full_page": who.role == OperatorRole.ADMIN,
    }
