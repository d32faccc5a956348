"""Analytics in the console for those who run support: a dashboard over a period of local days (the
company's time zone), a team or category and a channel, each section an inline SVG chart and a table of
the same numbers; and the CSV export of one line per conversation.

Team leads and admins see them; an operator gets a polite refusal, recorded in the audit trail. Every route
asks for the session first (`Who`), then makes the one role check, before it reads anything.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from common.channels import CHANNELS
from common.names import OperatorRole
from dialogs.content import Content
from storage.analytics import Analytics, ExportLine, Scope
from web.analytics_view import sections
from web.auth import SignedIn
from web.console import Console, PrivateRoute, Shared, Who

REFUSED = "Аналитику видят руководители групп и администраторы."
ANALYTICS_ROLES = (OperatorRole.LEAD, OperatorRole.ADMIN)
DEFAULT_DAYS = 30
# The longest period: a year, a leap one too (the dashboard answers a year within a second).
MAX_DAYS = 366
EXPORT_COLUMNS = (
    "conversation_id",
    "channel",
    "started",
    "status",
    "persona",
    "handed_off",
    "handoffs",
    "handoff_reason",
    "category",
    "first_response_s",
    "breached",
    "rating",
    "messages_in",
    "messages_out",
)


def analytics_store(request: Request) -> Analytics:
    """Dependency: the analytics storage the app keeps in `app.state.analytics`."""
    store: Analytics = request.app.state.analytics
    return store


AnalyticsStore = Annotated[Analytics, Depends(analytics_store)]
router = APIRouter(prefix="/console", route_class=PrivateRoute)


class BadFilter(ValueError):
    """A filter the page cannot use, with a message for the reader."""


@dataclass(frozen=True, slots=True)
class Filters:
    """The form's choices, checked: the period's first and last local day, a team, a category, a channel."""

    first: date
    last: date
    team: str = ""
    category: str = ""
    channel: str = ""

    def query(self) -> str:
        """The choices as a query string (the CSV link carries the page's filters)."""
        chosen = {
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "team": self.team,
            "category": self.category,
            "channel": self.channel,
        }
        return urlencode({name: value for name, value in chosen.items() if value})


# --- routes ----------------------------------------------------------------------------------------------
@router.get("/analytics", response_class=HTMLResponse)
async def analytics_page(
    request: Request,
    who: Who,
    console: Shared,
    analytics: AnalyticsStore,
    start: Annotated[str, Query(alias="from", max_length=20)] = "",
    end: Annotated[str, Query(alias="to", max_length=20)] = "",
    team: Annotated[str, Query(max_length=100)] = "",
    category: Annotated[str, Query(max_length=100)] = "",
    channel: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """The dashboard for the chosen filters (the last 30 days of everything by default)."""
    refusal = await _refusal(request, who, console, "analytics")
    if refusal is not None:
        return refusal
    content = console.desk.engine.live.get()
    context: dict[str, Any] = {"who": who, **_choices(content)}
    try:
        filters = _filters(content, start, end, team, category, channel)
        scope = _scope(content, filters)
    except BadFilter as exc:
        context.update(error=str(exc), filters=_default_filters(content), dashboard=None)
        return console.pages.render(request, "analytics.html", context, 422)
    dashboard = await run_in_threadpool(analytics.dashboard, scope, _now())
    context.update(filters=filters, **sections(dashboard, content))
    return console.pages.render(request, "analytics.html", context)


@router.get("/analytics.csv")
async def analytics_export(
    request: Request,
    who: Who,
    console: Shared,
    analytics: AnalyticsStore,
    start: Annotated[str, Query(alias="from", max_length=20)] = "",
    end: Annotated[str, Query(alias="to", max_length=20)] = "",
    team: Annotated[str, Query(max_length=100)] = "",
    category: Annotated[str, Query(max_length=100)] = "",
    channel: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """One line per conversation started in the chosen period (filters as on the page), streamed."""
    refusal = await _refusal(request, who, console, "analytics export")
    if refusal is not None:
        return refusal
    content = console.desk.engine.live.get()
    try:
        filters = _filters(content, start, end, team, category, channel)
        scope = _scope(content, filters)
    except BadFilter as exc:
        return console.pages.render(request, "error.html", {"message": str(exc)}, 422)
    # A bulk export of what clients did: who took it, and which filters, go into the audit trail.
    await run_in_threadpool(console.audit.record, who.name, "export_analytics", None, filters.query(), _now())
    zone = ZoneInfo(content.scenarios.company.timezone)
    lines = analytics.export(scope, _now())
    name = f"tonebot-analytics-{filters.first.isoformat()}-{filters.last.isoformat()}.csv"
    return StreamingResponse(
        _csv(lines, zone),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --- what the routes share ------------------------------------------------------------------------------
async def _refusal(request: Request, who: SignedIn, console: Console, what: str) -> Response | None:
    """The one role check of the analytics routes, before anything is read; refusals are audited."""
    if who.role in ANALYTICS_ROLES:
        return None
    await run_in_threadpool(console.audit.record, who.name, "refused", None, what, _now())
    return console.pages.render(request, "error.html", {"message": REFUSED}, 403)


def _now() -> datetime:
    return datetime.now(UTC)


def _today(content: Content) -> date:
    return datetime.now(ZoneInfo(content.scenarios.company.timezone)).date()


def _default_filters(content: Content) -> Filters:
    today = _today(content)
    return Filters(today - timedelta(days=DEFAULT_DAYS - 1), today)


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise BadFilter(
            f"Не понимаю дату «{value[:20]}» в поле «{name}»: нужна дата вида 2026-11-23."
        ) from None


def _filters(content: Content, start: str, end: str, team: str, category: str, channel: str) -> Filters:
    """The query's filters checked against the content; BadFilter says what is wrong."""
    last = _day(end, "по") or _today(content)
    first = _day(start, "с") or last - timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        raise BadFilter("Период заканчивается раньше, чем начинается.")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadFilter(f"Период длиннее {MAX_DAYS} дней: выберите период короче.")
    if team and team not in content.teams.spec.teams:
        raise BadFilter("Такой группы нет.")
    if category and category not in content.scenarios.categories:
        raise BadFilter("Такой категории нет.")
    if team and category and category not in content.teams.spec.teams[team].categories:
        raise BadFilter("Эта категория не относится к выбранной группе.")
    if channel and channel not in CHANNELS:
        raise BadFilter("Такого канала нет.")
    return Filters(first, last, team, category, channel)


def _scope(content: Content, filters: Filters) -> Scope:
    categories: list[str] | None = None
    if filters.category:
        categories = [filters.category]
    elif filters.team:
        categories = list(content.teams.spec.teams[filters.team].categories)
    return Scope.local(
        filters.first, filters.last, content.scenarios.company.timezone, filters.channel, categories
    )


def _choices(content: Content) -> dict[str, Any]:
    """What the filter form offers."""
    return {
        "teams": {name: team.title or name for name, team in content.teams.spec.teams.items()},
        "categories": {name: c.title for name, c in content.scenarios.categories.items()},
        "channels": {name: facts.title for name, facts in CHANNELS.items()},
        "zone": content.scenarios.company.timezone,
        "max_days": MAX_DAYS,
    }


def _csv(lines: Iterator[ExportLine], zone: ZoneInfo) -> Iterator[str]:
    """The export as CSV text, a header and then a line per conversation (started in the company's time)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for line in lines:
        writer.writerow(
            (
                line.conversation_id,
                line.channel,
                line.started.astimezone(zone).isoformat(timespec="seconds"),
                line.status,
                line.persona,
                1 if line.handoffs else 0,
                line.handoffs,
                line.reason,
                line.category,
                "" if line.first_response_s is None else _seconds(line.first_response_s),
                "" if line.breached is None else int(line.breached),
                "" if line.rating is None else line.rating,
                line.incoming,
                line.outgoing,
            )
        )
        if buffer.tell() > 16_384:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _seconds(value: float) -> str:
    """Seconds to the millisecond, without trailing zeros and never in exponent form: 120, 90.5."""
    return f"{value:.3f}".rstrip("0").rstrip(".")
