"""Campaigns in the console: the list, one campaign's funnel (an inline SVG chart drawn here, the numbers
as tables, by persona and by channel), and the recipients behind any count with links to their
conversations.

Team leads and admins see these pages; an operator gets a polite refusal, recorded in the audit trail.
Every route asks for the session first (`Who`), then the role, before it reads anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from common.channels import title
from common.names import FUNNEL_ENDS, FUNNEL_STEPS, CampaignState, FunnelStatus
from operators.desk import may_see_campaigns
from storage.desk.base import CampaignFunnel, Funnel, FunnelCounts
from storage.desk.funnel import conversion
from web.auth import SignedIn
from web.console import PERSONA_TITLES, Console, PrivateRoute, Shared, Who

STEP_TITLES: dict[str, str] = {
    FunnelStatus.QUEUED: "в рассылке",
    FunnelStatus.SENT: "отправлено",
    FunnelStatus.DELIVERED: "доставлено",
    FunnelStatus.READ: "прочитано",
    FunnelStatus.REPLIED: "ответили",
    FunnelStatus.CONSENTED: "согласились",
    FunnelStatus.CONVERTED: "оформили продукт",
}
END_TITLES: dict[str, str] = {
    FunnelStatus.FAILED: "не отправлено",
    FunnelStatus.NOT_ALLOWED: "писать нельзя",
    FunnelStatus.OPTED_OUT: "отписались",
}
STATE_TITLES: dict[str, str] = {CampaignState.RUNNING: "идёт", CampaignState.PAUSED: "на паузе"}
REFUSED = "Рассылки видят руководители групп и администраторы."
NO_CAMPAIGN = "Такой рассылки нет."
NO_STEP = "Такого шага воронки нет."
RECIPIENTS_SHOWN = 500
_CAMPAIGN = re.compile(r"^[a-z0-9_]{1,100}$")
# The chart: labels on the left, bars scaled to the first step, the count after each bar.
CHART_WIDTH, CHART_LABEL, CHART_BAR, CHART_ROW, CHART_HEIGHT = 720, 150, 460, 30, 20


def funnel_store(request: Request) -> Funnel:
    """Dependency: the funnel storage the app keeps in `app.state.funnel`."""
    store: Funnel = request.app.state.funnel
    return store


FunnelStore = Annotated[Funnel, Depends(funnel_store)]
router = APIRouter(prefix="/console", route_class=PrivateRoute)


@dataclass(frozen=True, slots=True)
class Bar:
    """One step of the chart."""

    step: str
    title: str
    count: int
    y: int
    width: int
    share: str  # the conversion from the previous step, as shown


def persona_title(persona: str) -> str:
    """A persona as operators read it."""
    return PERSONA_TITLES.get(persona, persona)


def percent(value: float | None) -> str:
    """A share as Russian readers write it: «66,7 %»; a dash when there is nothing to compare with."""
    return "—" if value is None else f"{value:.1f}".replace(".", ",") + " %"


def chart(counts: FunnelCounts) -> dict[str, Any]:
    """The funnel as horizontal bars: each bar's width is its share of the first step."""
    top = max(counts.total, 1)
    bars = []
    for index, step in enumerate(FUNNEL_STEPS):
        count = counts.reached[step]
        width = round(CHART_BAR * count / top)
        bars.append(
            Bar(
                step=step,
                title=STEP_TITLES[step],
                count=count,
                y=index * CHART_ROW,
                width=max(width, 1) if count else 0,
                share=percent(conversion(counts, step)),
            )
        )
    return {
        "bars": bars,
        "width": CHART_WIDTH,
        "height": len(bars) * CHART_ROW,
        "label": CHART_LABEL,
        "row": CHART_HEIGHT,
    }


def drill(campaign: str, **filters: str) -> str:
    """The recipients page of a count: only the filters given."""
    query = urlencode({name: value for name, value in filters.items() if value})
    return f"/console/campaigns/{campaign}/recipients" + (f"?{query}" if query else "")


@router.get("/campaigns", response_class=HTMLResponse)
async def campaigns_page(request: Request, who: Who, console: Shared, funnel: FunnelStore) -> Response:
    """Every campaign that has recipients, with its main counts."""
    refusal = await _refusal(request, who, console, "campaigns")
    if refusal is not None:
        return refusal
    summaries = await run_in_threadpool(funnel.campaign_summaries)
    context = {
        "who": who,
        "summaries": summaries,
        "titles": _titles(console),
        "state_titles": STATE_TITLES,
        "step_titles": STEP_TITLES,
        "end_titles": END_TITLES,
        "steps": FUNNEL_STEPS,
        "ends": FUNNEL_ENDS,
        "percent": percent,
        "conversion": _overall_conversion,
    }
    return console.pages.render(request, "campaigns.html", context)


@router.get("/campaigns/{campaign}", response_class=HTMLResponse)
async def campaign_page(
    request: Request, who: Who, console: Shared, funnel: FunnelStore, campaign: str
) -> Response:
    """One campaign's funnel: a chart, the numbers, by persona and by channel; every count drills down."""
    refusal = await _refusal(request, who, console, f"campaign {campaign[:100]}")
    if refusal is not None:
        return refusal
    found = await run_in_threadpool(funnel.funnel, campaign) if _CAMPAIGN.match(campaign) else None
    if found is None:
        return console.pages.render(request, "error.html", {"message": NO_CAMPAIGN}, 404)
    context = {"who": who, **_funnel_context(found, console)}
    return console.pages.render(request, "campaign_funnel.html", context)


@router.get("/campaigns/{campaign}/recipients", response_class=HTMLResponse)
async def recipients_page(
    request: Request,
    who: Who,
    console: Shared,
    funnel: FunnelStore,
    campaign: str,
    step: Annotated[str, Query(max_length=20)] = "",
    persona: Annotated[str, Query(max_length=40)] = "",
    channel: Annotated[str, Query(max_length=40)] = "",
    reason: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """The recipients behind a count, with their status, moments and conversations; the look is audited."""
    refusal = await _refusal(request, who, console, f"campaign {campaign[:100]} recipients")
    if refusal is not None:
        return refusal
    if not _CAMPAIGN.match(campaign):
        return console.pages.render(request, "error.html", {"message": NO_CAMPAIGN}, 404)
    if step and step not in (*FUNNEL_STEPS, *FUNNEL_ENDS):
        return console.pages.render(request, "error.html", {"message": NO_STEP}, 404)
    filters = {"step": step, "persona": persona, "channel": channel, "reason": reason}

    def look() -> tuple[list[Any], int]:
        found = funnel.recipients(campaign, step, persona, channel, reason, RECIPIENTS_SHOWN)
        described = ", ".join(f"{name}={value}" for name, value in filters.items() if value)
        console.audit.record(who.name, "view_recipients", None, f"{campaign} {described}".strip(), _now())
        return found

    lines, total = await run_in_threadpool(look)
    context = {
        "who": who,
        "campaign": campaign,
        "title": _titles(console).get(campaign, campaign),
        "lines": lines,
        "total": total,
        "shown": RECIPIENTS_SHOWN,
        "filters": filters,
        "filter_titles": _filter_titles(filters),
        "status_titles": {**STEP_TITLES, **END_TITLES},
        "personas": PERSONA_TITLES,
        "moments": [*FUNNEL_STEPS, "ended"],
        "moment_titles": {**STEP_TITLES, FunnelStatus.QUEUED: "в очереди", "ended": "выбыл"},
    }
    return console.pages.render(request, "campaign_recipients.html", context)


# --- what the routes share ------------------------------------------------------------------------------
async def _refusal(request: Request, who: SignedIn, console: Console, what: str) -> Response | None:
    """The one role check of every campaign page, before anything is read; refusals are audited."""
    if may_see_campaigns(who.role):
        return None
    await run_in_threadpool(console.audit.record, who.name, "refused", None, what, _now())
    return console.pages.render(request, "error.html", {"message": REFUSED}, 403)


def _now() -> datetime:
    return datetime.now(UTC)


def _titles(console: Console) -> dict[str, str]:
    """Campaigns' titles from the content, for those it still has."""
    book = console.desk.engine.live.get().campaigns
    return {name: campaign.spec.title for name, campaign in book.campaigns.items()}


def _overall_conversion(counts: FunnelCounts) -> str:
    """The share of the audience that took the product."""
    total = counts.total
    return percent(None if not total else 100.0 * counts.reached[FunnelStatus.CONVERTED] / total)


def _slice_rows(campaign: str, slices: dict[str, FunnelCounts], key: str) -> list[dict[str, Any]]:
    rows = []
    for name, counts in slices.items():
        cells = [
            {
                "step": step,
                "count": counts.reached[step],
                "share": percent(conversion(counts, step)) if index else "",
                "link": drill(campaign, step=step, **{key: name}),
            }
            for index, step in enumerate(FUNNEL_STEPS)
        ]
        ends = [
            {"step": end, "count": counts.ends[end], "link": drill(campaign, step=end, **{key: name})}
            for end in FUNNEL_ENDS
        ]
        rows.append({"name": name, "cells": cells, "ends": ends})
    return rows


def _funnel_context(found: CampaignFunnel, console: Console) -> dict[str, Any]:
    campaign, overall = found.campaign, found.overall
    steps = [
        {
            "step": step,
            "title": STEP_TITLES[step],
            "count": overall.reached[step],
            "share": percent(conversion(overall, step)) if index else "",
            "link": drill(campaign, step=step),
        }
        for index, step in enumerate(FUNNEL_STEPS)
    ]
    ends = [
        {
            "step": end,
            "title": END_TITLES[end],
            "count": overall.ends[end],
            "link": drill(campaign, step=end),
            "reasons": [
                {"reason": reason, "count": count, "link": drill(campaign, step=end, reason=reason)}
                for (status, reason), count in sorted(overall.reasons.items(), key=lambda item: -item[1])
                if status == end
            ],
        }
        for end in FUNNEL_ENDS
    ]
    return {
        "campaign": campaign,
        "title": _titles(console).get(campaign, campaign),
        "chart": chart(overall),
        "steps": steps,
        "ends": ends,
        "total": overall.total,
        "converted": _overall_conversion(overall),
        "step_titles": STEP_TITLES,
        "end_titles": END_TITLES,
        "step_names": FUNNEL_STEPS,
        "end_names": FUNNEL_ENDS,
        "by_persona": _slice_rows(campaign, found.by_persona, "persona"),
        "by_channel": _slice_rows(campaign, found.by_channel, "channel"),
        "persona_title": persona_title,
        "channel_title": title,
    }


def _filter_titles(filters: dict[str, str]) -> list[str]:
    """The drill-down's filters as operators read them."""
    shown = []
    step = filters["step"]
    if step:
        shown.append(END_TITLES[step] if step in END_TITLES else f"дошли до шага «{STEP_TITLES[step]}»")
    if filters["persona"]:
        shown.append(f"тип клиента: {PERSONA_TITLES.get(filters['persona'], filters['persona'])}")
    if filters["channel"]:
        shown.append(f"канал: {title(filters['channel'])}")
    if filters["reason"]:
        shown.append(f"причина: {filters['reason']}")
    return shown
